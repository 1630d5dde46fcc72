//! The account: register, login, regenerate-key, user-data, export-data, delete account,
//! change-password.

use crate::domain::accounts;
use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::auth::authenticate_master;
use crate::domain::throttle;
use crate::http::bodies::{AccountDeletion, Credentials, NewAccount, PasswordChange};
use crate::http::request::{api_key, body, source_ip};
use crate::http::response::json_response;
use crate::http::response::Answer;
use crate::http::schema::{
    scope_names, ActivityEntry, DataExport, Deleted, ExportedApiAccess, ExportedScopedKey, ExportedSubscription,
    ExportedUsage, ExportedUser, LoggedIn, Message, PlanLimits, RegeneratedKey, Registered, Timestamp, UserData,
};
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn register(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<NewAccount>(req)?.required()?;
    let created = accounts::register(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    let user = &created.user;
    Ok(json_response(
        StatusCode::CREATED,
        &Registered {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: created.key.expose().to_owned(),
            created_at: user.created_at.into(),
            subscription_status: user.subscription_status.as_str().to_owned(),
        },
    ))
}

pub(super) async fn login(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<Credentials>(req)?.required()?;
    let session = accounts::login(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    let user = &session.user;
    Ok(json_response(
        StatusCode::OK,
        &LoggedIn {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: session.key.as_ref().map(|key| key.expose().to_owned()),
            api_key_available: session.key.is_some(),
            requests_this_month: user.usage.this_month(app.clock.now()),
            created_at: user.created_at.into(),
        },
    ))
}

pub(super) async fn regenerate_key(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<Credentials>(req)?.required()?;
    let key = accounts::regenerate_key(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &RegeneratedKey { api_key: key.expose().to_owned() }))
}

pub(super) async fn user_data(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let user = &caller.user;
    Ok(json_response(
        StatusCode::OK,
        &UserData {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: caller.key.expose().to_owned(),
            requests_this_month: user.usage.this_month(app.clock.now()),
            requests_today: user.usage.today(app.clock.now()),
            subscription_status: user.subscription_status.as_str().to_owned(),
            email_verified: user.email_verified,
            limits: PlanLimits {
                daily_limit: app.settings.daily_request_limit,
                monthly_limit: app.settings.monthly_request_limit,
                unlimited_monthly: user.subscription_status.is_active(),
            },
            legacy_key: caller.key.is_legacy(),
            legacy_keys_until: app.settings.legacy_keys_until.map(Timestamp),
        },
    ))
}

pub(super) async fn export_data(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    throttle::per_account(app, &caller.user.id).await?;
    let user = &caller.user;
    let now = app.clock.now();
    let keys = accounts::scoped_keys_of(app, user).await?;
    let events = activity::exported(app, &user.id).await?;
    let scoped_keys = keys
        .iter()
        .map(|(k, requests)| ExportedScopedKey {
            id: k.id.clone(),
            name: k.name.clone(),
            key_prefix: k.prefix.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            scopes: scope_names(k),
            scoped_client_ids: k.scoped_client_ids.clone(),
            scoped_user_ids: k.scoped_user_ids.clone(),
            monthly_limit: k.monthly_limit,
            daily_limit: k.daily_limit,
            requests_this_month: *requests,
            expires_at: k.expires_at.map(Into::into),
            enabled: k.is_enabled(user),
            has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
            foundry_url: k.foundry_url.clone(),
            foundry_username: k.foundry_username.clone(),
            created_at: k.created_at.into(),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &DataExport {
            export_date: now.into(),
            user: ExportedUser {
                id: user.id.clone(),
                email: user.email.clone(),
                created_at: user.created_at.into(),
                updated_at: user.updated_at.into(),
            },
            subscription: ExportedSubscription {
                status: user.subscription_status.as_str().to_owned(),
                stripe_customer_id: user.stripe_customer_id.clone(),
                subscription_id: user.subscription_id.clone(),
            },
            usage: ExportedUsage {
                requests_this_month: user.usage.this_month(now),
                requests_today: user.usage.today(now),
                last_request_date: user.usage.last_request_at.map(Into::into),
            },
            api_access: ExportedApiAccess {
                key_prefix: user.master_key.prefix.clone(),
                created_at: user.master_key.created_at.into(),
            },
            scoped_keys,
            activity: events.iter().map(ActivityEntry::from).collect(),
        },
    ))
}

pub(super) async fn delete_account(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let body: AccountDeletion = body(req)?;
    let password = body.password.as_ref().map(|p| p.expose());
    accounts::delete_account(app, &caller, body.confirm_email.as_deref(), password, source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &Deleted { success: true, message: "Account successfully deleted" }))
}

pub(super) async fn change_password(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let (current, new) = body::<PasswordChange>(req)?.required()?;
    accounts::change_password(app, &caller, current.expose(), new.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &Message { message: "Password changed successfully" }))
}
