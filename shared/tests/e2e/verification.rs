//! Verified emails (`REQUIRE_EMAIL_VERIFICATION`): register sends a link, verify-email
//! uses it up, resend-verification sends a new one; until then the account's keys are
//! refused on the relay's routes with reason `unverified`, while its `/auth` routes work.

use crate::support::*;
use serde_json::{json, Value};
use shared::domain::limits::{Limit, Throttling};
use shared::domain::meter::Decision;
use shared::domain::metering::{self, Ask};
use shared::domain::service_key::{NewServiceKey, ServiceKeyDigests};
use shared::http::Endpoint;

const VERIFY_PAGE: &str = "https://relay.example.com/verify-email";
const SUBJECT: &str = "Verify your Foundry REST API email";

/// A harness that requires verified emails.
async fn requiring() -> Harness {
    Harness::configured(require).await
}

fn require(c: &mut shared::config::Config) {
    c.settings.require_email_verification = true;
    c.settings.verify_url = Some(url::Url::parse(VERIFY_PAGE).unwrap());
}

fn verify_token_in(mail: &Value) -> String {
    let body = mail["body"].as_str().expect("the email has a body");
    let link = format!("{VERIFY_PAGE}?verify-token=");
    let start = body.find(&link).expect("the email carries the verification link") + link.len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
}

fn verify_email(token: &str) -> Call {
    call(Endpoint::VerifyEmail).json(json!({"token": token}))
}

impl Harness {
    /// The token of the newest verification email to `to`.
    async fn newest_verify_token(&self, to: &str) -> String {
        let mails: Vec<Value> = self.mails_to(to).await.into_iter().filter(|m| m["subject"] == SUBJECT).collect();
        verify_token_in(mails.last().expect("a verification email was sent"))
    }

    async fn decision(&self, key: &str) -> Decision {
        match metering::decide(&self.app, Ask::key(Some(key))).await.unwrap() {
            Ok(_) => Decision::Admitted,
            Err(refusal) => refusal.reason,
        }
    }

    async fn email_verified(&self, key: &str) -> Value {
        let reply = self.send(call(Endpoint::UserData).key(key)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["emailVerified"].clone()
    }
}

#[tokio::test]
async fn registering_mails_a_24_hour_link_to_the_verification_page() {
    let h = requiring().await;
    let account = h.register().await;
    let mails = h.mails_to(&account.email).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["subject"], SUBJECT);
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains("within 24 hours"), "{body}");
    assert!(verify_token_in(&mails[0]).len() >= 32, "at least 128 bits");
}

#[tokio::test]
async fn until_verified_every_key_is_refused_as_unverified_while_the_auth_routes_work() {
    let h = requiring().await;
    let account = h.register().await;
    // The owner still manages the account with the master key.
    assert_eq!(h.email_verified(&account.key).await, json!(false));
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    assert_eq!(h.decision(&account.key).await, Decision::Unverified);
    assert_eq!(h.decision(&scoped).await, Decision::Unverified);
    assert_eq!(h.authorize(Some(&account.key)).await, json!({"isAuthorized": false, "context": {}}));
    assert_eq!(h.authorize(Some(&scoped)).await["isAuthorized"], false);
}

#[tokio::test]
async fn the_emailed_token_verifies_the_email_and_the_keys_work_from_then_on() {
    let h = requiring().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    let token = h.newest_verify_token(&account.email).await;
    let reply = h.send(verify_email(&token)).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"message": "Email verified successfully"})));
    assert_eq!(h.email_verified(&account.key).await, json!(true));
    assert_eq!(h.decision(&account.key).await, Decision::Admitted);
    assert_eq!(h.authorize(Some(&scoped)).await["isAuthorized"], true);
}

#[tokio::test]
async fn a_verification_token_works_once() {
    let h = requiring().await;
    let account = h.register().await;
    let token = h.newest_verify_token(&account.email).await;
    assert_eq!(h.send(verify_email(&token)).await.status, 200);
    h.send(verify_email(&token)).await.assert_error(400, "Invalid or expired verification token");
}

