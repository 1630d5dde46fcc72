//! Throttling: shared counters, lockout without enumeration, reset-email budgets, and
//! rule 6 (common passwords). Each test uses its own emails and client addresses, so the
//! shared counters of other tests never interfere.

use crate::support::*;
use serde_json::json;
use shared::domain::limits::{Limit, Throttling};
use shared::http::Endpoint;

fn limits() -> Throttling {
    Throttling {
        account_failures: Limit::new(3, 900),
        account_failures_all: Limit::new(1000, 900),
        max_lockout: std::time::Duration::from_secs(24 * 3600),
        auth_per_address: Limit::new(1000, 900),
        reset_per_address: Limit::new(1000, 900),
        reset_emails: vec![Limit::new(1, 60), Limit::new(5, 3600)],
        reset_emails_all: vec![Limit::new(1000, 3600)],
        account_management: Limit::new(3, 3600),
        service_key_failures: Limit::new(3, 900),
        verification_emails: Limit::new(2, 3600),
    }
}

async fn throttled(adjust: impl FnOnce(&mut Throttling)) -> Harness {
    let mut throttling = limits();
    adjust(&mut throttling);
    let h = Harness::configured(move |c| c.settings.throttling = Some(throttling)).await;
    // Lockouts are counted per UTC day: start at noon, so that no test crosses midnight.
    let now = h.clock.now();
    let noon = (now.date_naive() + chrono::Days::new(1)).and_hms_opt(12, 0, 0).unwrap().and_utc();
    h.clock.advance(noon - now);
    h
}

/// A client address of its own (from the benchmarking range 198.18.0.0/15).
fn address() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("198.{}.{}.{}", 18 + (n % 2), (n >> 8) % 256, (n >> 16) % 256)
}

fn login(email: &str, password: &str) -> Call {
    call(Endpoint::Login).json(json!({"email": email, "password": password}))
}

