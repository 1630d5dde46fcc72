//! forgot-password, reset-password, validate-reset-token.

use crate::support::*;
use serde_json::json;
use shared::http::Endpoint;

const GENERIC: &str = "If an account with that email exists, a password reset link has been sent.";

fn reset(token: &str, password: &str) -> Call {
    call(Endpoint::ResetPassword).json(json!({"token": token, "password": password}))
}

fn reset_revoking(token: &str, password: &str, revoke_keys: bool) -> Call {
    call(Endpoint::ResetPassword).json(json!({"token": token, "password": password, "revokeKeys": revoke_keys}))
}

fn validate(token: &str) -> Call {
    call(Endpoint::ValidateResetToken).param("token", token)
}

#[tokio::test]
async fn register_login_forgot_read_the_email_reset_and_login_again() {
    let h = Harness::new().await;
    let account = h.register().await;
    let login = |password: &str| call(Endpoint::Login).json(json!({"email": account.email, "password": password}));
    assert_eq!(h.send(login(PASSWORD)).await.status, 200);

    let token = h.forgot_and_read_token(&account.email).await;
    assert!(token.len() >= 32, "at least 128 bits: {token}");
    let mail = h.mails_to(&account.email).await.pop().unwrap();
    assert_eq!(mail["subject"], "Reset your Foundry REST API password");
    assert!(mail["body"]
        .as_str()
        .unwrap()
        .contains(&format!("{}?reset-token={token}", h.config.settings.reset_url.as_ref().unwrap())));
    assert_eq!(h.send(validate(&token)).await.body, json!({"valid": true}));
    assert_eq!(h.send(validate(&token)).await.body, json!({"valid": true}), "validating never consumes");

    let reply = h.send(reset(&token, "New-Adventure-8")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"message": "Password has been reset successfully", "apiKey": null}));

    h.send(login(PASSWORD)).await.assert_error(401, "Invalid credentials");
    let again = h.send(login("New-Adventure-8")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.str("apiKey"), account.key, "the API key is unchanged");
    assert_eq!(h.send(validate(&token)).await.body, json!({"valid": false}));
    h.send(reset(&token, "Another-One-9")).await.assert_error(400, "Invalid or expired reset token");
    let notice = h.mails_to(&account.email).await.pop().unwrap();
    assert_eq!(notice["subject"], "Your Foundry REST API password was changed");
}

#[tokio::test]
async fn forgot_password_answers_alike_for_known_and_unknown_emails() {
    let h = Harness::new().await;
    let account = h.register().await;
    let stranger = unique_email();
    let known = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;
    let unknown = h.send(call(Endpoint::ForgotPassword).json(json!({"email": stranger}))).await;
    let malformed = h.send(call(Endpoint::ForgotPassword).json(json!({"email": "nobody"}))).await;
    assert_eq!((known.status, known.body.clone()), (200, json!({"message": GENERIC})));
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text));
    assert_eq!((known.status, &known.text), (malformed.status, &malformed.text));
    assert_eq!(h.mails_to(&account.email).await.len(), 1);
    assert!(h.mails_to(&stranger).await.is_empty());
    h.send(call(Endpoint::ForgotPassword).json(json!({}))).await.assert_error(400, "Email is required");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_failing_mail_service_is_logged_not_answered() {
    // SES refuses a sender identity that was never created.
    let h = Harness::configured(|c| c.email_from = Some("unverified@nowhere.test".into())).await;
    let account = h.register().await;
    let reply = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"message": GENERIC})));
    assert!(h.mails_to(&account.email).await.is_empty());
}

#[tokio::test]
async fn the_password_rule_is_checked_before_the_token() {
    let h = Harness::new().await;
    h.send(call(Endpoint::ResetPassword).json(json!({"token": "abc"})))
        .await
        .assert_error(400, "Token and password are required");
    h.send(reset("no-such-token", "weak")).await.assert_error(400, "Password must be at least 8 characters long");
    h.send(reset("no-such-token", "Strong-Enough-1")).await.assert_error(400, "Invalid or expired reset token");
    assert_eq!(h.send(validate("no-such-token")).await.body, json!({"valid": false}));
}

