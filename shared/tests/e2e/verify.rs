//! `POST /auth/verify`: the relay asks whether a key may make one more request, and this
//! service decides and counts, by the same rules as the gateway's authorizer. Its caller
//! is a service with a service key; its answers are the facts the relay needs to answer
//! its own 401 / 403 / 429.

use crate::support::*;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::domain::keys::{ApiKey, KeyKind};
use shared::domain::limits::{Limit, Throttling};
use shared::domain::service_key::{NewServiceKey, ServiceKeyDigests};
use shared::http::Endpoint;

/// A harness whose verify accepts `accepted` (digests), with the wrong-service-key
/// budget `failures` per address.
async fn verifying(accepted: &[&NewServiceKey], failures: u32) -> Harness {
    let digests: Vec<&str> = accepted.iter().map(|k| k.digest.as_str()).collect();
    let digests = ServiceKeyDigests::parse(digests).unwrap();
    Harness::configured(move |c| {
        c.settings.service_key_digests = digests;
        c.settings.throttling = Some(Throttling {
            service_key_failures: Limit::new(failures, 900),
            auth_per_address: Limit::new(1000, 900),
            ..Throttling::default()
        });
    })
    .await
}

fn unique_address() -> String {
    let id = uuid::Uuid::new_v4().as_u128();
    format!("2001:db8:{:x}:{:x}::1", (id >> 16) as u16, id as u16)
}

fn ask(service_key: &str, body: Value) -> Call {
    call(Endpoint::Verify).header("authorization", &format!("Bearer {service_key}")).json(body)
}

impl Harness {
    /// Asks verify about `body` with `service_key`; answers the 200's body.
    async fn verify(&self, service_key: &NewServiceKey, body: Value) -> Value {
        let reply = self.send(ask(&service_key.key, body)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body
    }
}

#[tokio::test]
async fn without_a_service_key_configured_the_route_does_not_exist() {
    let h = Harness::new().await;
    let account = h.register().await;
    let service = NewServiceKey::generate();
    let reply = h.send(ask(&service.key, json!({"key": account.key}))).await;
    reply.assert_error(404, "Not found");
    assert_eq!(h.send(call(Endpoint::UserData).key(&account.key)).await.body["requestsThisMonth"], 0);
}

#[tokio::test]
async fn a_service_key_is_checked_by_its_digest_and_can_be_rotated() {
    let (old, new) = (NewServiceKey::generate(), NewServiceKey::generate());
    let h = verifying(&[&old, &new], 100).await;
    let account = h.register().await;
    for service_key in [&old, &new] {
        assert_eq!(h.verify(service_key, json!({"key": account.key})).await["valid"], true);
    }
    let missing = call(Endpoint::Verify).json(json!({"key": account.key}));
    h.send(missing).await.assert_error(401, "A valid service key is required");
    let wrong = h.send(ask(&NewServiceKey::generate().key, json!({"key": account.key}))).await;
    wrong.assert_error(401, "A valid service key is required");
    assert_eq!(wrong.body["code"], "service_key_required");
    let not_bearer = call(Endpoint::Verify).header("authorization", &format!("Basic {}", old.key.as_str()));
    h.send(not_bearer.json(json!({"key": account.key}))).await.assert_error(401, "A valid service key is required");
    // The digest itself is not the key.
    h.send(ask(&old.digest, json!({"key": account.key}))).await.assert_error(401, "A valid service key is required");

    // Rotated: the old key's digest is dropped, the new one stays.
    let after = verifying(&[&new], 100).await;
    after.send(ask(&old.key, json!({"key": account.key}))).await.assert_error(401, "A valid service key is required");
    let reply = after.send(ask(&new.key, json!({"key": "frm_junk"}))).await;
    assert_eq!((reply.status, &reply.body["reason"]), (200, &json!("malformed")));
}

#[tokio::test]
async fn wrong_service_keys_are_throttled_per_address_and_never_count_a_request() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 3).await;
    let account = h.register().await;
    // Addresses of this test alone: the throttle's counts live in the store.
    let (here, there) = (unique_address(), unique_address());
    let guess = || ask(&NewServiceKey::generate().key, json!({"key": account.key})).sent_from(&here);
    for _ in 0..3 {
        h.send(guess()).await.assert_error(401, "A valid service key is required");
    }
    let throttled = h.send(guess()).await;
    throttled.assert_error(429, "Too many requests with a wrong service key from this IP, please try again later");
    assert!(throttled.header("retry-after").parse::<u64>().is_ok_and(|s| s > 0));
    // Another address, and the right key from the throttled one, are not held back.
    h.send(guess().sent_from(&there)).await.assert_error(401, "A valid service key is required");
    let right = h.send(ask(&service.key, json!({"key": account.key})).sent_from(&here)).await;
    assert_eq!((right.status, &right.body["valid"]), (200, &json!(true)));
    assert_eq!(right.body["requestsThisMonth"], 1, "only the verified request was counted");
}