fn rate_headers(reply: &Reply) -> Vec<String> {
    ["retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
        .iter()
        .map(|name| reply.header(name).to_owned())
        .collect()
}

#[tokio::test]
async fn failed_logins_lock_real_and_unknown_emails_alike_and_the_lock_ends() {
    let h = throttled(|_| {}).await;
    let real = h.register().await;
    let unknown = unique_email();
    for _ in 0..3 {
        h.send(login(&real.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
        h.send(login(&unknown, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    h.hasher.take();
    let locked_real = h.send(login(&real.email, "Wrong-Pass-1")).await;
    let locked_unknown = h.send(login(&unknown, "Wrong-Pass-1")).await;
    locked_real.assert_error(429, "Too many failed attempts, please try again later");
    assert_eq!(locked_real.body["code"], "rate_limited");
    assert_eq!((locked_real.status, &locked_real.text), (locked_unknown.status, &locked_unknown.text));
    assert_eq!(rate_headers(&locked_real), rate_headers(&locked_unknown));
    assert_eq!(rate_headers(&locked_real), ["900", "3", "0", "900"]);
    assert!(h.hasher.take().is_empty(), "a throttled request hashes nothing");

    // The right password does not get through the lock either...
    h.send(login(&real.email, PASSWORD)).await.assert_error(429, "Too many failed attempts, please try again later");
    // ...until the lock ends.
    h.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(h.send(login(&real.email, PASSWORD)).await.status, 200);
}

#[tokio::test]
async fn a_second_lockout_lasts_twice_as_long() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..3 {
        h.send(login(&account.email, "Wrong-Pass-1")).await;
    }
    h.clock.advance(chrono::Duration::minutes(15));
    for _ in 0..3 {
        h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    let locked = h.send(login(&account.email, PASSWORD)).await;
    assert_eq!((locked.status, locked.header("retry-after")), (429, "1800"));
    h.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 429);
    h.clock.advance(chrono::Duration::minutes(15));
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200);
}

#[tokio::test]
async fn a_correct_password_costs_nothing_and_clears_no_failure() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..2 {
        h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    for _ in 0..5 {
        assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200, "its attempt is given back");
    }
    // The two failures still count: the third within the window locks.
    h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 429);
}

#[tokio::test]
async fn the_failure_budget_refills_at_its_rate() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..2 {
        h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    // Three per 15 minutes: one more every five minutes.
    h.clock.advance(chrono::Duration::minutes(5));
    for _ in 0..2 {
        h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 429);
}

#[tokio::test]
async fn a_locked_account_can_still_reset_its_password_by_email() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..4 {
        h.send(login(&account.email, "Wrong-Pass-1")).await;
    }
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 429);
    let token = h.forgot_and_read_token(&account.email).await;
    let reset = h.send(call(Endpoint::ResetPassword).json(json!({"token": token, "password": "Back-In-Town-5"}))).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_eq!(h.send(login(&account.email, "Back-In-Town-5")).await.status, 200);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn two_instances_exhaust_one_budget_together() {
    let first = throttled(|_| {}).await;
    let second = throttled(|_| {}).await;
    let account = first.register().await;
    // One client, whose requests two instances answer.
    let from = address();
    let guess = || login(&account.email, "Wrong-Pass-1").sent_from(&from);
    first.send(guess()).await.assert_error(401, "Invalid credentials");
    second.send(guess()).await.assert_error(401, "Invalid credentials");
    first.send(guess()).await.assert_error(401, "Invalid credentials");
    assert_eq!(second.send(login(&account.email, PASSWORD).sent_from(&from)).await.status, 429);
    assert_eq!(first.send(login(&account.email, PASSWORD).sent_from(&from)).await.status, 429);
}

#[tokio::test]
async fn a_second_reset_email_within_a_minute_is_not_sent_and_nothing_tells() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    let stranger = unique_email();
    let forgot = |email: &str| call(Endpoint::ForgotPassword).json(json!({"email": email}));
    let first = h.send(forgot(&account.email)).await;
    let second = h.send(forgot(&account.email)).await;
    let unknown = h.send(forgot(&stranger)).await;
    let unknown_again = h.send(forgot(&stranger)).await;
    for reply in [&second, &unknown, &unknown_again] {
        assert_eq!((reply.status, &reply.text), (first.status, &first.text));
    }
    assert_eq!(first.status, 200);
    assert_eq!(h.mails_to(&account.email).await.len(), 1);
    h.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(h.send(forgot(&account.email)).await.status, 200);
    assert_eq!(h.mails_to(&account.email).await.len(), 2);
}

#[tokio::test]
async fn reset_emails_are_capped_per_hour_too() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..7 {
        let reply = h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await;
        assert_eq!(reply.status, 200);
        h.clock.advance(chrono::Duration::seconds(61));
    }
    assert_eq!(h.mails_to(&account.email).await.len(), 5);
}

#[tokio::test]
async fn authentication_is_throttled_per_client_address_as_api_gateway_reports_it() {
    let h = throttled(|t| t.auth_per_address = Limit::new(3, 900)).await;
    let (crowded, quiet) = (address(), address());
    let register = |from: &str| {
        call(Endpoint::Register).sent_from(from).json(json!({"email": unique_email(), "password": PASSWORD}))
    };
    for _ in 0..3 {
        assert_eq!(h.send(register(&crowded)).await.status, 201);
    }
    let refused = h.send(register(&crowded)).await;
    refused.assert_error(429, "Too many authentication attempts from this IP, please try again after 15 minutes");
    // A header the client sets changes nothing.
    let spoofed = h.send(register(&crowded).header("x-forwarded-for", &quiet)).await;
    assert_eq!(spoofed.status, 429);
    assert_eq!(h.send(register(&quiet)).await.status, 201);
    let login_refused = h.send(login(&unique_email(), PASSWORD).sent_from(&crowded)).await;
    assert_eq!(login_refused.status, 429);
}

