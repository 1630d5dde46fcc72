//! DynamoDB as it really is: optimistic concurrency (the emulator cancels transactions
//! that touch items another in-flight transaction holds, and rejects single-item writes to
//! them), faults on request (throttling, 5xx, lost answers) for DynamoDB, KMS and SES, and
//! the answers the service gives under both: busy keys are never refused, limits stay
//! exact, failures are 503 with `retry-after` and leave nothing half-written, and a retry
//! finishes what a failure interrupted.

use crate::support::*;
use futures::future::join_all;
use serde_json::{json, Value};
use shared::domain::limits::{Limit, Throttling};
use shared::http::Endpoint;

fn throttling() -> Throttling {
    Throttling {
        auth_per_address: Limit::new(1000, 900),
        reset_per_address: Limit::new(1000, 900),
        ..Throttling::default()
    }
}

async fn throttled() -> Harness {
    Harness::configured(|c| c.settings.throttling = Some(throttling())).await
}

impl Harness {
    async fn authorized(&self, key: &str) -> bool {
        self.authorize(Some(key)).await["isAuthorized"] == true
    }

    /// How many of `n` concurrent authorizations of `key` were admitted.
    async fn admitted_of(&self, key: &str, n: usize) -> usize {
        join_all((0..n).map(|_| self.authorized(key))).await.into_iter().filter(|a| *a).count()
    }

    async fn user_data(&self, key: &str) -> Reply {
        self.send(call(Endpoint::UserData).key(key)).await
    }

    /// Every item of every table that mentions `needle`.
    async fn items_mentioning(&self, needle: &str) -> Vec<String> {
        self.dump_tables().await.into_iter().filter(|item| item.contains(needle)).collect()
    }
}

fn conflicts(stats: &Value) -> u64 {
    stats["transactionConflicts"].as_u64().unwrap() + stats["writeConflicts"].as_u64().unwrap()
}