#[tokio::test]
async fn a_token_expires_after_one_hour() {
    let h = Harness::new().await;
    let account = h.register().await;
    let token = h.forgot_and_read_token(&account.email).await;
    h.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(h.send(validate(&token)).await.body, json!({"valid": true}));
    h.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(h.send(validate(&token)).await.body, json!({"valid": false}));
    h.send(reset(&token, "Too-Late-123")).await.assert_error(400, "Invalid or expired reset token");
}

#[tokio::test]
async fn a_newer_token_supersedes_the_older_one() {
    let h = Harness::new().await;
    let account = h.register().await;
    let first = h.forgot_and_read_token(&account.email).await;
    let second = h.forgot_and_read_token(&account.email).await;
    assert_ne!(first, second);
    assert_eq!(h.send(validate(&first)).await.body, json!({"valid": false}));
    h.send(reset(&first, "Older-Token-1")).await.assert_error(400, "Invalid or expired reset token");
    assert_eq!(h.send(reset(&second, "Newer-Token-1")).await.status, 200);
}

#[tokio::test]
async fn of_concurrent_resets_with_one_token_exactly_one_succeeds() {
    let h = Harness::new().await;
    let account = h.register().await;
    let token = h.forgot_and_read_token(&account.email).await;
    let attempts = (0..6).map(|i| h.send(reset(&token, &format!("Racing-Reset-{i}"))));
    let replies = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(replies.iter().filter(|r| r.status != 200).all(|r| r.error() == "Invalid or expired reset token"));
    // Exactly the winner's password works.
    let winner = replies.iter().position(|r| r.status == 200).unwrap();
    let login = h
        .send(call(Endpoint::Login).json(json!({"email": account.email, "password": format!("Racing-Reset-{winner}")})))
        .await;
    assert_eq!(login.status, 200);
}

#[tokio::test]
async fn a_reset_without_revoke_keys_leaves_every_key_working() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    let token = h.forgot_and_read_token(&account.email).await;
    let reply = h.send(reset_revoking(&token, "New-Adventure-8", false)).await;
    assert_eq!(reply.body["apiKey"], serde_json::Value::Null);
    assert!(h.admitted(&account.key).await && h.admitted(&scoped).await, "the relay still takes both keys");
}

#[tokio::test]
async fn a_reset_with_revoke_keys_replaces_the_master_key_and_stops_every_scoped_key() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    let token = h.forgot_and_read_token(&account.email).await;
    let reply = h.send(reset_revoking(&token, "New-Adventure-8", true)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["message"], "Password has been reset successfully");
    let new_key = reply.str("apiKey");
    assert!(new_key.starts_with("frm_") && new_key != account.key);

    assert!(!h.admitted(&account.key).await, "the relay refuses the old master key");
    assert!(!h.admitted(&scoped).await, "and every scoped key");
    h.send(call(Endpoint::UserData).key(&account.key)).await.assert_error(401, "Invalid API key");
    let data = h.send(call(Endpoint::UserData).key(&new_key)).await;
    assert_eq!((data.status, data.str("apiKey")), (200, new_key.clone()));
    let login =
        h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": "New-Adventure-8"}))).await;
    assert_eq!(login.str("apiKey"), new_key, "the new password signs in to the new key");
    let list = h.send(call(Endpoint::ListApiKeys).key(&new_key)).await;
    assert_eq!(list.body["keys"][0]["enabled"], false, "the retired scoped key shows as disabled: {}", list.body);
    // The token is used up: a second redemption (revoking again) is refused.
    h.send(reset_revoking(&token, "Other-Adventure-9", true)).await.assert_error(400, "Invalid or expired reset token");
}

#[tokio::test]
async fn i_think_my_key_leaked_sends_a_link_that_offers_to_replace_every_key() {
    let h = Harness::new().await;
    let account = h.register().await;
    let reply = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email, "keyLeaked": true}))).await;
    assert_eq!(reply.body["message"], GENERIC);
    let mail = h.mails_to(&account.email).await.pop().unwrap();
    let token = reset_token_in(&mail);
    let page = h.config.settings.reset_url.as_ref().unwrap();
    assert!(mail["body"].as_str().unwrap().contains(&format!("{page}?reset-token={token}&revoke-keys=1")), "{mail}");
    h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email, "keyLeaked": null}))).await;
    let plain = h.mails_to(&account.email).await.pop().unwrap();
    assert!(!plain["body"].as_str().unwrap().contains("revoke-keys"), "only when asked");
}