#[tokio::test]
async fn an_ipv6_client_is_throttled_by_its_64_whatever_the_rest_of_its_address() {
    let h = throttled(|t| t.auth_per_address = Limit::new(3, 900)).await;
    let id = uuid::Uuid::new_v4().as_u128();
    let prefix = format!("2001:db8:{:x}:{:x}", (id >> 16) as u16, id as u16);
    let register = |from: String| {
        call(Endpoint::Register).sent_from(&from).json(json!({"email": unique_email(), "password": PASSWORD}))
    };
    for host in 1..=3 {
        assert_eq!(h.send(register(format!("{prefix}::{host}"))).await.status, 201);
    }
    let rotated = h.send(register(format!("{prefix}:ffff:ffff:ffff:fffe"))).await;
    rotated.assert_error(429, "Too many authentication attempts from this IP, please try again after 15 minutes");
    let neighbour = format!("2001:db8:{:x}:{:x}::1", (id >> 16) as u16, (id as u16).wrapping_add(1));
    assert_eq!(h.send(register(neighbour)).await.status, 201, "the next /64 is another client");
}

#[tokio::test]
async fn reset_routes_are_throttled_per_client_address() {
    let h = throttled(|t| t.reset_per_address = Limit::new(2, 900)).await;
    let from = address();
    let validate = || call(Endpoint::ValidateResetToken).param("token", "abc").sent_from(&from);
    assert_eq!(h.send(validate()).await.status, 200);
    assert_eq!(h.send(validate()).await.status, 200);
    h.send(validate()).await.assert_error(429, "Too many password reset attempts from this IP, please try again later");
    let forgot = call(Endpoint::ForgotPassword).sent_from(&from).json(json!({"email": unique_email()}));
    assert_eq!(h.send(forgot).await.status, 429);
}

#[tokio::test]
async fn account_management_is_throttled_per_account() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    for _ in 0..3 {
        assert_eq!(h.send(call(Endpoint::ExportData).key(&account.key)).await.status, 200);
    }
    h.send(call(Endpoint::ExportData).key(&account.key))
        .await
        .assert_error(429, "Too many account management requests, please try again later");
    let change = call(Endpoint::ChangePassword)
        .key(&account.key)
        .json(json!({"currentPassword": PASSWORD, "newPassword": "Next-Chapter-7"}));
    assert_eq!(h.send(change).await.status, 429);
    // Another account is not affected.
    let other = h.register().await;
    assert_eq!(h.send(call(Endpoint::ExportData).key(&other.key)).await.status, 200);
}