#[tokio::test]
async fn a_valid_key_is_answered_with_the_authorizer_context_and_counted() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let expires = (h.clock.now() + chrono::Duration::days(30)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let (id, scoped) = h
        .scoped_key(
            &account.key,
            json!({"name": "bot", "scopedClientId": "world-1", "monthlyLimit": 40, "expiresAt": expires}),
        )
        .await;
    let answer = h.verify(&service, json!({"key": scoped, "clientId": "world-1"})).await;
    assert_eq!(
        answer,
        json!({
            "valid": true, "userId": account.id, "keyType": "scoped", "scopedKeyId": id,
            "scopedClientId": "world-1", "scopedUserId": "", "scopes": default_scopes(), "requestsThisMonth": 1, "requestsToday": 1,
            "monthlyLimit": 40, "dailyLimit": "", "expiresAt": expires, "subscriptionStatus": "free",
            "foundryUrl": null, "foundryUsername": null, "foundryPassword": null,
        })
    );
    let master = h.verify(&service, json!({"key": account.key})).await;
    assert_eq!((&master["keyType"], &master["scopedKeyId"]), (&json!("master"), &json!("")));
    assert_eq!((&master["requestsThisMonth"], &master["requestsToday"]), (&json!(2), &json!(2)));
    assert_eq!((&master["monthlyLimit"], &master["dailyLimit"]), (&json!(100), &json!(1000)));
    // The same counts as the authorizer's, in the same places.
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 1);
}

#[tokio::test]
async fn every_refusal_is_named_and_counts_nothing() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let soon = (h.clock.now() + chrono::Duration::minutes(5)).to_rfc3339();
    let (_, expiring) = h.scoped_key(&account.key, json!({"name": "expiring", "expiresAt": soon})).await;
    let (_, bound) =
        h.scoped_key(&account.key, json!({"name": "bound", "scopedClientId": "world-a", "scopedUserId": "gm"})).await;
    let (deleted_id, deleted) = h.scoped_key(&account.key, json!({"name": "deleted"})).await;
    h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", &deleted_id)).await;
    let user = h.app.store.user(&account.id).await.unwrap().unwrap();
    let disabled = ApiKey::generate(KeyKind::Scoped);
    let stored = shared::domain::model::ScopedKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name: "switched off".into(),
        digest: disabled.digest(),
        prefix: disabled.display_prefix(),
        scoped_client_id: None,
        scoped_user_id: None,
        scoped_client_ids: Vec::new(),
        scoped_user_ids: Default::default(),
        grant: shared::domain::scopes::Grant::Unrestricted,
        monthly_limit: None,
        daily_limit: None,
        expires_at: None,
        foundry_url: None,
        foundry_username: None,
        foundry_password_ciphertext: None,
        enabled: false,
        generation: user.key_generation,
        created_at: h.clock.now(),
        updated_at: h.clock.now(),
    };
    h.app.store.create_scoped_key(&user, &stored, 100).await.unwrap();
    h.clock.advance(chrono::Duration::minutes(5));
    let never_issued = ApiKey::generate(KeyKind::Scoped);

    let cases = [
        (json!({"key": ""}), "missing"),
        (json!({"key": "frs_junk"}), "malformed"),
        (json!({"key": never_issued.expose()}), "unknown"),
        (json!({"key": deleted}), "unknown"),
        (json!({"key": disabled.expose()}), "disabled"),
        (json!({"key": expiring}), "expired"),
        (json!({"key": bound, "clientId": "world-b"}), "client"),
        (json!({"key": bound, "clientId": "world-a", "userId": "player"}), "user"),
    ];
    for (body, reason) in cases {
        let answer = h.verify(&service, body.clone()).await;
        assert_eq!(
            answer,
            json!({"valid": false, "reason": reason, "resetsAt": null, "requiredScope": null}),
            "{body}"
        );
    }
    // Revoked: a scoped key of an older master key generation (the first step of
    // deleting an account, before its keys are gone).
    h.app.store.revoke_scoped_keys(&user, h.clock.now()).await.unwrap();
    assert_eq!(h.verify(&service, json!({"key": bound})).await["reason"], "revoked");
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(data.body["requestsThisMonth"], 0, "no refusal was counted");
}