#[track_caller]
fn assert_unavailable(reply: &Reply) {
    reply.assert_error(503, "Service temporarily unavailable");
    assert_eq!(reply.body["code"], "service_unavailable");
    assert!(reply.header("retry-after").parse::<u64>().is_ok_and(|s| s >= 1), "{:?}", reply.headers);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn thirty_concurrent_requests_of_one_master_key_are_all_admitted_and_counted() {
    let h = Harness::new().await;
    let account = h.register().await;
    let before = h.calls().await;
    let admitted = h.admitted_of(&account.key, 30).await;
    let after = h.calls().await;
    assert_eq!(admitted, 30);
    let data = h.user_data(&account.key).await;
    assert_eq!((data.body["requestsToday"].as_u64(), data.body["requestsThisMonth"].as_u64()), (Some(30), Some(30)));
    // Each request: two calls, the key's entry read and the account's counting write
    // (which returns the account), no transaction.
    let spent = |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    assert_eq!((spent("dynamodb:GetItem"), spent("dynamodb:UpdateItem")), (30, 30));
    assert_eq!(after.values().sum::<u64>() - before.values().sum::<u64>(), 60, "{after:?}");
    println!("master key: 30 concurrent, {admitted} admitted; per request 1 GetItem + 1 UpdateItem");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn thirty_concurrent_requests_of_one_scoped_key_are_all_admitted_and_counted() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "busy bot", "monthlyLimit": 1000})).await;
    let before = h.calls().await;
    let admitted = h.admitted_of(&scoped, 30).await;
    let after = h.calls().await;
    assert_eq!(admitted, 30);
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 30);
    assert_eq!(h.user_data(&account.key).await.body["requestsToday"], 30);
    // Each request: two counting writes (the key's entry, then the account), nothing read first.
    let spent = |op: &str| after.get(op).copied().unwrap_or(0) - before.get(op).copied().unwrap_or(0);
    assert_eq!((spent("dynamodb:GetItem"), spent("dynamodb:UpdateItem")), (0, 60));
    assert_eq!(after.values().sum::<u64>() - before.values().sum::<u64>(), 60, "{after:?}");
    println!("scoped key: 30 concurrent, {admitted} admitted; per request 2 UpdateItem");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_busy_key_is_admitted_while_its_account_is_being_written() {
    let h = Harness::new().await;
    let account = h.register().await;
    let stats = h.emulator_stats().await;
    let writers = async {
        for _ in 0..3 {
            let reply = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;
            assert_eq!(reply.status, 200);
            let reply = h
                .send(call(Endpoint::ChangePassword).key(&account.key).json(json!({
                    "currentPassword": PASSWORD, "newPassword": PASSWORD
                })))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
    };
    let (admitted, ()) = tokio::join!(h.admitted_of(&account.key, 40), writers);
    assert_eq!(admitted, 40, "transactions on the account never make metering refuse a valid key");
    assert_eq!(h.user_data(&account.key).await.body["requestsToday"], 40);
    assert_eq!(h.mails_to(&account.email).await.len(), 6, "three reset links and three notices went out");
    println!(
        "conflicts answered by the emulator meanwhile (all tests): {}",
        conflicts(&h.emulator_stats().await) - conflicts(&stats)
    );
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn caps_stay_exact_under_concurrency() {
    let h = Harness::configured(|c| c.settings.daily_request_limit = 12).await;
    let account = h.register().await;
    let (_, capped) = h.scoped_key(&account.key, json!({"name": "capped", "monthlyLimit": 5})).await;
    assert_eq!(h.admitted_of(&capped, 20).await, 5, "the key's own cap");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["requestsThisMonth"], 5, "refused requests count nothing");
    let (_, other) = h.scoped_key(&account.key, json!({"name": "uncapped"})).await;
    let (a, b) = tokio::join!(h.admitted_of(&other, 10), h.admitted_of(&account.key, 10));
    assert_eq!(a + b, 7, "the account's daily cap, shared by its keys");
    assert_eq!(h.user_data(&account.key).await.body["requestsToday"], 12);
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    let uncapped = listed.body["keys"].as_array().unwrap().iter().find(|k| k["name"] == "uncapped").unwrap().clone();
    assert_eq!(uncapped["requestsThisMonth"].as_u64(), Some(a as u64), "a refused count is taken back");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn thirty_concurrent_guesses_verify_at_most_the_budget_and_lock_once() {
    let h = throttled().await;
    let account = h.register().await;
    h.hasher.take();
    // One client network: the budget of the account at that network.
    let guesses = (0..30).map(|_| {
        h.send(
            call(Endpoint::Login)
                .sent_from("198.51.100.7")
                .json(json!({"email": account.email, "password": "Wrong-Guess-7"})),
        )
    });
    let replies = join_all(guesses).await;
    // Each wrong guess verifies against each decoy (every failed check does that work).
    let verified = h.hasher.take().len() / h.hasher.decoys_work().len();
    let refused = replies.iter().filter(|r| r.status == 429).count();
    let wrong = replies.iter().filter(|r| r.status == 401).count();
    assert_eq!((wrong, refused), (10, 20), "the budget of ten, then 429");
    assert_eq!(verified, 10, "no verification beyond the budget");
    // One lockout of one window (not one per request that raced into it): a second
    // lockout within the day would last twice as long.
    let locked = h
        .send(
            call(Endpoint::Login).sent_from("198.51.100.7").json(json!({"email": account.email, "password": PASSWORD})),
        )
        .await;
    locked.assert_error(429, "Too many failed attempts, please try again later");
    assert_eq!(locked.header("retry-after"), "900");
    assert!(h.hasher.take().is_empty(), "a locked account hashes nothing");
    println!("30 concurrent wrong passwords: {verified} verified, {refused} answered 429");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn thirty_concurrent_guesses_from_thirty_networks_verify_at_most_the_account_wide_budget() {
    let h = Harness::configured(|c| {
        c.settings.throttling = Some(Throttling { account_failures_all: Limit::new(10, 3600), ..throttling() })
    })
    .await;
    let account = h.register().await;
    h.hasher.take();
    let guesses = (0..30).map(|i| {
        h.send(
            call(Endpoint::Login)
                .sent_from(&format!("198.51.100.{i}"))
                .json(json!({"email": account.email, "password": "Wrong-Guess-7"})),
        )
    });
    let replies = join_all(guesses).await;
    let verified = h.hasher.take().len() / h.hasher.decoys_work().len();
    let refused = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!((verified, refused), (10, 20), "the account-wide budget of ten, then 429");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_correct_password_gives_its_attempt_back() {
    let h = throttled().await;
    let account = h.register().await;
    for _ in 0..25 {
        let reply = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    for _ in 0..9 {
        let wrong =
            h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": "Wrong-Guess-7"}))).await;
        wrong.assert_error(401, "Invalid credentials");
    }
    let reply = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(reply.status, 200, "nine failures leave one attempt: {}", reply.text);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn change_password_draws_on_the_same_budget_and_respects_the_lock() {
    let h = throttled().await;
    let account = h.register().await;
    let change = |current: &str| {
        call(Endpoint::ChangePassword)
            .key(&account.key)
            .json(json!({"currentPassword": current, "newPassword": "Fresh-Start-2027"}))
    };
    for _ in 0..9 {
        h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": "Wrong-Guess-7"}))).await;
    }
    h.send(change("Wrong-Guess-7")).await.assert_error(401, "Current password is incorrect");
    h.hasher.take();
    let locked = h.send(change(PASSWORD)).await;
    locked.assert_error(429, "Too many failed attempts, please try again later");
    assert!(h.hasher.take().is_empty());
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn two_reset_requests_a_second_apart_across_a_minute_boundary_send_one_email() {
    let h = throttled().await;
    let account = h.register().await;
    let now = h.clock.now();
    let next_minute = chrono::DateTime::from_timestamp((now.timestamp() / 60 + 1) * 60, 0).unwrap();
    h.clock.advance(next_minute - now - chrono::Duration::milliseconds(500));
    let forgot = || call(Endpoint::ForgotPassword).json(json!({"email": account.email}));
    assert_eq!(h.send(forgot()).await.status, 200);
    h.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(h.send(forgot()).await.status, 200);
    assert_eq!(h.mails_to(&account.email).await.len(), 1, "one a minute, over any minute");
    h.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(h.send(forgot()).await.status, 200);
    assert_eq!(h.mails_to(&account.email).await.len(), 2);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn deleting_an_account_that_fails_midway_is_finished_by_a_retry() {
    let h = Harness::new().await;
    let account = h.register().await;
    for i in 0..12 {
        h.scoped_key(
            &account.key,
            json!({"name": format!("bot {i}"), "foundryUrl": "https://foundry.example.io", "foundryUsername": "gm",
                   "foundryPassword": "Foundry-Secret-1"}),
        )
        .await;
    }
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "one more"})).await;
    let delete = || {
        call(Endpoint::DeleteAccount)
            .key(&account.key)
            .json(json!({"confirmEmail": account.email, "password": PASSWORD}))
    };
    // The store fails for good after five scoped keys are gone.
    h.inject(
        "dynamodb:TransactWriteItems",
        json!({"skip": 5, "times": 1000, "status": 500, "code": "InternalServerError"}),
    )
    .await;
    assert_unavailable(&h.send(delete()).await);
    assert!(!h.authorized(&scoped).await, "scoped keys stopped working at the first step");
    assert_eq!(h.user_data(&account.key).await.status, 200, "the master key stays until the end");
    h.heal().await;

    let done = h.send(delete()).await;
    assert_eq!((done.status, done.body["success"].as_bool()), (200, Some(true)), "{}", done.text);
    assert_eq!(h.user_data(&account.key).await.status, 401);
    assert_eq!(h.items_mentioning(&account.id).await, Vec::<String>::new(), "nothing of the account is left");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_transaction_whose_answer_was_lost_after_it_committed_is_not_failed() {
    let h = Harness::new().await;
    // register: the SDK sends the transaction again with its token; not "User already exists".
    h.inject("dynamodb:TransactWriteItems", json!({"kind": "commit", "times": 1})).await;
    let email = unique_email();
    let account = h.register_as(&email, PASSWORD).await;
    assert_eq!(h.user_data(&account.key).await.status, 200);

    // reset-password: not "Invalid or expired reset token".
    let token = h.forgot_and_read_token(&email).await;
    h.inject("dynamodb:TransactWriteItems", json!({"kind": "commit", "times": 1})).await;
    let reply =
        h.send(call(Endpoint::ResetPassword).json(json!({"token": token, "password": "Fresh-Start-2027"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let login = h.send(call(Endpoint::Login).json(json!({"email": email, "password": "Fresh-Start-2027"}))).await;
    assert_eq!(login.status, 200);
    assert_eq!(h.emulator_stats().await["transactionsWithoutToken"], 0, "every transaction carries a token");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn kms_down_answers_503_and_writes_nothing() {
    let h = Harness::new().await;
    let account = h.register().await;
    h.inject("kms:Encrypt", json!({"times": 1000, "status": 500, "code": "KMSInternalException"})).await;
    h.inject("kms:Decrypt", json!({"times": 1000, "status": 500, "code": "KMSInternalException"})).await;
    let email = unique_email();
    let register = call(Endpoint::Register).json(json!({"email": email, "password": PASSWORD}));
    assert_unavailable(&h.send(register.clone()).await);
    assert_unavailable(
        &h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await,
    );
    let create = call(Endpoint::CreateApiKey)
        .key(&account.key)
        .json(json!({"name": "bot", "foundryPassword": "Foundry-Secret-1"}));
    assert_unavailable(&h.send(create.clone()).await);
    assert!(h.items_mentioning(&email.to_lowercase()).await.is_empty(), "no account half-registered");
    h.heal().await;
    assert_eq!(h.send(call(Endpoint::ListApiKeys).key(&account.key)).await.body["keys"], json!([]));
    assert_eq!(h.send(register).await.status, 201, "the same request succeeds once KMS is back");
    assert_eq!(h.send(create).await.status, 201);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn dynamodb_throttling_answers_503_and_writes_nothing() {
    let h = Harness::new().await;
    let account = h.register().await;
    let throttled = json!({"times": 1000, "status": 400, "code": "ProvisionedThroughputExceededException"});
    h.inject("dynamodb:TransactWriteItems", throttled).await;
    let email = unique_email();
    let register = call(Endpoint::Register).json(json!({"email": email, "password": PASSWORD}));
    assert_unavailable(&h.send(register.clone()).await);
    let create = call(Endpoint::CreateApiKey).key(&account.key).json(json!({"name": "bot"}));
    assert_unavailable(&h.send(create.clone()).await);
    assert!(h.items_mentioning(&email.to_lowercase()).await.is_empty());
    h.heal().await;
    assert_eq!(h.send(call(Endpoint::ListApiKeys).key(&account.key)).await.body["keys"], json!([]));
    assert_eq!(h.send(register).await.status, 201);
    assert_eq!(h.send(create).await.status, 201);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn ses_down_during_forgot_password_answers_the_same_200() {
    let h = Harness::new().await;
    let account = h.register().await;
    h.inject("sesv2:SendEmail", json!({"times": 1000, "status": 500, "code": "InternalFailure"})).await;
    let reply = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;
    let unknown = h.send(call(Endpoint::ForgotPassword).json(json!({"email": unique_email()}))).await;
    assert_eq!((reply.status, &reply.body), (200, &unknown.body));
    assert!(h.mails_to(&account.email).await.is_empty());
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_dependency_that_hangs_is_answered_by_a_retry_within_the_time_out() {
    let h = Harness::with_production_time_outs().await;
    let account = h.register().await;
    // The first attempt hangs past the SDK's attempt time-out; the retry succeeds.
    h.inject("dynamodb:GetItem", json!({"kind": "delay", "seconds": 4, "times": 1})).await;
    assert_eq!(h.user_data(&account.key).await.status, 200);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn scoped_keys_are_capped_per_account_under_concurrency() {
    let h = Harness::configured(|c| c.settings.scoped_keys_per_account = 3).await;
    let account = h.register().await;
    let creates =
        (0..8).map(|i| h.send(call(Endpoint::CreateApiKey).key(&account.key).json(json!({"name": format!("k{i}")}))));
    let replies = join_all(creates).await;
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 3);
    for refused in replies.iter().filter(|r| r.status != 201) {
        refused.assert_error(400, "Scoped key limit reached (3)");
    }
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    let keys = listed.body["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 3);
    let id = keys[0]["id"].as_str().unwrap();
    assert_eq!(h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", id)).await.status, 200);
    h.scoped_key(&account.key, json!({"name": "room again"})).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn listing_keys_reads_their_usage_in_a_constant_number_of_calls() {
    let h = Harness::new().await;
    let account = h.register().await;
    let list = || call(Endpoint::ListApiKeys).key(&account.key);
    let mut spent = Vec::new();
    for n in [1, 6] {
        while h.send(list()).await.body["keys"].as_array().unwrap().len() < n {
            h.scoped_key(&account.key, json!({"name": "bot"})).await;
        }
        let before = h.calls().await;
        h.send(list()).await;
        let after = h.calls().await;
        let total: u64 = after.iter().map(|(op, n)| n - before.get(op).copied().unwrap_or(0)).sum();
        spent.push(total);
    }
    assert_eq!(spent[0], spent[1], "one key or six: the same calls");
    assert_eq!(spent[0], 4, "two reads to authenticate, one query, one batch of usage");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_throttle_attempt_given_back_whose_answer_was_lost_is_not_given_back_twice() {
    let h = Harness::new().await;
    let (key, limit) = (format!("give-back-test:{}", uuid::Uuid::new_v4()), Limit::new(10, 1000));
    let now = h.clock.now();
    for _ in 0..3 {
        assert!(h.app.store.admit(&key, limit, now).await.unwrap().allowed);
    }
    // The decrement is applied, and its answer lost: the SDK must not send it again.
    h.inject("dynamodb:UpdateItem", json!({"kind": "commit", "times": 1})).await;
    let _ambiguous = h.app.store.give_back(&key, limit, now).await;
    let next = h.app.store.admit(&key, limit, now).await.unwrap();
    assert_eq!(next.remaining, 10 - 3 + 1 - 1, "one attempt given back, not two");
}