#[tokio::test]
async fn with_throttling_off_no_limit_applies() {
    let h = Harness::new().await;
    assert_eq!(h.config.settings.throttling, None);
    let account = h.register().await;
    for _ in 0..15 {
        h.send(login(&account.email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    }
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200);
    for _ in 0..3 {
        assert_eq!(h.send(call(Endpoint::ForgotPassword).json(json!({"email": account.email}))).await.status, 200);
    }
    assert_eq!(h.mails_to(&account.email).await.len(), 3);
}

#[tokio::test]
async fn common_passwords_are_refused_at_register_change_and_reset() {
    let h = Harness::new().await;
    let register = call(Endpoint::Register).json(json!({"email": unique_email(), "password": "Password1"}));
    h.send(register).await.assert_error(400, "Password is too common");
    let account = h.register().await;
    let change = call(Endpoint::ChangePassword)
        .key(&account.key)
        .json(json!({"currentPassword": PASSWORD, "newPassword": "Qwerty123"}));
    h.send(change).await.assert_error(400, "Password is too common");
    let token = h.forgot_and_read_token(&account.email).await;
    let reset = call(Endpoint::ResetPassword).json(json!({"token": token, "password": "Trustno1"}));
    h.send(reset).await.assert_error(400, "Password is too common");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn throttle_subjects_are_keyed_by_a_secret_every_instance_shares() {
    use sha2::Digest;
    let first = throttled(|_| {}).await;
    let second = throttled(|_| {}).await;
    let secret = first.app.store.throttle_secret().await.unwrap();
    assert_eq!(secret.len(), 32);
    assert_eq!(second.app.store.throttle_secret().await.unwrap(), secret, "created once, shared by every instance");
    let email = unique_email();
    first.send(login(&email, "Wrong-Pass-1")).await.assert_error(401, "Invalid credentials");
    let bare = hex::encode(sha2::Sha256::digest(email.as_bytes()));
    let items = first.dynamo().scan().table_name(first.config.tables.throttle().unwrap()).send().await.unwrap();
    let text = format!("{:?}", items.items());
    assert!(text.contains("failures:"), "the failed login was counted");
    assert!(!text.contains(&bare), "no bare digest of the email, which anyone could compute");
    // The secret is not kept with the counters it keys: it is an item of the users table.
    let secret_blob = format!("{:?}", secret.as_slice());
    assert!(!text.contains(&hex::encode(secret.as_slice())), "the secret is not in the throttle table");
    let users = first.config.tables.users().unwrap();
    let key = std::collections::HashMap::from([(
        "pk".to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::S("CONFIG#throttle-secret".into()),
    )]);
    let item = first.dynamo().get_item().table_name(users).set_key(Some(key)).send().await.unwrap();
    let stored = item.item().and_then(|i| i.get("secret")).and_then(|v| v.as_b().ok()).expect("in the users table");
    assert_eq!(format!("{:?}", stored.as_ref()), secret_blob);
}

fn forgot(email: &str) -> Call {
    call(Endpoint::ForgotPassword).json(json!({"email": email}))
}

#[tokio::test]
async fn a_stranger_locks_an_email_only_at_their_own_network() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    let stranger = address();
    for _ in 0..4 {
        h.send(login(&account.email, "Wrong-Pass-1").sent_from(&stranger)).await;
    }
    let there = h.send(login(&account.email, PASSWORD).sent_from(&stranger)).await;
    there.assert_error(429, "Too many failed attempts, please try again later");
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200, "the owner's network is not locked");
}

#[tokio::test]
async fn strangers_spread_over_networks_spend_the_account_wide_budget_but_never_a_known_networks() {
    let h = throttled(|t| t.account_failures_all = Limit::new(5, 3600)).await;
    let account = h.register().await;
    let unknown = unique_email();
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200, "the owner's network becomes known");
    for _ in 0..3 {
        let from = address();
        for email in [&account.email, &unknown] {
            for _ in 0..2 {
                h.send(login(email, "Wrong-Pass-1").sent_from(&from)).await;
            }
        }
    }
    h.hasher.take();
    let newcomer = address();
    let real = h.send(login(&account.email, PASSWORD).sent_from(&newcomer)).await;
    let nobody = h.send(login(&unknown, PASSWORD).sent_from(&newcomer)).await;
    real.assert_error(429, "Too many failed attempts, please try again later");
    assert_eq!((real.status, &real.text), (nobody.status, &nobody.text), "an email without an account alike");
    assert!(h.hasher.take().is_empty(), "refused before any hashing");
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200, "the known network still signs in");
    let regenerated =
        h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(regenerated.status, 200, "and can revoke a leaked key: {}", regenerated.text);
}

#[tokio::test]
async fn a_strangers_reset_requests_never_spend_the_budget_of_the_owners_network() {
    let h = throttled(|_| {}).await;
    let account = h.register().await;
    let stranger = address();
    for _ in 0..3 {
        assert_eq!(h.send(forgot(&account.email).sent_from(&stranger)).await.status, 200);
    }
    assert_eq!(h.mails_to(&account.email).await.len(), 1, "one a minute for the stranger's network");
    // The owner's own request, from their network, is still sent (and its link works).
    let token = h.forgot_and_read_token(&account.email).await;
    let reset = h.send(call(Endpoint::ResetPassword).json(json!({"token": token, "password": "Back-In-Town-5"}))).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
}

