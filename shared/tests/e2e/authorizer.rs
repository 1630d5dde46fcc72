//! The `authorizer` function: HTTP API Lambda authorizer events (payload 2.0) answered
//! against the emulator; caps, counters and their rollover on the injected clock.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Datelike;
use serde_json::{json, Value};
use shared::domain::meter::Decision;
use shared::http::Endpoint;

/// `events/authorizer.json` (the event API Gateway sends for a request to one of the
/// relay's routes), with the given key or none.
pub fn authorizer_event(key: Option<&str>) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/authorizer.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let headers = event["headers"].as_object_mut().unwrap();
    match key {
        Some(key) => {
            headers.insert("x-api-key".into(), json!(key));
            event["identitySource"] = json!([key]);
        }
        None => {
            headers.remove("x-api-key");
            event["identitySource"] = json!([]);
        }
    }
    event
}

impl Harness {
    pub async fn authorize(&self, key: Option<&str>) -> Value {
        let request = serde_json::from_value(authorizer_event(key)).expect("an authorizer request");
        serde_json::to_value(shared::http::authorizer::respond(&self.app, &request).await).unwrap()
    }

    /// The authorizer's answer to a relay request of `method` on `path` (and query) with `key`.
    pub async fn authorize_route(&self, key: &str, method: &str, path: &str) -> Value {
        let mut event = authorizer_event(Some(key));
        let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
        event["rawPath"] = json!(raw_path);
        event["rawQueryString"] = json!(query);
        let parameters: serde_json::Map<String, Value> =
            url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), json!(v))).collect();
        event["queryStringParameters"] = Value::Object(parameters);
        event["requestContext"]["http"]["method"] = json!(method);
        event["requestContext"]["http"]["path"] = json!(raw_path);
        event["routeKey"] = json!(format!("{method} {raw_path}"));
        let request = serde_json::from_value(event).expect("an authorizer request");
        serde_json::to_value(shared::http::authorizer::respond(&self.app, &request).await).unwrap()
    }

    pub async fn admitted(&self, key: &str) -> bool {
        self.authorize(Some(key)).await["isAuthorized"].as_bool().unwrap()
    }

    /// Sets the subscription as billing does: on the account and on its meter.
    async fn set_subscription(&self, user_id: &str, status: &str) {
        for item in [format!("USER#{user_id}"), format!("METER#{user_id}")] {
            self.dynamo()
                .update_item()
                .table_name(self.config.tables.users().unwrap())
                .key("pk", AttributeValue::S(item))
                .update_expression("SET subscriptionStatus = :s")
                .expression_attribute_values(":s", AttributeValue::S(status.into()))
                .send()
                .await
                .unwrap();
        }
    }
}

const REFUSED: fn() -> Value = || json!({"isAuthorized": false, "context": {}});

#[tokio::test]
async fn every_kind_of_bad_key_is_refused() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (deleted_id, deleted) = h.scoped_key(&account.key, json!({"name": "deleted"})).await;
    h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", &deleted_id)).await;
    let soon = (h.clock.now() + chrono::Duration::minutes(5)).to_rfc3339();
    let (_, expiring) = h.scoped_key(&account.key, json!({"name": "expiring", "expiresAt": soon})).await;
    let (_, disabled) = h.scoped_key(&account.key, json!({"name": "disabled by a new master key"})).await;
    assert!(h.admitted(&expiring).await && h.admitted(&disabled).await);
    let reply = h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;
    let new_master = reply.str("apiKey");
    let never_issued = shared::domain::keys::ApiKey::generate(shared::domain::keys::KeyKind::Scoped);

    assert_eq!(h.authorize(None).await, REFUSED());
    for refused in ["", "frs_junk", never_issued.expose(), &deleted, &disabled, &account.key] {
        assert_eq!(h.authorize(Some(refused)).await, REFUSED(), "{refused}");
    }
    let expiring_after_regenerate = h.scoped_key(&new_master, json!({"name": "expiring", "expiresAt": soon})).await.1;
    assert!(h.admitted(&expiring_after_regenerate).await);
    h.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(h.authorize(Some(&expiring_after_regenerate)).await, REFUSED(), "expired while its item exists");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&new_master)).await;
    assert!(listed.body["keys"].as_array().unwrap().iter().any(|k| k["isExpired"] == true));
}

