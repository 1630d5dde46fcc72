//! The design's invariants, each with a test that fails without it.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::domain::error::PortError;
use shared::domain::keys::KeyDigest;
use shared::domain::model::StoredMasterKey;
use shared::domain::ports::EncryptionContext;
use shared::http::Endpoint;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn concurrent_registrations_of_one_email_create_exactly_one_account() {
    let h = Harness::new().await;
    let email = unique_email();
    let spellings: Vec<String> = (0..8)
        .map(|i| match i % 3 {
            0 => email.clone(),
            1 => email.to_uppercase(),
            _ => format!(" {}", email.replacen('p', "P", 1)),
        })
        .collect();
    let attempts =
        spellings.iter().map(|e| h.send(call(Endpoint::Register).json(json!({"email": e, "password": PASSWORD}))));
    let replies = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");

    let accounts = h
        .dump_tables()
        .await
        .into_iter()
        .filter(|item| item.contains(&format!("S(\"{}\")", email.to_lowercase())) && item.contains("USER#"))
        .count();
    assert_eq!(accounts, 1);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_malformed_key_is_refused_without_any_store_call() {
    // A store whose DynamoDB is unreachable: any call would answer 503.
    let mut h = Harness::new().await;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let unreachable = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url("http://127.0.0.1:9").build();
    h.app.store = Arc::new(shared::aws::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(unreachable),
        h.config.tables.clone(),
    ));
    let genuine = shared::domain::keys::ApiKey::generate(shared::domain::keys::KeyKind::Master);
    let mut broken_checksum = genuine.expose().to_owned();
    let last = broken_checksum.pop().unwrap();
    broken_checksum.push(if last == 'A' { 'B' } else { 'A' });

    for noise in ["frm_nope", "hello", broken_checksum.as_str(), ""] {
        h.send(call(Endpoint::UserData).key(noise)).await.assert_error(401, "Invalid API key");
    }
    // The same route with a well-formed key does reach the (unreachable) store.
    h.send(call(Endpoint::UserData).key(genuine.expose())).await.assert_error(503, "Service temporarily unavailable");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_master_key_is_stored_as_its_digest_and_a_ciphertext_bound_to_the_account() {
    let h = Harness::new().await;
    let account = h.register().await;
    let user = h.user_item(&account.id).await;
    let digest = hex::encode(Sha256::digest(account.key.as_bytes()));
    assert_eq!(user["masterKeyDigest"].as_s().unwrap(), &digest);
    let index = h.item(h.config.tables.users().unwrap(), "pk", &format!("KEY#{digest}")).await.unwrap();
    assert_eq!(index["userId"].as_s().unwrap(), &account.id);

    let ciphertext = user["masterKeyCiphertext"].as_b().unwrap().as_ref().to_vec();
    let plain = h.app.cipher.decrypt(&ciphertext, &EncryptionContext::master_key(&account.id)).await.unwrap();
    assert_eq!(plain.as_slice(), account.key.as_bytes());
    let other = h.register().await;
    assert!(h.app.cipher.decrypt(&ciphertext, &EncryptionContext::master_key(&other.id)).await.is_err());
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn no_table_holds_a_secret_in_plain_text_after_a_full_flow() {
    let h = Harness::new().await;
    let account = h.register_as(&unique_email(), "Plain-Secret-Pass-1").await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "n", "foundryPassword": "Plain-Foundry-Pass-2"})).await;
    let token = h.forgot_and_read_token(&account.email).await;
    let second_token = h.forgot_and_read_token(&account.email).await;
    let reply = h
        .send(call(Endpoint::ResetPassword).json(json!({"token": second_token, "password": "Plain-Reset-Pass-3"})))
        .await;
    assert_eq!(reply.status, 200);
    let third_token = h.forgot_and_read_token(&account.email).await;

    let items = h.dump_tables().await.join("\n");
    assert!(items.contains(&account.id), "the scan reads the account's items");
    for secret in [
        "Plain-Secret-Pass-1",
        "Plain-Foundry-Pass-2",
        "Plain-Reset-Pass-3",
        account.key.as_str(),
        scoped.as_str(),
        token.as_str(),
        second_token.as_str(),
        third_token.as_str(),
    ] {
        assert!(!items.contains(secret), "a table holds {secret}");
    }
    // Only the digest of the outstanding token is kept.
    assert!(items.contains(&hex::encode(Sha256::digest(third_token.as_bytes()))));
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_stale_master_key_change_writes_nothing() {
    let h = Harness::new().await;
    let account = h.register().await;
    let mut stale = h.app.store.user(&account.id).await.unwrap().unwrap();
    stale.key_generation += 7;
    let replacement = StoredMasterKey {
        digest: KeyDigest("f".repeat(64)),
        ciphertext: vec![1, 2, 3],
        prefix: "frm_stale000".into(),
        created_at: h.clock.now(),
    };
    let result = h.app.store.replace_master_key(&stale, &replacement, h.clock.now()).await;
    assert!(matches!(result, Err(PortError::Conflict)), "{result:?}");
    // All or nothing: the new index entry was not written, the old one was not deleted.
    assert!(h.item(h.config.tables.users().unwrap(), "pk", &format!("KEY#{}", "f".repeat(64))).await.is_none());
    assert_eq!(h.send(call(Endpoint::UserData).key(&account.key)).await.status, 200);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_registration_that_loses_the_email_leaves_no_item_behind() {
    let h = Harness::new().await;
    let account = h.register().await;
    let before = h.dump_tables().await.len();
    let reply = h
        .send(call(Endpoint::Register).json(json!({"email": account.email.to_uppercase(), "password": PASSWORD})))
        .await;
    assert_eq!(reply.status, 409);
    // Other tests write to the same tables meanwhile, so look for this email's items only.
    let mine = h.dump_tables().await.into_iter().filter(|item| item.contains(&account.email.to_lowercase())).count();
    assert_eq!(mine, 2, "one account item and one email reservation");
    assert!(before > 0);
}

/// Collects what the service logs, at the most verbose level for its own code.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn no_secret_reaches_a_log_line() {
    let (captured, _guard) = capture_logs();

    let h = Harness::new().await;
    let account = h.register_as(&unique_email(), "Logged-Pass-1").await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "n", "foundryPassword": "Logged-Foundry-2"})).await;
    let token = h.forgot_and_read_token(&account.email).await;
    h.send(call(Endpoint::ResetPassword).json(json!({"token": token, "password": "Logged-Reset-6"}))).await;
    h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": "Wrong-Logged-3"}))).await;
    h.send(call(Endpoint::ValidateResetToken).param("token", "guessed-token-4")).await;
    h.send(call(Endpoint::UserData).key(&scoped)).await;
    h.send(
        call(Endpoint::ChangePassword)
            .key(&account.key)
            .json(json!({"currentPassword": "Logged-Reset-6", "newPassword": "Logged-New-5"})),
    )
    .await;
    // Mail that fails, so the error paths log too.
    let failing = Harness::configured(|c| c.email_from = Some("unverified@nowhere.test".into())).await;
    failing.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sending email failed"), "the capture works: {logs}");
    assert!(logs.contains("password reset with a token"), "the capture works: {logs}");
    for secret in [
        "Logged-Pass-1",
        "Logged-Foundry-2",
        "Wrong-Logged-3",
        "guessed-token-4",
        "Logged-New-5",
        "Logged-Reset-6",
        account.key.as_str(),
        scoped.as_str(),
        token.as_str(),
        "argon2id",
    ] {
        assert!(!logs.contains(secret), "a log line holds {secret}");
    }
}