#[tokio::test]
async fn a_cost_is_admitted_only_when_every_cap_has_room_for_all_of_it() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "batch", "dailyLimit": 10})).await;
    assert_eq!(h.verify(&service, json!({"key": scoped, "cost": 7})).await["requestsToday"], 7);
    let refused = h.verify(&service, json!({"key": scoped, "cost": 4})).await;
    let tomorrow = (h.clock.now() + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z").to_string();
    assert_eq!(
        refused,
        json!({"valid": false, "reason": "cap", "resetsAt": tomorrow, "requiredScope": null}),
        "7 + 4 > 10"
    );
    assert_eq!(h.verify(&service, json!({"key": scoped, "cost": 3})).await["requestsToday"], 10, "7 + 3 = 10");
    assert_eq!(h.verify(&service, json!({"key": scoped})).await["reason"], "cap");
    // The account's monthly cap (100) refuses the master key at its boundary, until next month.
    let master = h.verify(&service, json!({"key": account.key, "cost": 90})).await;
    assert_eq!(master["requestsThisMonth"], 100);
    let over = h.verify(&service, json!({"key": account.key})).await;
    let next_month = shared::domain::meter::next_month(h.clock.now()).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(over, json!({"valid": false, "reason": "cap", "resetsAt": next_month, "requiredScope": null}));
    let whole = h.verify(&service, json!({"key": scoped, "cost": 1.0, "count": false})).await;
    assert_eq!(whole["reason"], "cap", "1.0 is a cost of 1 (and the key is at its cap)");
    for cost in [json!(0), json!(1001), json!(2.5), json!(-1), json!("3"), json!([1])] {
        let reply = h.send(ask(&service.key, json!({"key": scoped, "cost": cost}))).await;
        reply.assert_error(400, "cost must be a whole number from 1 to 1000");
    }
    h.send(ask(&service.key, json!({"key": scoped, "count": "no"}))).await.assert_error(400, "count must be a boolean");
    h.send(ask(&service.key, json!({"clientId": "x"}))).await.assert_error(400, "key is required");
}

#[tokio::test]
async fn count_false_decides_without_counting() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "cached", "monthlyLimit": 2})).await;
    for _ in 0..3 {
        let answer = h.verify(&service, json!({"key": scoped, "count": false})).await;
        assert_eq!((&answer["valid"], &answer["requestsThisMonth"]), (&json!(true), &json!(0)));
    }
    // Usage reported later, with a cost.
    assert_eq!(h.verify(&service, json!({"key": scoped, "cost": 2})).await["requestsThisMonth"], 2);
    assert_eq!(h.verify(&service, json!({"key": scoped, "count": false})).await["reason"], "cap");
}

#[tokio::test]
async fn thirty_concurrent_verifies_of_one_key_are_counted_exactly() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "busy", "monthlyLimit": 25})).await;
    let answers = join_all((0..30).map(|_| h.verify(&service, json!({"key": scoped})))).await;
    let mut counts: Vec<u64> = answers.iter().filter_map(|a| a["requestsThisMonth"].as_u64()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=25).collect::<Vec<_>>(), "25 admitted, each with its own count");
    assert!(answers.iter().filter(|a| a["valid"] == false).all(|a| a["reason"] == "cap"));
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(data.body["requestsThisMonth"], 25, "the account counted the same 25");
}

#[tokio::test]
async fn credentials_are_decrypted_only_when_asked_and_only_for_that_key() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 100).await;
    let account = h.register().await;
    let login = json!({
        "name": "headless", "foundryUrl": "https://foundry.example.com", "foundryUsername": "Gamemaster",
        "foundryPassword": "table-top-secret"
    });
    let (_, scoped) = h.scoped_key(&account.key, login).await;
    let plain = h.verify(&service, json!({"key": scoped})).await;
    assert_eq!((&plain["foundryUrl"], &plain["foundryPassword"]), (&Value::Null, &Value::Null), "not asked");
    let asked = h.verify(&service, json!({"key": scoped, "credentials": true})).await;
    assert_eq!(asked["foundryUrl"], "https://foundry.example.com");
    assert_eq!(asked["foundryUsername"], "Gamemaster");
    assert_eq!(asked["foundryPassword"], "table-top-secret");
    let master = h.verify(&service, json!({"key": account.key, "credentials": true})).await;
    assert_eq!(master["foundryPassword"], Value::Null, "a master key has no Foundry login");
    let refused = h.verify(&service, json!({"key": "frs_junk", "credentials": true})).await;
    assert_eq!(
        refused,
        json!({"valid": false, "reason": "malformed", "resetsAt": null, "requiredScope": null}),
        "nothing for a refusal"
    );
}