#[tokio::test]
async fn the_context_tells_the_route_who_is_calling() {
    let h = Harness::configured(|c| c.settings.monthly_request_limit = 250).await;
    let account = h.register().await;
    let (id, scoped) = h
        .scoped_key(
            &account.key,
            json!({"name": "bot", "scopedClientId": "client-7", "scopedUserId": "gm-3", "monthlyLimit": 40}),
        )
        .await;
    assert_eq!(
        h.authorize(Some(&scoped)).await,
        json!({"isAuthorized": true, "context": {
            "userId": account.id, "keyType": "scoped", "scopedKeyId": id, "scopedClientId": "client-7",
            "scopedUserId": "gm-3", "scopes": default_scopes(), "requestsThisMonth": 1, "requestsToday": 1, "monthlyLimit": 40, "dailyLimit": "",
        }})
    );
    assert_eq!(
        h.authorize(Some(&account.key)).await,
        json!({"isAuthorized": true, "context": {
            "userId": account.id, "keyType": "master", "scopedKeyId": "", "scopedClientId": "",
            "scopedUserId": "", "scopes": every_scope(), "requestsThisMonth": 2, "requestsToday": 2, "monthlyLimit": 250, "dailyLimit": 1000,
        }})
    );
    let (_, unlimited) = h.scoped_key(&account.key, json!({"name": "no cap"})).await;
    let context = &h.authorize(Some(&unlimited)).await["context"];
    assert_eq!((context["monthlyLimit"].clone(), context["scopedClientId"].clone()), (json!(""), json!("")));
}

#[tokio::test]
async fn a_key_cap_of_three_admits_exactly_three_and_refusals_are_not_counted() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "capped", "monthlyLimit": 3})).await;
    let admitted: Vec<bool> = futures::future::join_all((0..3).map(|_| h.admitted(&scoped))).await;
    assert_eq!(admitted, [true, true, true]);
    for _ in 0..4 {
        assert!(!h.admitted(&scoped).await);
    }
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!((data.body["requestsThisMonth"].clone(), data.body["requestsToday"].clone()), (json!(3), json!(3)));
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 3);
}

#[tokio::test]
async fn a_cap_of_ten_holds_under_thirty_concurrent_requests() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "busy", "monthlyLimit": 10})).await;
    let admitted = futures::future::join_all((0..30).map(|_| h.admitted(&scoped))).await;
    assert_eq!(admitted.iter().filter(|a| **a).count(), 10);
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 10);
    let exported = h.send(call(Endpoint::ExportData).key(&account.key)).await;
    assert_eq!(exported.body["scopedKeys"][0]["requestsThisMonth"], 10);
    assert_eq!(exported.body["usage"]["requestsThisMonth"], 10);
    assert!(exported.body["usage"]["lastRequestDate"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_scoped_keys_daily_limit_admits_its_number_a_day_and_shows_everywhere() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "daily", "dailyLimit": "2"})).await;
    assert_eq!(h.authorize(Some(&scoped)).await["context"]["dailyLimit"], 2);
    assert!(h.admitted(&scoped).await);
    assert!(!h.admitted(&scoped).await, "the key's daily limit");
    assert!(h.admitted(&account.key).await, "the account's own keys go on");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(
        (listed.body["keys"][0]["dailyLimit"].clone(), listed.body["keys"][0]["requestsThisMonth"].clone()),
        (json!(2), json!(2))
    );
    let exported = h.send(call(Endpoint::ExportData).key(&account.key)).await;
    assert_eq!(exported.body["scopedKeys"][0]["dailyLimit"], 2);
    let now = h.clock.now();
    let to_midnight = (now.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc() - now;
    h.clock.advance(to_midnight);
    assert!(h.admitted(&scoped).await, "a new day");
}

#[tokio::test]
async fn the_daily_limit_rolls_over_at_utc_midnight() {
    let h = Harness::configured(|c| c.settings.daily_request_limit = 2).await;
    let account = h.register().await;
    // Start just before midnight, UTC.
    let now = h.clock.now();
    let to_midnight = (now.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc() - now;
    h.clock.advance(to_midnight - chrono::Duration::seconds(2));
    assert!(h.admitted(&account.key).await);
    assert!(h.admitted(&account.key).await);
    assert!(!h.admitted(&account.key).await, "the account's daily limit");
    h.clock.advance(chrono::Duration::seconds(2));
    assert!(h.admitted(&account.key).await, "a new day");
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(data.body["requestsToday"], 1);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn monthly_caps_roll_over_with_the_calendar_month_and_spare_active_subscriptions() {
    let h = Harness::configured(|c| c.settings.monthly_request_limit = 3).await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "monthly", "monthlyLimit": 2})).await;
    assert!(h.admitted(&scoped).await && h.admitted(&scoped).await);
    assert!(!h.admitted(&scoped).await, "the key's own cap");
    assert!(h.admitted(&account.key).await);
    assert!(!h.admitted(&account.key).await, "the account's monthly cap (free plan)");
    h.set_subscription(&account.id, "active").await;
    assert!(h.admitted(&account.key).await, "no monthly cap on an active subscription");
    assert!(!h.admitted(&scoped).await, "the key's own cap still holds");

    let now = h.clock.now();
    let first_of_next_month = if now.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(now.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(now.year(), now.month() + 1, 1)
    }
    .unwrap()
    .and_hms_opt(0, 0, 0)
    .unwrap()
    .and_utc();
    h.clock.advance(first_of_next_month - now);
    assert!(h.admitted(&scoped).await, "a new month");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 1);
}