#[tokio::test]
async fn a_verification_token_expires_24_hours_after_it_was_sent() {
    let h = requiring().await;
    let early = h.register().await;
    let late = h.register().await;
    let (early_token, late_token) =
        (h.newest_verify_token(&early.email).await, h.newest_verify_token(&late.email).await);
    h.clock.advance(chrono::Duration::hours(24) - chrono::Duration::minutes(1));
    assert_eq!(h.send(verify_email(&early_token)).await.status, 200, "still valid in its 24th hour");
    h.clock.advance(chrono::Duration::minutes(1));
    h.send(verify_email(&late_token)).await.assert_error(400, "Invalid or expired verification token");
    assert_eq!(h.decision(&late.key).await, Decision::Unverified);
}

#[tokio::test]
async fn resending_sends_a_new_link_that_supersedes_the_previous_one() {
    let h = requiring().await;
    let account = h.register().await;
    let first = h.newest_verify_token(&account.email).await;
    let reply = h.send(call(Endpoint::ResendVerification).key(&account.key)).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"message": "Verification email sent"})));
    let second = h.newest_verify_token(&account.email).await;
    assert_ne!(first, second);
    h.send(verify_email(&first)).await.assert_error(400, "Invalid or expired verification token");
    assert_eq!(h.send(verify_email(&second)).await.status, 200);
}

#[tokio::test]
async fn resending_is_throttled_per_account() {
    let h = Harness::configured(|c| {
        require(c);
        c.settings.throttling = Some(Throttling { verification_emails: Limit::new(2, 3600), ..Throttling::default() });
    })
    .await;
    let account = h.register().await;
    let other = h.register().await;
    for _ in 0..2 {
        assert_eq!(h.send(call(Endpoint::ResendVerification).key(&account.key)).await.status, 200);
    }
    let refused = h.send(call(Endpoint::ResendVerification).key(&account.key)).await;
    refused.assert_error(429, "Too many verification emails, please try again later");
    assert_eq!(h.mails_to(&account.email).await.len(), 3, "the link at register and two resent");
    assert_eq!(
        h.send(call(Endpoint::ResendVerification).key(&other.key)).await.status,
        200,
        "another account's budget"
    );
}

#[tokio::test]
async fn resending_for_a_verified_email_is_refused() {
    let h = requiring().await;
    let account = h.register().await;
    let token = h.newest_verify_token(&account.email).await;
    assert_eq!(h.send(verify_email(&token)).await.status, 200);
    let reply = h.send(call(Endpoint::ResendVerification).key(&account.key)).await;
    reply.assert_error(409, "Email is already verified");
    assert_eq!(reply.body["code"], "email_already_verified");
}

#[tokio::test]
async fn accounts_registered_while_the_setting_was_off_count_as_verified() {
    let mut h = Harness::new().await;
    let account = h.register().await;
    assert!(h.mails_to(&account.email).await.is_empty(), "no link sent");
    require(&mut h.config);
    h.app.settings = h.config.settings.clone();
    assert_eq!(h.email_verified(&account.key).await, json!(true));
    assert_eq!(h.decision(&account.key).await, Decision::Admitted);
}

#[tokio::test]
async fn turning_the_setting_off_lets_an_unverified_accounts_keys_work() {
    let mut h = requiring().await;
    let account = h.register().await;
    assert_eq!(h.decision(&account.key).await, Decision::Unverified);
    h.app.settings.require_email_verification = false;
    assert_eq!(h.decision(&account.key).await, Decision::Admitted);
    assert_eq!(h.email_verified(&account.key).await, json!(false), "the state is kept for when it is on again");
}

#[tokio::test]
async fn a_completed_password_reset_verifies_the_email() {
    let h = requiring().await;
    let account = h.register().await;
    let verification = h.newest_verify_token(&account.email).await;
    let token = h.forgot_and_read_token(&account.email).await;
    let reset = call(Endpoint::ResetPassword).json(json!({"token": token, "password": "New-Adventure-8"}));
    let reply = h.send(reset).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let key = reply.str("apiKey");
    assert_eq!(h.email_verified(&key).await, json!(true));
    assert_eq!(h.decision(&key).await, Decision::Admitted);
    h.send(verify_email(&verification)).await.assert_error(400, "Invalid or expired verification token");
}

