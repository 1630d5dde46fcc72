//! The hot path of every relay request, in DynamoDB's own units: calls, and the sizes of
//! the items it reads and writes computed by DynamoDB's rules (a write costs one unit per
//! started KB of the item, a strongly consistent read one per started 4 KB), for an account
//! loaded to every limit.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::domain::keys::ApiKey;
use shared::domain::metering::{self, Ask};
use shared::domain::scopes::Scope;
use shared::domain::service_key::{NewServiceKey, ServiceKeyDigests};
use shared::http::Endpoint;
use std::collections::{BTreeMap, HashMap};

type Item = HashMap<String, AttributeValue>;

/// The size of a number: one byte per two significant digits (leading and trailing zeros
/// trimmed), plus one.
fn number_size(text: &str) -> usize {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

/// The size of a value by DynamoDB's rules: strings and binaries their bytes, numbers as
/// above, booleans and nulls one byte, maps and lists three bytes plus one per element
/// and the elements (a map element's name counts).
fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => panic!("an attribute type this service never writes: {value:?}"),
    }
}

/// An item's size: every attribute's name and value.
fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

#[test]
fn sizes_follow_dynamodbs_rules() {
    assert_eq!(number_size("12345"), 4);
    assert_eq!(number_size("1000"), 2, "trailing zeros are trimmed");
    assert_eq!(number_size("18446744073709551615"), 11);
    let item = Item::from([
        ("pk".into(), AttributeValue::S("USER#1".into())),
        ("n".into(), AttributeValue::N("7".into())),
        ("m".into(), AttributeValue::M(HashMap::from([("day:2026-12-02".into(), AttributeValue::N("42".into()))]))),
    ]);
    // pk 2 + 6, n 1 + 2, m 1 + (3 + 1 + 14 + 2)
    assert_eq!(item_size(&item), 8 + 3 + 21);
}

impl Harness {
    async fn raw_item(&self, table: &str, key: Item) -> Item {
        let out = self.dynamo().get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await;
        out.unwrap().item.expect("the item exists")
    }

    async fn users_item(&self, pk: String) -> Item {
        self.raw_item(self.config.tables.users().unwrap(), Item::from([("pk".into(), AttributeValue::S(pk))])).await
    }
}

/// The longest address the service accepts: 254 characters.
fn longest_email() -> String {
    let local = format!("gm{}", uuid::Uuid::new_v4().simple());
    let local = format!("{local}{}", "x".repeat(64 - local.len()));
    let domain = format!("{}.{}.{}.example", "a".repeat(63), "b".repeat(63), "c".repeat(189 - 63 * 2 - 2 - 8));
    let email = format!("{local}@{domain}");
    assert_eq!(email.len(), 254, "{email}");
    email
}