/// Captures, as JSON lines, what the service logs while `_guard` lives.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,shared=trace"))
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

impl Captured {
    /// The captured lines that carry `message`, parsed.
    fn lines_with(&self, message: &str) -> Vec<serde_json::Value> {
        let logs = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        logs.lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|line| line["fields"]["message"] == message)
            .collect()
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_failing_dependency_is_logged_once_with_its_whole_cause_the_route_and_the_request_id() {
    // Given a store whose tables do not exist (DynamoDB answers ResourceNotFoundException)
    let working = Harness::new().await;
    let account = working.register().await;
    let missing = format!("missing-{}", uuid::Uuid::new_v4().simple());
    let h = Harness::configured(|c| {
        let tables = &mut c.tables;
        for table in [&mut tables.users, &mut tables.scoped_keys, &mut tables.reset_tokens, &mut tables.throttle] {
            *table = Some(missing.clone());
        }
    })
    .await;
    let (captured, _guard) = capture_logs();

    // When a route and the authorizer need it
    let request = call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD})).request();
    let request_id = match lambda_http::RequestExt::request_context_ref(&request) {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.request_id.clone().unwrap(),
        _ => panic!("an HTTP API request"),
    };
    let reply = Reply::from(Endpoint::Login.handle(&h.app, request).await);
    let refused = h.authorize(Some(&account.key)).await;

    // Then each answer tells nothing, and its one log line tells the SDK's error code
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error(), "Internal server error");
    assert_eq!(refused["isAuthorized"], false);
    let route_lines = captured.lines_with("request failed: answered 500");
    assert_eq!(route_lines.len(), 1, "{route_lines:?}");
    let line = &route_lines[0]["fields"];
    assert_eq!((line["route"].as_str(), line["request_id"].as_str()), (Some("login"), Some(request_id.as_str())));
    let error = line["error"].as_str().unwrap();
    assert!(error.starts_with("internal error: ") && error.contains("ResourceNotFoundException"), "{error}");
    let authorizer_lines = captured.lines_with("authorizer refused a request it could not check");
    assert_eq!(authorizer_lines.len(), 1, "{authorizer_lines:?}");
    let line = &authorizer_lines[0]["fields"];
    assert_eq!(line["route"], "GET /clients");
    assert_eq!(line["request_id"], "CgJ3vhqpDoEEMfw=");
    assert!(line["error"].as_str().unwrap().contains("ResourceNotFoundException"), "{line}");
}

impl Harness {
    pub async fn item(
        &self,
        table: &str,
        key: &str,
        value: &str,
    ) -> Option<std::collections::HashMap<String, AttributeValue>> {
        self.dynamo()
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    pub async fn user_item(&self, id: &str) -> std::collections::HashMap<String, AttributeValue> {
        self.item(self.config.tables.users().unwrap(), "pk", &format!("USER#{id}")).await.unwrap()
    }
}