/// Someone registers another person's email (never verified); its owner takes the account
/// over with a reset link, and every key the squatter made stops working.
#[tokio::test]
async fn the_owner_of_an_email_takes_an_unverified_account_over_and_the_squatters_keys_stop() {
    let h = requiring().await;
    let squatter = h.register().await;
    let (_, scoped) = h.scoped_key(&squatter.key, json!({"name": "squatter's bot"})).await;
    h.clock.advance(chrono::Duration::hours(25));
    let token = h.forgot_and_read_token(&squatter.email).await;
    let reply = h
        .send(
            call(Endpoint::ResetPassword)
                .json(json!({"token": token, "password": "Mine-After-All-9", "revokeKeys": false})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let owners = reply.str("apiKey");
    for key in [&squatter.key, &scoped] {
        assert_ne!(h.decision(key).await, Decision::Admitted, "the squatter's keys stop");
    }
    assert_eq!(h.decision(&owners).await, Decision::Admitted, "the owner's new key works, verified");
    let login = call(Endpoint::Login).json(json!({"email": squatter.email, "password": PASSWORD}));
    h.send(login).await.assert_error(401, "Invalid credentials");
}

#[tokio::test]
async fn a_reset_token_does_not_verify_and_a_verification_token_does_not_reset() {
    let h = requiring().await;
    let account = h.register().await;
    let verification = h.newest_verify_token(&account.email).await;
    let reset = h.forgot_and_read_token(&account.email).await;
    h.send(verify_email(&reset)).await.assert_error(400, "Invalid or expired verification token");
    let with_verification =
        call(Endpoint::ResetPassword).json(json!({"token": verification, "password": "New-Adventure-8"}));
    h.send(with_verification).await.assert_error(400, "Invalid or expired reset token");
    let validity = h.send(call(Endpoint::ValidateResetToken).param("token", &verification)).await;
    assert_eq!(validity.body, json!({"valid": false}));
    assert_eq!(h.decision(&account.key).await, Decision::Unverified);
}

#[tokio::test]
async fn verify_email_needs_a_token() {
    let h = requiring().await;
    h.send(call(Endpoint::VerifyEmail).json(json!({}))).await.assert_error(400, "Token is required");
    h.send(verify_email(&"0".repeat(64))).await.assert_error(400, "Invalid or expired verification token");
}

#[tokio::test]
async fn the_relays_verify_names_the_refusal_unverified() {
    let service = NewServiceKey::generate();
    let digests = ServiceKeyDigests::parse([service.digest.as_str()]).unwrap();
    let h = Harness::configured(move |c| {
        require(c);
        c.settings.service_key_digests = digests;
    })
    .await;
    let account = h.register().await;
    let answer = h.verify(&service, json!({"key": account.key})).await;
    assert_eq!((answer["valid"].clone(), answer["reason"].clone()), (json!(false), json!("unverified")), "{answer}");
    let token = h.newest_verify_token(&account.email).await;
    assert_eq!(h.send(verify_email(&token)).await.status, 200);
    assert_eq!(h.verify(&service, json!({"key": account.key})).await["valid"], true);
}

/// The DynamoDB calls one authorizer decision of `key` makes, by operation.
async fn calls_of_one_decision(h: &Harness, key: &str) -> (Decision, std::collections::BTreeMap<String, u64>) {
    let before = h.calls().await;
    let decision = h.decision(key).await;
    let after = h.calls().await;
    let spent = after
        .into_iter()
        .map(|(op, n)| {
            let was = before.get(&op).copied().unwrap_or(0);
            (op, n - was)
        })
        .filter(|(op, n)| *n > 0 && op.starts_with("dynamodb:"))
        .collect();
    (decision, spent)
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn refusing_an_unverified_key_costs_the_hot_path_no_extra_call() {
    let h = requiring().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    let (master_refused, master_calls) = calls_of_one_decision(&h, &account.key).await;
    let (scoped_refused, scoped_calls) = calls_of_one_decision(&h, &scoped).await;
    assert_eq!((master_refused, scoped_refused), (Decision::Unverified, Decision::Unverified));
    let token = h.newest_verify_token(&account.email).await;
    assert_eq!(h.send(verify_email(&token)).await.status, 200);
    let (master_admitted, master_after) = calls_of_one_decision(&h, &account.key).await;
    assert_eq!(master_admitted, Decision::Admitted);
    assert_eq!(master_calls, master_after, "the same reads and writes, refused or admitted");
    // A scoped key: its count, the account's refused count, and the count taken back.
    assert_eq!(scoped_calls.values().sum::<u64>(), 3, "{scoped_calls:?}");
    let (scoped_admitted, scoped_after) = calls_of_one_decision(&h, &scoped).await;
    assert_eq!(scoped_admitted, Decision::Admitted);
    assert_eq!(scoped_after.values().sum::<u64>(), 2, "{scoped_after:?}");
}