/// The reason the authorizer's metrics count a decision under.
async fn reason(h: &Harness, key: Option<&str>) -> Decision {
    match shared::domain::metering::decide(&h.app, shared::domain::metering::Ask::key(key)).await.unwrap() {
        Ok(_) => Decision::Admitted,
        Err(refusal) => refusal.reason,
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn every_decision_has_the_reason_its_metric_is_counted_under() {
    let h = Harness::new().await;
    let account = h.register().await;
    let soon = (h.clock.now() + chrono::Duration::minutes(5)).to_rfc3339();
    let (_, expiring) = h.scoped_key(&account.key, json!({"name": "expiring", "expiresAt": soon})).await;
    let (_, capped) = h.scoped_key(&account.key, json!({"name": "capped", "monthlyLimit": 1})).await;
    let (deleted_id, deleted) = h.scoped_key(&account.key, json!({"name": "deleted"})).await;
    h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", &deleted_id)).await;
    let never_issued = shared::domain::keys::ApiKey::generate(shared::domain::keys::KeyKind::Scoped);

    assert_eq!(reason(&h, Some(&capped)).await, Decision::Admitted);
    assert_eq!(reason(&h, Some(&capped)).await, Decision::Cap);
    assert_eq!(reason(&h, None).await, Decision::Missing);
    assert_eq!(reason(&h, Some("frs_junk")).await, Decision::Malformed);
    assert_eq!(reason(&h, Some(never_issued.expose())).await, Decision::Unknown);
    assert_eq!(reason(&h, Some(&deleted)).await, Decision::Unknown);
    h.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(reason(&h, Some(&expiring)).await, Decision::Expired);
    // A scoped key of an older master key whose index entry is still there: between a
    // master key's replacement and the retirement of its scoped keys.
    let (_, stale) = h.scoped_key(&account.key, json!({"name": "of the old master key"})).await;
    for item in [format!("USER#{}", account.id), format!("METER#{}", account.id)] {
        h.dynamo()
            .update_item()
            .table_name(h.config.tables.users().unwrap())
            .key("pk", AttributeValue::S(item))
            .update_expression("SET keyGeneration = keyGeneration + :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(reason(&h, Some(&stale)).await, Decision::Revoked);
    // Once replaced, the old master key and its scoped keys lose their index entries.
    let regenerated =
        h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(regenerated.status, 200);
    assert_eq!(reason(&h, Some(&account.key)).await, Decision::Unknown);
}

#[tokio::test]
async fn a_key_bound_to_a_client_or_user_is_refused_for_another_at_the_gateway() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, bound) =
        h.scoped_key(&account.key, json!({"name": "bot", "scopedClientId": "world-a", "scopedUserId": "gm"})).await;
    // The relay's clients name the Foundry client and user in the query string.
    let asking = |query: Value| {
        let mut event = authorizer_event(Some(&bound));
        event["queryStringParameters"] = query;
        serde_json::from_value(event).unwrap()
    };
    let decide = |query: Value| {
        let request = asking(query);
        let app = &h.app;
        async move { serde_json::to_value(shared::http::authorizer::respond(app, &request).await).unwrap() }
    };
    assert_eq!(decide(json!({"clientId": "world-b"})).await, REFUSED(), "another client");
    assert_eq!(decide(json!({"clientId": "world-a", "userId": "player"})).await, REFUSED(), "another user");
    let admitted = decide(json!({"clientId": "world-a", "userId": "gm"})).await;
    assert_eq!((&admitted["isAuthorized"], &admitted["context"]["requestsThisMonth"]), (&json!(true), &json!(1)));
    assert_eq!(decide(json!({})).await["isAuthorized"], true, "naming neither is the relay's to check");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 2, "the refusals were not counted");
}
