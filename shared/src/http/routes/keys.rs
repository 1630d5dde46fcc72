//! Scoped keys: create, list, revoke.

use crate::domain::accounts;
use crate::domain::app::App;
use crate::domain::auth::{authenticate, authenticate_master};
use crate::domain::error::AuthError;
use crate::domain::model::{ScopedKey, User};
use crate::domain::scoped::{self, NewScopedKey, ScopedKeyChange};
use crate::http::bodies::{ScopedKeyPatch, ScopedKeyRequest};
use crate::http::request::{api_key, body, path_parameter};
use crate::http::response::json_response;
use crate::http::response::Answer;
use crate::http::schema::{scope_names, CreatedScopedKey, Deleted, ListedScopedKey, ScopedKeyList};
use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn create_api_key(app: &App, req: &Request) -> Answer {
    // A scoped key is refused by `scoped::create`, with its own message.
    let caller = authenticate(app, api_key(req)).await?;
    let new = NewScopedKey::from(body::<ScopedKeyRequest>(req)?);
    let created = scoped::create(app, &caller, new).await?;
    let k = &created.record;
    Ok(json_response(
        StatusCode::CREATED,
        &CreatedScopedKey {
            id: k.id.clone(),
            key: created.key.expose().to_owned(),
            name: k.name.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            scopes: scope_names(k),
            scoped_client_ids: k.scoped_client_ids.clone(),
            scoped_user_ids: k.scoped_user_ids.clone(),
            monthly_limit: k.monthly_limit,
            daily_limit: k.daily_limit,
            expires_at: k.expires_at.map(Into::into),
            has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
            enabled: true,
            created_at: k.created_at.into(),
        },
    ))
}

pub(super) async fn list_api_keys(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let now = app.clock.now();
    let keys = accounts::scoped_keys_of(app, &caller.user).await?;
    let keys = keys.iter().map(|(k, requests)| listed_key(k, *requests, &caller.user, now)).collect();
    Ok(json_response(StatusCode::OK, &ScopedKeyList { keys }))
}

fn listed_key(k: &ScopedKey, requests_this_month: u64, user: &User, now: DateTime<Utc>) -> ListedScopedKey {
    ListedScopedKey {
        id: k.id.clone(),
        key: format!("{}...", k.prefix),
        name: k.name.clone(),
        scoped_client_id: k.scoped_client_id.clone(),
        scoped_user_id: k.scoped_user_id.clone(),
        scopes: scope_names(k),
        scoped_client_ids: k.scoped_client_ids.clone(),
        scoped_user_ids: k.scoped_user_ids.clone(),
        monthly_limit: k.monthly_limit,
        daily_limit: k.daily_limit,
        requests_this_month,
        expires_at: k.expires_at.map(Into::into),
        is_expired: k.is_expired(now),
        enabled: k.is_enabled(user),
        has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
        foundry_url: k.foundry_url.clone(),
        foundry_username: k.foundry_username.clone(),
        created_at: k.created_at.into(),
        updated_at: k.updated_at.into(),
    }
}

pub(super) async fn update_api_key(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let id = path_parameter(req, "id").unwrap_or_default();
    let change = ScopedKeyChange::from(body::<ScopedKeyPatch>(req)?);
    let key = scoped::update(app, &caller, &id, change).await?;
    let now = app.clock.now();
    let requests =
        app.store.key_entry(&key.digest).await.map_err(AuthError::from)?.map_or(0, |entry| entry.usage.this_month(now));
    Ok(json_response(StatusCode::OK, &listed_key(&key, requests, &caller.user, now)))
}

pub(super) async fn delete_api_key(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let id = path_parameter(req, "id").unwrap_or_default();
    scoped::delete(app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &Deleted { success: true, message: "API key deleted" }))
}