#[tokio::test]
async fn once_strangers_spend_the_account_wide_reset_budget_nobody_replaces_the_newest_link() {
    let h = throttled(|t| t.reset_emails_all = vec![Limit::new(3, 3600)]).await;
    let account = h.register().await;
    for _ in 0..6 {
        h.send(forgot(&account.email).sent_from(&address())).await;
    }
    let mails = h.mails_to(&account.email).await;
    assert_eq!(mails.len(), 3, "every stranger's network together: three an hour");
    let newest = reset_token_in(mails.last().unwrap());
    for _ in 0..6 {
        h.send(forgot(&account.email).sent_from(&address())).await;
    }
    assert_eq!(h.mails_to(&account.email).await.len(), 3);
    let reset =
        h.send(call(Endpoint::ResetPassword).json(json!({"token": newest, "password": "Back-In-Town-5"}))).await;
    assert_eq!(reset.status, 200, "the newest link the owner received still works: {}", reset.text);
    // The reset made the owner's network known: its requests skip the account-wide budget.
    h.clock.advance(chrono::Duration::seconds(61));
    h.forgot_and_read_token(&account.email).await;
}

/// Issue 21's attacker: knows the email and holds the leaked master key, and from ten
/// networks fails logins and asks for reset links in a loop, while the owner revokes the
/// key within the same minute (the clock does not move), once from the network they
/// signed in from before, once from a new one through the emailed link.
#[tokio::test]
async fn an_attacker_at_ten_networks_cannot_stop_the_owner_revoking_a_leaked_key() {
    let h = throttled(|t| *t = Throttling::default()).await;
    let account = h.register().await;
    assert_eq!(h.send(login(&account.email, PASSWORD)).await.status, 200, "the owner signed in before");
    let leaked = account.key.clone();
    let (_, leaked_scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    let networks: Vec<String> = (0..10).map(|_| address()).collect();
    let attack = |rounds: usize| {
        let (h, networks, email) = (&h, &networks, &account.email);
        async move {
            for _ in 0..rounds {
                futures::future::join_all(networks.iter().map(|from| async move {
                    h.send(login(email, "Guess-Pass-1").sent_from(from)).await;
                    h.send(forgot(email).sent_from(from)).await;
                }))
                .await;
            }
        }
    };
    attack(12).await;
    let locked = h.send(login(&account.email, "Guess-Pass-1").sent_from(&networks[0])).await;
    assert_eq!(locked.status, 429, "the attacker's networks are locked out");

    // From the known network, while the attack goes on: regenerate-key.
    let (_, regenerated) = tokio::join!(
        attack(3),
        h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD})))
    );
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let second = regenerated.str("apiKey");
    for key in [&leaked, &leaked_scoped] {
        assert!(!h.admitted(key).await, "the relay refuses the leaked keys");
    }

    // Say `second` leaked too, and the owner is now somewhere new: the newest emailed link.
    let elsewhere = address();
    h.send(forgot(&account.email).sent_from(&elsewhere)).await;
    let newest = reset_token_in(h.mails_to(&account.email).await.last().unwrap());
    let revoke = call(Endpoint::ResetPassword)
        .json(json!({"token": newest, "password": "Fresh-Start-2027", "revokeKeys": true}))
        .sent_from(&elsewhere);
    let (_, reset) = tokio::join!(attack(3), h.send(revoke));
    assert_eq!(reset.status, 200, "{}", reset.text);
    let third = reset.str("apiKey");
    assert!(!h.admitted(&second).await && h.admitted(&third).await);
    let signed_in = h.send(login(&account.email, "Fresh-Start-2027").sent_from(&elsewhere)).await;
    assert_eq!(signed_in.status, 200, "the reset made the new network known: {}", signed_in.text);
}
