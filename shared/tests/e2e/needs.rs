//! Each function serves its route with only the variables it requires (`config::Needs`):
//! the whole life of an account, each request answered by an app built as that request's
//! function builds it, from its needs alone, throttles on.

use crate::support::*;
use serde_json::json;
use shared::aws::{build_app_with, sdk_config};
use shared::config::{Config, Needs};
use shared::http::Endpoint;
use std::sync::Arc;
use std::time::Duration;

/// Makes `h` answer as the function of `endpoint` would: its store, cipher, mailer and
/// settings built from what that function requires, and nothing else of the environment.
async fn as_function(h: &mut Harness, endpoint: Endpoint) {
    let needed = Needs::of(endpoint);
    let mut config = Config::from_lookup(needed, |name| std::env::var(name).ok()).unwrap();
    config.settings.reset_response_floor = Duration::ZERO;
    let app = build_app_with(&config, &sdk_config().load().await);
    h.app.store = app.store;
    h.app.cipher = app.cipher;
    h.mailer = Arc::new(RecordingMailer::new(app.mailer));
    h.app.mailer = h.mailer.clone();
    h.app.settings = config.settings;
}

async fn answered(h: &mut Harness, request: Call, status: u16) -> Reply {
    let endpoint = request.endpoint;
    as_function(h, endpoint).await;
    let reply = h.send(request).await;
    assert_eq!(reply.status, status, "{endpoint:?} with its needs alone: {}", reply.text);
    reply
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn every_function_serves_its_route_with_only_what_it_requires() {
    let mut h = Harness::new().await;
    let (email, new_password) = (unique_email(), "New-Adventure-8");
    let credentials = |password: &str| json!({"email": email, "password": password});

    let registered = answered(&mut h, call(Endpoint::Register).json(credentials(PASSWORD)), 201).await;
    let master = registered.str("apiKey");
    answered(&mut h, call(Endpoint::Login).json(credentials(PASSWORD)), 200).await;
    answered(&mut h, call(Endpoint::UserData).key(&master), 200).await;

    let body = json!({"name": "module", "foundryPassword": "Foundry-Secret-1"});
    let created = answered(&mut h, call(Endpoint::CreateApiKey).key(&master).json(body), 201).await;
    answered(&mut h, call(Endpoint::ListApiKeys).key(&master), 200).await;
    answered(&mut h, call(Endpoint::ExportData).key(&master), 200).await;
    answered(&mut h, call(Endpoint::DeleteApiKey).key(&master).param("id", &created.str("id")), 200).await;

    let change = json!({"currentPassword": PASSWORD, "newPassword": new_password});
    answered(&mut h, call(Endpoint::ChangePassword).key(&master).json(change), 200).await;
    assert_eq!(h.mails_to(&email).await.len(), 1, "change-password sent its notice");

    answered(&mut h, call(Endpoint::ForgotPassword).json(json!({"email": email})), 200).await;
    let token = reset_token_in(&h.mails_to(&email).await.pop().expect("forgot-password sent the link"));
    answered(&mut h, call(Endpoint::ValidateResetToken).param("token", &token), 200).await;
    let reset = json!({"token": token, "password": PASSWORD});
    answered(&mut h, call(Endpoint::ResetPassword).json(reset), 200).await;

    let regenerated = answered(&mut h, call(Endpoint::RegenerateKey).json(credentials(PASSWORD)), 200).await;
    let master = regenerated.str("apiKey");
    let delete = json!({"confirmEmail": email, "password": PASSWORD});
    answered(&mut h, call(Endpoint::DeleteAccount).key(&master).json(delete), 200).await;
}