/// A usage map with `n` counters of 20-digit counts (the largest a u64 has).
fn counters(n: usize) -> AttributeValue {
    AttributeValue::M(
        (0..n).map(|i| (format!("day:2026-12-{:02}", i + 1), AttributeValue::N(u64::MAX.to_string()))).collect(),
    )
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_fully_loaded_account_keeps_every_hot_path_item_within_one_unit() {
    let h = Harness::configured(|c| {
        (c.settings.daily_request_limit, c.settings.monthly_request_limit) = (u64::MAX / 4, u64::MAX / 4);
    })
    .await;
    let account = h.register_as(&longest_email(), PASSWORD).await;
    let text = |c: char| c.to_string().repeat(256);
    let mut scoped = Vec::new();
    let every_scope: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
    for i in 0..100 {
        let mut body = json!({
            "name": format!("{i:03}{}", "n".repeat(97)), "scopedClientId": text('c'), "scopedUserId": text('u'),
            "monthlyLimit": 9_007_199_254_740_991u64, "dailyLimit": 9_007_199_254_740_991u64,
            "expiresAt": "2099-12-31T23:59:59Z", "foundryUrl": format!("https://{}.example/{}", "f".repeat(63), "p".repeat(2048 - 80)),
            "foundryUsername": text('g'), "foundryPassword": text('p'), "scopes": every_scope,
        });
        if i == 1 {
            // A key for several worlds instead: eight Foundry clients (ids as the relay makes
            // them, `fvtt_` and 16 characters), each with its user (16 characters).
            let clients: Vec<String> = (0..8).map(|c| format!("fvtt_{c:0>16}")).collect();
            let users: serde_json::Map<String, serde_json::Value> =
                clients.iter().map(|c| (c.clone(), json!(format!("{:x>16}", c.len())))).collect();
            body["scopedClientId"] = json!(null);
            body["scopedUserId"] = json!(null);
            body["scopedClientIds"] = json!(clients);
            body["scopedUserIds"] = json!(users);
        }
        scoped.push(h.scoped_key(&account.key, body).await);
    }
    // A month of requests, every day, then idle gaps that leave counters of past periods behind.
    let (id, key) = &scoped[0];
    for day in 0..45 {
        h.clock.advance(chrono::Duration::days(if day < 31 { 1 } else { 3 }));
        for presented in [key.as_str(), account.key.as_str()] {
            let decided = metering::decide(&h.app, Ask { cost: 1000, ..Ask::key(Some(presented)) }).await.unwrap();
            assert!(decided.is_ok(), "day {day}: {decided:?}");
        }
    }
    let several = &scoped[1].1;
    let ask = Ask { client_id: Some("fvtt_0000000000000003"), cost: 1000, ..Ask::key(Some(several)) };
    assert!(metering::decide(&h.app, ask).await.unwrap().is_ok());
    let digest = |key: &str| format!("KEY#{}", ApiKey::parse(key).unwrap().digest().0);
    let written = [
        ("the scoped key's index entry (counted)", h.users_item(digest(key)).await),
        ("the index entry of a key of eight worlds (counted)", h.users_item(digest(several)).await),
        ("the account's meter (counted)", h.users_item(format!("METER#{}", account.id)).await),
    ];
    let read = [
        ("the master key's index entry", h.users_item(digest(&account.key)).await),
        ("the account (count: false, and every /auth route)", h.users_item(format!("USER#{}", account.id)).await),
        (
            "the scoped key with its Foundry login (credentials: true)",
            h.raw_item(
                h.config.tables.scoped_keys().unwrap(),
                Item::from([
                    ("userId".into(), AttributeValue::S(account.id.clone())),
                    ("keyId".into(), AttributeValue::S(id.clone())),
                ]),
            )
            .await,
        ),
    ];
    for (what, item) in &written {
        println!("written on the hot path: {what}: {} bytes", item_size(item));
        assert!(item_size(item) <= 1024, "{what}: {} bytes: {item:?}", item_size(item));
        // The most counters it can hold between two writes: today, this month, yesterday's
        // and last month's (a request in flight over midnight), and the leftovers kept.
        let mut fullest = item.clone();
        fullest.insert("usage".into(), counters(4 + shared::aws::dynamo::metering::LEFTOVERS_KEPT + 1));
        println!("  with the most counters it can hold: {} bytes", item_size(&fullest));
        assert!(item_size(&fullest) <= 1024, "{what} with the most counters: {} bytes", item_size(&fullest));
    }
    for (what, item) in &read {
        println!("read on the hot path: {what}: {} bytes", item_size(item));
        assert!(item_size(item) <= 4096, "{what}: {} bytes", item_size(item));
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn an_account_written_before_meters_gets_one_on_its_first_request() {
    let h = Harness::new().await;
    let account = h.register().await;
    assert!(metering::authorize(&h.app, Ask::key(Some(&account.key))).await.unwrap().is_some());
    // As an earlier version wrote it: the counters on the account, no meter.
    let meter = format!("METER#{}", account.id);
    let counted = h.users_item(meter.clone()).await["usage"].clone();
    h.dynamo()
        .update_item()
        .table_name(h.config.tables.users().unwrap())
        .key("pk", AttributeValue::S(format!("USER#{}", account.id)))
        .update_expression("SET #usage = :usage")
        .expression_attribute_names("#usage", "usage")
        .expression_attribute_values(":usage", counted)
        .send()
        .await
        .unwrap();
    h.dynamo()
        .delete_item()
        .table_name(h.config.tables.users().unwrap())
        .key("pk", AttributeValue::S(meter.clone()))
        .send()
        .await
        .unwrap();

    let before = h.calls().await;
    let admitted = metering::authorize(&h.app, Ask::key(Some(&account.key))).await.unwrap().expect("admitted");
    let after = h.calls().await;
    assert_eq!(admitted.requests_this_month, 2, "the account's own count carried over");
    let spent: BTreeMap<&str, u64> = after
        .iter()
        .map(|(op, n)| (op.as_str(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // The entry, the refused count, the account, the meter made, the count again: once.
    assert_eq!(spent.values().sum::<u64>(), 5, "{spent:?}");
    assert!(h.users_item(meter).await.contains_key("masterKeyDigest"));
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(data.body["requestsThisMonth"], 2);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn verify_costs_two_calls_when_admitted_and_none_for_a_malformed_key() {
    let service = NewServiceKey::generate();
    let digests = ServiceKeyDigests::parse([service.digest.as_str()]).unwrap();
    let h = Harness::configured(move |c| c.settings.service_key_digests = digests).await;
    let account = h.register().await;
    let login = json!({"name": "headless", "foundryUrl": "https://f.example", "foundryUsername": "gm", "foundryPassword": "pw"});
    let (_, scoped) = h.scoped_key(&account.key, login).await;
    let ask =
        |body| call(Endpoint::Verify).header("authorization", &format!("Bearer {}", service.key.as_str())).json(body);
    let cases = [
        (json!({"key": account.key}), 2, 0),
        (json!({"key": scoped}), 2, 0),
        (json!({"key": scoped, "count": false}), 2, 0),
        (json!({"key": scoped, "credentials": true}), 3, 1),
        (json!({"key": "frs_0000000000000000000000000000000000000000"}), 0, 0),
    ];
    for (body, dynamodb_calls, kms_calls) in cases {
        let before = h.calls().await;
        let reply = h.send(ask(body.clone())).await;
        let after = h.calls().await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let spent = |prefix: &str| -> u64 {
            after
                .iter()
                .filter(|(op, _)| op.starts_with(prefix))
                .map(|(op, n)| n - before.get(op).copied().unwrap_or(0))
                .sum()
        };
        assert_eq!((spent("dynamodb:"), spent("kms:")), (dynamodb_calls, kms_calls), "{body}: {after:?}");
    }
}
