//! Keys imported from the Node relay (64 hex characters) end at `LEGACY_KEYS_UNTIL`: until
//! then they work at both doors and user-data says they should be regenerated; from then
//! on the authorizer and verify refuse them with reason `legacy`, without a store call.

use crate::authorizer::authorizer_event;
use crate::support::*;
use crate::verify::ask;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared::domain::keys::ApiKey;
use shared::domain::meter::Decision;
use shared::domain::metering::{self, Ask};
use shared::domain::model::StoredMasterKey;
use shared::domain::ports::EncryptionContext;
use shared::domain::service_key::{NewServiceKey, ServiceKeyDigests};
use shared::http::Endpoint;

/// A harness whose verify accepts `service`, with relay keys ending at `until`.
async fn ending(service: &NewServiceKey, until: Option<DateTime<Utc>>) -> Harness {
    let digests = ServiceKeyDigests::parse([service.digest.as_str()]).unwrap();
    Harness::configured(move |c| {
        c.settings.service_key_digests = digests;
        c.settings.legacy_keys_until = until;
    })
    .await
}

impl Harness {
    /// An account whose master key is a relay key (64 lowercase hex characters), as
    /// import-relay leaves it: sealed like any master key, so login shows it.
    pub(crate) async fn register_with_relay_key(&self) -> Account {
        let mut account = self.register().await;
        let text = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let key = ApiKey::parse(&text).unwrap();
        assert!(key.is_legacy());
        let user = self.app.store.user(&account.id).await.unwrap().unwrap();
        let context = EncryptionContext::master_key(&account.id);
        let ciphertext = self.app.cipher.encrypt(text.as_bytes(), &context).await.unwrap();
        let now = self.clock.now();
        let sealed =
            StoredMasterKey { digest: key.digest(), ciphertext, prefix: key.display_prefix(), created_at: now };
        self.app.store.replace_master_key(&user, &sealed, now).await.unwrap();
        account.key = text;
        account
    }

    /// The authorizer's decision for `key` and the reason its metric counts it under.
    async fn door(&self, key: &str) -> (Value, Decision) {
        let request = serde_json::from_value(authorizer_event(Some(key))).unwrap();
        let answer = serde_json::to_value(shared::http::authorizer::respond(&self.app, &request).await).unwrap();
        let reason = match metering::decide(&self.app, Ask { count: false, ..Ask::key(Some(key)) }).await.unwrap() {
            Ok(_) => Decision::Admitted,
            Err(refusal) => refusal.reason,
        };
        (answer["isAuthorized"].clone(), reason)
    }
}

#[tokio::test]
async fn before_the_end_a_relay_key_passes_both_doors_and_user_data_asks_to_regenerate_it() {
    let service = NewServiceKey::generate();
    let until = Utc::now() + Duration::days(30);
    let h = ending(&service, Some(until)).await;
    let account = h.register_with_relay_key().await;

    let door = h.door(&account.key).await;
    let verified = h.verify(&service, json!({"key": account.key})).await;
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;

    assert_eq!(door, (json!(true), Decision::Admitted));
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(data.status, 200, "{}", data.text);
    assert_eq!(data.body["legacyKey"], true);
    assert_eq!(data.body["legacyKeysUntil"], json!(until.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    assert_eq!(data.body["requestsThisMonth"], 2, "both doors counted it");
}

#[tokio::test]
async fn from_the_end_a_relay_key_is_refused_as_legacy_at_both_doors() {
    let service = NewServiceKey::generate();
    let until = Utc::now() + Duration::days(30);
    let h = ending(&service, Some(until)).await;
    let account = h.register_with_relay_key().await;
    let own_key_account = h.register().await;

    h.clock.advance(until - h.clock.now());
    let door = h.door(&account.key).await;
    let verified = h.verify(&service, json!({"key": account.key})).await;
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;

    assert_eq!(door, (json!(false), Decision::Legacy), "the end's own instant is refused");
    assert_eq!(verified, json!({"valid": false, "reason": "legacy", "resetsAt": null, "requiredScope": null}));
    data.assert_error(401, "Invalid API key");
    // The service's own keys are not relay keys.
    assert_eq!(h.door(&own_key_account.key).await, (json!(true), Decision::Admitted));
    assert_eq!(h.send(call(Endpoint::UserData).key(&own_key_account.key)).await.body["legacyKey"], false);
}

#[tokio::test]
async fn a_relay_account_past_the_end_signs_in_and_regenerates_a_key_that_works() {
    let service = NewServiceKey::generate();
    let until = Utc::now() + Duration::days(30);
    let h = ending(&service, Some(until)).await;
    let account = h.register_with_relay_key().await;
    h.clock.advance(until + Duration::days(1) - h.clock.now());

    let regenerated =
        h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;

    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let key = regenerated.str("apiKey");
    assert_eq!(h.door(&key).await, (json!(true), Decision::Admitted));
    assert_eq!(h.verify(&service, json!({"key": key})).await["valid"], true);
    assert_eq!(h.send(call(Endpoint::UserData).key(&key)).await.body["legacyKey"], false);
}

#[tokio::test]
async fn with_no_end_set_a_relay_key_keeps_working() {
    let service = NewServiceKey::generate();
    let h = ending(&service, None).await;
    let account = h.register_with_relay_key().await;
    h.clock.advance(Duration::days(3650));

    assert_eq!(h.door(&account.key).await, (json!(true), Decision::Admitted));
    assert_eq!(h.verify(&service, json!({"key": account.key})).await["valid"], true);
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!((data.body["legacyKey"].clone(), data.body["legacyKeysUntil"].clone()), (json!(true), Value::Null));
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_relay_key_past_the_end_is_refused_without_a_store_call() {
    let service = NewServiceKey::generate();
    let until = Utc::now() + Duration::days(30);
    let h = ending(&service, Some(until)).await;
    let account = h.register_with_relay_key().await;
    h.clock.advance(until - h.clock.now());

    let before = h.calls().await;
    let (door, _) = h.door(&account.key).await;
    let verified = h.send(ask(&service.key, json!({"key": account.key}))).await;
    let after = h.calls().await;

    assert_eq!((door, verified.body["reason"].clone()), (json!(false), json!("legacy")));
    let dynamodb: u64 = after
        .iter()
        .filter(|(op, _)| op.starts_with("dynamodb:"))
        .map(|(op, n)| n - before.get(op).unwrap_or(&0))
        .sum();
    assert_eq!(dynamodb, 0, "{after:?}");
}
