//! One suite of store behaviours, run against every store: DynamoDB in the emulator and
//! the embedded store of the local server. Both must keep the same promises.

use chrono::{Duration, Timelike, Utc};
use futures::future::join_all;
use shared::domain::audit::{Activity, Event, RETENTION};
use shared::domain::error::PortError;
use shared::domain::keys::KeyDigest;
use shared::domain::keys::{ApiKey, KeyKind};
use shared::domain::limits::Limit;
use shared::domain::meter::{Decision, Meter, Metered};
use shared::domain::model::{ImportedAccount, ScopedKey, StoredMasterKey, Usage, User};
use shared::domain::ports::Store;
use shared::domain::scopes::{Grant, Need, Scope, ScopeSet};
use shared::domain::token::{Purpose, ResetToken, StoredResetToken};
use std::sync::Arc;

/// A store under test, with whatever must live as long as it.
pub struct Subject {
    store: Arc<dyn Store>,
    _data: Option<tempfile::TempDir>,
}

async fn dynamodb() -> Subject {
    let config = shared::config::Config::from_env(shared::config::Needs::ALL).expect("run through scripts/test.sh");
    let app = shared::aws::build_app(&config).await;
    Subject { store: app.store, _data: None }
}

async fn embedded() -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let store = shared::embedded::store::EmbeddedStore::open(&dir.path().join("auth.redb")).unwrap();
    Subject { store: Arc::new(store), _data: Some(dir) }
}

macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        mod dynamodb {
            $(
                #[tokio::test]
                #[ignore = "needs the AWS emulator that scripts/test.sh starts"]
                async fn $behaviour() { super::$behaviour(&super::dynamodb().await.store).await }
            )*
        }
        mod embedded {
            $(#[tokio::test] async fn $behaviour() {
                let subject = super::embedded().await;
                super::$behaviour(&subject.store).await
            })*
        }
    };
}

conformance!(
    an_email_belongs_to_one_account,
    concurrent_creations_of_one_email_admit_exactly_one,
    a_master_key_change_is_conditional_and_complete,
    reset_tokens_are_superseded_and_redeemed_once,
    a_redemption_can_replace_the_master_key_in_the_same_write,
    verification_tokens_are_superseded_redeemed_once_and_verify_the_account,
    a_reset_verifies_the_account_and_an_unverified_key_is_refused_meanwhile,
    a_password_change_voids_the_reset_token,
    scoped_keys_follow_the_master_key_generation,
    deleting_an_account_removes_its_items,
    a_hash_upgrade_only_replaces_the_hash_it_read,
    a_throttle_cap_is_exact_under_concurrency,
    throttle_windows_roll_over_and_reset_forgets,
    throttle_blocks_only_grow_until_lifted,
    metering_is_exact_under_concurrency,
    metering_counts_nothing_it_refuses,
    metering_refuses_a_key_revoked_meanwhile,
    metering_keeps_past_periods_out_of_the_current_counts,
    a_cost_is_counted_whole_or_not_at_all,
    deciding_without_counting_counts_nothing,
    a_key_bound_to_a_client_and_user_refuses_others,
    disabled_and_expired_keys_are_refused_with_their_reason,
    the_scoped_key_cap_is_exact_under_concurrency,
    key_entries_are_read_in_one_batch_in_the_order_asked,
    revoking_scoped_keys_keeps_the_master_key,
    a_rate_limit_gives_back_and_resets,
    the_throttle_secret_is_created_once,
    an_entry_and_its_account_are_read_together,
    a_scoped_keys_daily_limit_is_kept_and_refusals_count_nothing,
    an_imported_account_is_written_whole_or_not_at_all,
    activity_is_read_newest_first_per_account_and_deleted_whole,
    activity_past_its_retention_is_not_read,
    a_key_is_held_to_its_scopes_clients_and_users,
    a_master_key_is_refused_on_the_relay_when_the_setting_says_so,
    changing_a_key_keeps_its_counters_and_decides_by_the_new_settings,
);

fn new_user(email: &str) -> User {
    let now = Utc::now();
    let key = ApiKey::generate(KeyKind::Master);
    User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.to_owned(),
        email_normalised: email.to_lowercase(),
        password_hash: "hash-1".into(),
        master_key: StoredMasterKey {
            digest: key.digest(),
            ciphertext: vec![1, 2, 3],
            prefix: key.display_prefix(),
            created_at: now,
        },
        key_generation: 0,
        reset_token_digest: None,
        email_verified: true,
        verification_token_digest: None,
        scoped_key_count: 0,
        subscription_status: shared::domain::model::Subscription::Free,
        stripe_customer_id: None,
        subscription_id: None,
        usage: Usage::default(),
        created_at: now,
        updated_at: now,
    }
}

fn email() -> String {
    format!("Store-{}@Example.io", uuid::Uuid::new_v4().simple())
}

async fn created(store: &Arc<dyn Store>) -> User {
    let user = new_user(&email());
    store.create_user(&user).await.unwrap();
    user
}

async fn reread(store: &Arc<dyn Store>, user: &User) -> User {
    store.user(&user.id).await.unwrap().expect("the account exists")
}

fn scoped_key(user: &User) -> ScopedKey {
    let key = ApiKey::generate(KeyKind::Scoped);
    let now = Utc::now();
    ScopedKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name: "bot".into(),
        digest: key.digest(),
        prefix: key.display_prefix(),
        scoped_client_id: Some("client".into()),
        scoped_user_id: None,
        scoped_client_ids: Vec::new(),
        scoped_user_ids: Default::default(),
        grant: Grant::Only(ScopeSet::of([Scope::RollRead])),
        monthly_limit: Some(10),
        daily_limit: None,
        expires_at: Some(now + Duration::days(1)),
        foundry_url: None,
        foundry_username: None,
        foundry_password_ciphertext: Some(vec![9, 9]),
        enabled: true,
        generation: user.key_generation,
        created_at: now,
        updated_at: now,
    }
}

const CAP: u64 = 100;

fn conflict<T: std::fmt::Debug>(result: Result<T, PortError>) -> bool {
    matches!(result, Err(PortError::Conflict))
}

async fn an_email_belongs_to_one_account(store: &Arc<dyn Store>) {
    let first = created(store).await;
    let second = new_user(&first.email.to_uppercase());
    assert!(conflict(store.create_user(&second).await));
    let found = store.user_by_email(&first.email_normalised).await.unwrap().unwrap();
    assert_eq!(found, first);
    assert!(store.user(&second.id).await.unwrap().is_none(), "nothing of the loser was written");
    assert!(store.key_entry(&second.master_key.digest).await.unwrap().is_none());
    let entry = store.key_entry(&first.master_key.digest).await.unwrap().unwrap();
    assert_eq!((entry.user_id.as_str(), entry.kind), (first.id.as_str(), KeyKind::Master));
}

async fn concurrent_creations_of_one_email_admit_exactly_one(store: &Arc<dyn Store>) {
    let shared_email = email();
    let users: Vec<User> = (0..8).map(|_| new_user(&shared_email)).collect();
    let results = join_all(users.iter().map(|u| store.create_user(u))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.into_iter().filter(|r| r.is_err()).all(conflict));
}

async fn a_master_key_change_is_conditional_and_complete(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let key = ApiKey::generate(KeyKind::Master);
    let new = StoredMasterKey {
        digest: key.digest(),
        ciphertext: vec![4],
        prefix: key.display_prefix(),
        created_at: Utc::now(),
    };
    let mut stale = user.clone();
    stale.key_generation += 1;
    assert!(conflict(store.replace_master_key(&stale, &new, Utc::now()).await));
    assert!(store.key_entry(&user.master_key.digest).await.unwrap().is_some(), "the old key still works");
    assert!(store.key_entry(&new.digest).await.unwrap().is_none(), "nothing was half written");

    store.replace_master_key(&user, &new, Utc::now()).await.unwrap();
    assert!(store.key_entry(&user.master_key.digest).await.unwrap().is_none());
    assert_eq!(store.key_entry(&new.digest).await.unwrap().unwrap().user_id, user.id);
    let after = reread(store, &user).await;
    assert_eq!((after.key_generation, &after.master_key.digest), (1, &new.digest));
    assert!(conflict(store.replace_master_key(&user, &new, Utc::now()).await), "a second change from stale state");
}

async fn issue(store: &Arc<dyn Store>, user: &User) -> StoredResetToken {
    let token = StoredResetToken::issue(&ResetToken::generate(), &user.id, Utc::now());
    store.issue_reset_token(user, &token).await.unwrap();
    token
}

async fn reset_tokens_are_superseded_and_redeemed_once(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let first = issue(store, &user).await;
    assert_eq!(store.reset_token(&first.digest).await.unwrap(), Some(first.clone()));
    let second = StoredResetToken::issue(&ResetToken::generate(), &user.id, Utc::now());
    assert!(conflict(store.issue_reset_token(&user, &second).await), "issued from stale state");
    let fresh = reread(store, &user).await;
    store.issue_reset_token(&fresh, &second).await.unwrap();
    assert_eq!(store.reset_token(&first.digest).await.unwrap(), None, "the older token is gone");
    assert!(conflict(store.redeem_reset_token(&first, &fresh, "hash-x", Utc::now(), None).await));

    let hashes: Vec<String> = (0..5).map(|i| format!("hash-{i}")).collect();
    let results = join_all(hashes.iter().map(|h| store.redeem_reset_token(&second, &fresh, h, Utc::now(), None))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let winner = results.iter().position(|r| r.is_ok()).unwrap();
    let after = reread(store, &user).await;
    assert_eq!(after.password_hash.expose(), hashes[winner]);
    assert_eq!(after.reset_token_digest, None);
    assert_eq!(store.reset_token(&second.digest).await.unwrap(), None);
}

async fn a_redemption_can_replace_the_master_key_in_the_same_write(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let token = issue(store, &user).await;
    let user = reread(store, &user).await;
    let key = ApiKey::generate(KeyKind::Master);
    let new = StoredMasterKey {
        digest: key.digest(),
        ciphertext: vec![7],
        prefix: key.display_prefix(),
        created_at: Utc::now(),
    };
    let mut stale = user.clone();
    stale.key_generation += 1;
    assert!(conflict(store.redeem_reset_token(&token, &stale, "hash-r", Utc::now(), Some(&new)).await));
    let untouched = reread(store, &user).await;
    assert_eq!(untouched.reset_token_digest.as_deref(), Some(token.digest.as_str()), "nothing was half written");
    assert!(store.key_entry(&new.digest).await.unwrap().is_none());
    assert!(store.reset_token(&token.digest).await.unwrap().is_some(), "the token is still there");

    store.redeem_reset_token(&token, &user, "hash-r", Utc::now(), Some(&new)).await.unwrap();
    let after = reread(store, &user).await;
    assert_eq!(after.password_hash.expose(), "hash-r");
    assert_eq!((after.key_generation, &after.master_key.digest), (user.key_generation + 1, &new.digest));
    assert_eq!(after.reset_token_digest, None);
    assert!(store.key_entry(&user.master_key.digest).await.unwrap().is_none(), "the old master key stopped working");
    assert_eq!(store.key_entry(&new.digest).await.unwrap().unwrap().user_id, user.id);
    assert_eq!(store.reset_token(&token.digest).await.unwrap(), None);

    // An unverified account: the same write also verifies it (its meter changes once).
    let unverified = User { email_verified: false, ..new_user(&format!("k-{}@example.io", uuid::Uuid::new_v4())) };
    store.create_user(&unverified).await.unwrap();
    let token = issue(store, &reread(store, &unverified).await).await;
    let user = reread(store, &unverified).await;
    let key = ApiKey::generate(KeyKind::Master);
    let new = StoredMasterKey {
        digest: key.digest(),
        ciphertext: vec![8],
        prefix: key.display_prefix(),
        created_at: Utc::now(),
    };
    store.redeem_reset_token(&token, &user, "hash-k", Utc::now(), Some(&new)).await.unwrap();
    let after = reread(store, &user).await;
    assert!(after.email_verified);
    assert_eq!(after.master_key.digest, new.digest);
    let mut ask = meter(&new.digest, KeyKind::Master, 1000, 1000);
    ask.require_verified = true;
    assert!(matches!(store.meter(&ask).await.unwrap(), Metered::Admitted { .. }), "the new key works, verified");
}

async fn verification_tokens_are_superseded_redeemed_once_and_verify_the_account(store: &Arc<dyn Store>) {
    let unverified = User { email_verified: false, ..new_user(&format!("v-{}@example.io", uuid::Uuid::new_v4())) };
    store.create_user(&unverified).await.unwrap();
    let user = reread(store, &unverified).await;
    assert!(!user.email_verified);
    let verify =
        |user: &User| StoredResetToken::issue_for(Purpose::VerifyEmail, &ResetToken::generate(), &user.id, Utc::now());
    let first = verify(&user);
    store.issue_reset_token(&user, &first).await.unwrap();
    assert_eq!(store.reset_token(&first.digest).await.unwrap(), Some(first.clone()), "kept with its purpose");
    let reset = issue(store, &reread(store, &user).await).await;
    let fresh = reread(store, &user).await;
    assert_eq!(
        (fresh.reset_token_digest.as_deref(), fresh.verification_token_digest.as_deref()),
        (Some(reset.digest.as_str()), Some(first.digest.as_str())),
        "a reset token and a verification token each keep their slot"
    );
    let second = verify(&fresh);
    assert!(conflict(store.issue_reset_token(&user, &second).await), "issued from stale state");
    store.issue_reset_token(&fresh, &second).await.unwrap();
    assert_eq!(store.reset_token(&first.digest).await.unwrap(), None, "the older token is gone");
    assert!(conflict(store.redeem_verification_token(&first, Utc::now()).await));
    assert!(conflict(store.redeem_verification_token(&reset, Utc::now()).await), "a reset token is not one");

    let results = join_all((0..5).map(|_| store.redeem_verification_token(&second, Utc::now()))).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    let after = reread(store, &user).await;
    assert!(after.email_verified);
    assert_eq!(after.verification_token_digest, None);
    assert_eq!(after.reset_token_digest.as_deref(), Some(reset.digest.as_str()), "the reset token stays");
    // Metering reads the account's state where it counts.
    let mut ask = meter(&after.master_key.digest, KeyKind::Master, 1000, 1000);
    ask.require_verified = true;
    assert!(matches!(store.meter(&ask).await.unwrap(), Metered::Admitted { .. }));
}

async fn a_reset_verifies_the_account_and_an_unverified_key_is_refused_meanwhile(store: &Arc<dyn Store>) {
    let unverified = User { email_verified: false, ..new_user(&format!("r-{}@example.io", uuid::Uuid::new_v4())) };
    store.create_user(&unverified).await.unwrap();
    let mut ask = meter(&unverified.master_key.digest, KeyKind::Master, 1000, 1000);
    ask.require_verified = true;
    let Metered::Refused(refusal) = store.meter(&ask).await.unwrap() else { panic!("an unverified key was admitted") };
    assert_eq!(refusal.reason, Decision::Unverified);
    assert!(matches!(
        store.meter(&Meter { require_verified: false, ..ask.clone() }).await.unwrap(),
        Metered::Admitted { .. }
    ));
    let user = reread(store, &unverified).await;
    let token = issue(store, &user).await;
    let user = reread(store, &unverified).await;
    store.redeem_reset_token(&token, &user, "hash-2", Utc::now(), None).await.unwrap();
    assert!(reread(store, &unverified).await.email_verified);
    assert!(matches!(store.meter(&ask).await.unwrap(), Metered::Admitted { .. }));
}

async fn a_password_change_voids_the_reset_token(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let token = issue(store, &user).await;
    assert!(conflict(store.set_password(&user, "hash-2", Utc::now()).await), "stale: the token was issued since");
    let fresh = reread(store, &user).await;
    let mut other_hash = fresh.clone();
    other_hash.password_hash = "hash-checked-elsewhere".to_owned().into();
    assert!(conflict(store.set_password(&other_hash, "hash-2", Utc::now()).await), "stale: not the hash checked");
    store.set_password(&fresh, "hash-2", Utc::now()).await.unwrap();
    let after = reread(store, &user).await;
    assert_eq!((after.password_hash.expose(), after.reset_token_digest), ("hash-2", None));
    assert_eq!(store.reset_token(&token.digest).await.unwrap(), None);
}

async fn scoped_keys_follow_the_master_key_generation(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let key = scoped_key(&user);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    assert!(conflict(store.create_scoped_key(&user, &key, CAP).await), "ids are unique");
    assert_eq!(store.scoped_key(&user.id, &key.id).await.unwrap(), Some(key.clone()));
    let entry = store.key_entry(&key.digest).await.unwrap().unwrap();
    assert_eq!(
        (entry.kind, entry.scoped_key_id.as_deref(), entry.generation),
        (KeyKind::Scoped, Some(key.id.as_str()), 0)
    );

    let other = created(store).await;
    store.create_scoped_key(&other, &scoped_key(&other), CAP).await.unwrap();
    assert_eq!(store.scoped_keys(&user.id).await.unwrap(), vec![key.clone()], "only the account's own keys");

    let master = ApiKey::generate(KeyKind::Master);
    let new = StoredMasterKey {
        digest: master.digest(),
        ciphertext: vec![5],
        prefix: master.display_prefix(),
        created_at: Utc::now(),
    };
    store.replace_master_key(&user, &new, Utc::now()).await.unwrap();
    assert!(
        conflict(store.create_scoped_key(&user, &scoped_key(&user), CAP).await),
        "minted under a replaced master key"
    );

    store.retire_scoped_key(&key, Utc::now()).await.unwrap();
    assert!(store.key_entry(&key.digest).await.unwrap().is_none());
    let retired = store.scoped_key(&user.id, &key.id).await.unwrap().unwrap();
    assert!(!retired.enabled);
    assert_eq!(retired.foundry_password_ciphertext, None, "a retired key's Foundry password goes at once");
    store.delete_scoped_key(&key).await.unwrap();
    assert!(conflict(store.delete_scoped_key(&key).await));
    assert_eq!(store.scoped_keys(&user.id).await.unwrap(), vec![]);
}

async fn deleting_an_account_removes_its_items(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let token = issue(store, &user).await;
    assert!(conflict(store.delete_user(&user).await), "stale: a token was issued since");
    let fresh = reread(store, &user).await;
    store.delete_user(&fresh).await.unwrap();
    assert_eq!(store.user(&user.id).await.unwrap(), None);
    assert_eq!(store.user_by_email(&user.email_normalised).await.unwrap(), None);
    assert_eq!(store.key_entry(&user.master_key.digest).await.unwrap(), None);
    assert_eq!(store.reset_token(&token.digest).await.unwrap(), None);
    assert!(conflict(store.delete_user(&fresh).await));
    // The email is free again.
    store.create_user(&new_user(&user.email)).await.unwrap();

    // A scoped key made since the account was read stops its deletion: it would outlive it.
    let user = created(store).await;
    store.create_scoped_key(&user, &scoped_key(&user), CAP).await.unwrap();
    assert!(conflict(store.delete_user(&user).await), "a key was made since");
    let fresh = reread(store, &user).await;
    let key = store.scoped_keys(&user.id).await.unwrap().pop().unwrap();
    store.delete_scoped_key(&key).await.unwrap();
    assert!(conflict(store.delete_user(&fresh).await), "and deleted since");
    store.delete_user(&reread(store, &user).await).await.unwrap();
    assert_eq!(store.user(&user.id).await.unwrap(), None);
}

async fn a_hash_upgrade_only_replaces_the_hash_it_read(store: &Arc<dyn Store>) {
    let user = created(store).await;
    assert!(conflict(store.upgrade_password_hash(&user.id, "not-the-hash", "hash-3").await));
    store.upgrade_password_hash(&user.id, "hash-1", "hash-3").await.unwrap();
    assert_eq!(reread(store, &user).await.password_hash.expose(), "hash-3");
}

fn throttle_key() -> String {
    format!("test:{}", uuid::Uuid::new_v4().simple())
}

async fn a_throttle_cap_is_exact_under_concurrency(store: &Arc<dyn Store>) {
    // Rate limits keep milliseconds.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let (key, limit) = (throttle_key(), Limit::new(10, 60));
    let verdicts = join_all((0..30).map(|_| store.admit(&key, limit, now))).await;
    let verdicts: Vec<_> = verdicts.into_iter().map(Result::unwrap).collect();
    assert_eq!(verdicts.iter().filter(|v| v.allowed).count(), 10);
    let mut remaining: Vec<u32> = verdicts.iter().filter(|v| v.allowed).map(|v| v.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>(), "each admitted event saw the budget one smaller");
    // Refused: one more is admitted one interval (6 s) later, and not before.
    let refused = verdicts.iter().find(|v| !v.allowed).unwrap();
    assert_eq!((refused.retry_at - now).num_milliseconds(), 6000);
    assert!(!store.admit(&key, limit, refused.retry_at - Duration::milliseconds(1)).await.unwrap().allowed);
    assert!(store.admit(&key, limit, refused.retry_at).await.unwrap().allowed);
}

async fn throttle_windows_roll_over_and_reset_forgets(store: &Arc<dyn Store>) {
    // Two a minute, over any minute: a window boundary gives no second budget.
    let (key, limit) = (throttle_key(), Limit::new(2, 60));
    let now = Utc::now().with_second(59).unwrap_or_else(Utc::now);
    assert!(store.admit(&key, limit, now).await.unwrap().allowed);
    assert!(store.admit(&key, limit, now).await.unwrap().allowed);
    assert!(!store.admit(&key, limit, now + Duration::seconds(2)).await.unwrap().allowed, "a new minute is no reset");
    assert!(store.admit(&key, limit, now + Duration::seconds(30)).await.unwrap().allowed, "refilled at its rate");
    store.reset(&key).await.unwrap();
    assert!(store.admit(&key, limit, now + Duration::seconds(30)).await.unwrap().allowed, "a reset counts afresh");
    let tally = throttle_key();
    let window = std::time::Duration::from_secs(3600);
    assert_eq!(store.tally(&tally, window, now).await.unwrap(), 1);
    assert_eq!(store.tally(&tally, window, now).await.unwrap(), 2);
}

async fn a_rate_limit_gives_back_and_resets(store: &Arc<dyn Store>) {
    let (key, limit, now) = (throttle_key(), Limit::new(3, 900), Utc::now());
    for _ in 0..3 {
        let verdict = store.admit(&key, limit, now).await.unwrap();
        assert!(verdict.allowed);
        store.give_back(&key, limit, now).await.unwrap();
    }
    let admitted = join_all((0..5).map(|_| store.admit(&key, limit, now))).await;
    assert_eq!(admitted.iter().filter(|v| v.as_ref().unwrap().allowed).count(), 3, "given back, not spent");
    store.give_back(&key, limit, now).await.unwrap();
    assert!(store.admit(&key, limit, now).await.unwrap().allowed, "one given back is one more");
    assert!(!store.admit(&key, limit, now).await.unwrap().allowed);
    store.give_back(&throttle_key(), limit, now).await.unwrap();
}

async fn throttle_blocks_only_grow_until_lifted(store: &Arc<dyn Store>) {
    let (key, now) = (throttle_key(), Utc::now());
    assert_eq!(store.blocked_until(&key, now).await.unwrap(), None);
    let until = now + Duration::minutes(30);
    store.block(&key, until).await.unwrap();
    store.block(&key, now + Duration::minutes(5)).await.unwrap();
    let blocked = store.blocked_until(&key, now).await.unwrap().unwrap();
    assert_eq!(blocked.timestamp(), until.timestamp(), "a shorter block does not shorten it");
    assert_eq!(store.blocked_until(&key, until).await.unwrap(), None, "over at its end");
    store.unblock(&key).await.unwrap();
    assert_eq!(store.blocked_until(&key, now).await.unwrap(), None);
}

/// One request of the key with `digest`, counted, under the account caps given.
fn meter(digest: &KeyDigest, kind: KeyKind, daily: u64, monthly: u64) -> Meter<'_> {
    Meter {
        digest,
        kind: Some(kind),
        now: Utc::now(),
        cost: 1,
        count: true,
        client_id: None,
        user_id: None,
        need: Need::Nothing,
        master_allowed: true,
        require_verified: false,
        daily_limit: daily,
        monthly_limit: monthly,
    }
}

/// The month's count of the key (scoped) or of the account (master) after an admitted
/// request, or the reason of a refusal.
async fn metered(store: &Arc<dyn Store>, meter: &Meter<'_>) -> Result<u64, Decision> {
    match store.meter(meter).await.unwrap() {
        Metered::Admitted { entry, account } => Ok(match entry.kind {
            KeyKind::Master => account.usage.this_month(meter.now),
            KeyKind::Scoped => entry.usage.this_month(meter.now),
        }),
        Metered::Refused(refusal) => Err(refusal.reason),
    }
}

const NO_CAP: u64 = 1_000_000;

async fn metering_is_exact_under_concurrency(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let request = meter(&user.master_key.digest, KeyKind::Master, 10, NO_CAP);
    let counted = join_all((0..30).map(|_| metered(store, &request))).await;
    let mut counts: Vec<u64> = counted.iter().filter_map(|c| c.ok()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<_>>(), "ten counted, each seeing its own count");
    assert!(counted.iter().all(|c| matches!(c, Ok(_) | Err(Decision::Cap))));
    let usage = reread(store, &user).await.usage;
    assert_eq!((usage.today(request.now), usage.this_month(request.now)), (10, 10));
    assert!(usage.last_request_at.is_some());
}

async fn metering_counts_nothing_it_refuses(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    key.monthly_limit = Some(2);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let request = meter(&key.digest, KeyKind::Scoped, 100, 100);
    for expected in [Ok(1), Ok(2), Err(Decision::Cap), Err(Decision::Cap)] {
        assert_eq!(metered(store, &request).await, expected);
    }
    let Metered::Refused(refusal) = store.meter(&request).await.unwrap() else { panic!("refused") };
    assert_eq!(refusal.resets_at, Some(shared::domain::meter::next_month(request.now)), "the month's cap refused");
    let now = request.now;
    assert_eq!(store.key_entry(&key.digest).await.unwrap().unwrap().usage.this_month(now), 2);
    assert_eq!(reread(store, &user).await.usage.this_month(now), 2, "refused requests are not counted");
    // The account's monthly cap refuses too, and counts nothing on the key either.
    let mut other = scoped_key(&user);
    other.monthly_limit = None;
    store.create_scoped_key(&user, &other, CAP).await.unwrap();
    assert_eq!(metered(store, &meter(&other.digest, KeyKind::Scoped, 100, 2)).await, Err(Decision::Cap));
    assert_eq!(store.key_entry(&other.digest).await.unwrap().unwrap().usage.this_month(now), 0);
}

async fn a_scoped_keys_daily_limit_is_kept_and_refusals_count_nothing(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    (key.monthly_limit, key.daily_limit) = (Some(100), Some(2));
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let request = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    for expected in [Ok(1), Ok(2), Err(Decision::Cap), Err(Decision::Cap)] {
        assert_eq!(metered(store, &request).await, expected);
    }
    let Metered::Refused(refusal) = store.meter(&request).await.unwrap() else { panic!("refused") };
    assert_eq!(refusal.resets_at, Some(shared::domain::meter::next_day(request.now)), "the day's cap refused");
    let now = request.now;
    let usage = store.key_entry(&key.digest).await.unwrap().unwrap().usage;
    assert_eq!((usage.today(now), usage.this_month(now)), (2, 2));
    assert_eq!(reread(store, &user).await.usage.today(now), 2, "refused requests are not counted");
    // A key refused by the account's cap gives its day back too.
    let mut other = scoped_key(&user);
    other.daily_limit = Some(5);
    store.create_scoped_key(&user, &other, CAP).await.unwrap();
    assert_eq!(metered(store, &meter(&other.digest, KeyKind::Scoped, 2, NO_CAP)).await, Err(Decision::Cap));
    let usage = store.key_entry(&other.digest).await.unwrap().unwrap().usage;
    assert_eq!((usage.today(now), usage.this_month(now)), (0, 0));
}

async fn a_cost_is_counted_whole_or_not_at_all(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    key.monthly_limit = Some(5);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let mut request = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    request.cost = 3;
    assert_eq!(metered(store, &request).await, Ok(3));
    assert_eq!(metered(store, &request).await, Err(Decision::Cap), "3 + 3 > 5: none of it");
    request.cost = 2;
    assert_eq!(metered(store, &request).await, Ok(5), "3 + 2 = 5: all of it");
    let now = request.now;
    assert_eq!(store.key_entry(&key.digest).await.unwrap().unwrap().usage.this_month(now), 5);
    assert_eq!(reread(store, &user).await.usage.today(now), 5);
    // The account's caps take a cost whole too.
    let master = meter(&user.master_key.digest, KeyKind::Master, 7, NO_CAP);
    let costly = Meter { cost: 3, ..master.clone() };
    assert_eq!(metered(store, &costly).await, Err(Decision::Cap), "5 + 3 > 7");
    assert_eq!(metered(store, &Meter { cost: 2, ..master }).await, Ok(7));
}

async fn deciding_without_counting_counts_nothing(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    key.monthly_limit = Some(1);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let counted = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    let asked = Meter { count: false, ..counted.clone() };
    assert_eq!(metered(store, &asked).await, Ok(0), "room for one, nothing counted");
    assert_eq!(metered(store, &asked).await, Ok(0));
    assert_eq!(metered(store, &counted).await, Ok(1));
    assert_eq!(metered(store, &asked).await, Err(Decision::Cap), "no room left");
    assert_eq!(reread(store, &user).await.usage.this_month(counted.now), 1);
}

async fn a_key_bound_to_a_client_and_user_refuses_others(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    (key.scoped_client_id, key.scoped_user_id) = (Some("world-a".into()), Some("gm".into()));
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let request = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    let other_client = Meter { client_id: Some("world-b"), ..request.clone() };
    assert_eq!(metered(store, &other_client).await, Err(Decision::Client));
    let other_user = Meter { client_id: Some("world-a"), user_id: Some("player"), ..request.clone() };
    assert_eq!(metered(store, &other_user).await, Err(Decision::User));
    let its_own = Meter { client_id: Some("world-a"), user_id: Some("gm"), ..request.clone() };
    assert_eq!(metered(store, &its_own).await, Ok(1));
    assert_eq!(metered(store, &request).await, Ok(2), "a request that names neither is the relay's to check");
    assert_eq!(reread(store, &user).await.usage.this_month(request.now), 2, "refusals counted nothing");
    let as_master = meter(&key.digest, KeyKind::Master, 100, NO_CAP);
    assert_eq!(metered(store, &as_master).await, Err(Decision::Unknown), "a scoped key's digest under frm_");
}

async fn a_key_is_held_to_its_scopes_clients_and_users(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut key = scoped_key(&user);
    key.scoped_client_id = Some("world-z".into());
    key.scoped_client_ids = vec!["world-a".into(), "world-b".into()];
    key.scoped_user_ids = [("world-a".to_owned(), "gm-a".to_owned())].into();
    key.scoped_user_id = Some("gm".into());
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let request = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    let asked = |need, client, user| Meter { need, client_id: client, user_id: user, ..request.clone() };
    let roll = Need::Scope(Scope::RollRead);
    for (need, client, user, expected) in [
        (roll, Some("world-a"), Some("gm-a"), Ok(1)),
        (Need::Scope(Scope::RollExecute), None, None, Err(Decision::Scope)),
        (Need::Scope(Scope::ExecuteJs), Some("world-a"), None, Err(Decision::Scope)),
        (Need::Unmapped, None, None, Err(Decision::Scope)),
        (roll, Some("world-z"), None, Err(Decision::Client)),
        (roll, Some("world-a"), Some("gm"), Err(Decision::User)),
        (roll, Some("world-b"), Some("gm-a"), Err(Decision::User)),
        (roll, Some("world-b"), Some("gm"), Ok(2)),
        (Need::Nothing, None, Some("gm"), Ok(3)),
    ] {
        let label = format!("{need:?} {client:?} {user:?}");
        assert_eq!(metered(store, &asked(need, client, user)).await, expected, "{label}");
    }
    assert_eq!(reread(store, &user).await.usage.this_month(request.now), 3, "refusals counted nothing");

    // A key made before scopes holds every scope, and routes of none.
    let mut old = scoped_key(&user);
    old.grant = Grant::Unrestricted;
    store.create_scoped_key(&user, &old, CAP).await.unwrap();
    let old_request = meter(&old.digest, KeyKind::Scoped, 100, NO_CAP);
    assert_eq!(metered(store, &Meter { need: Need::Scope(Scope::ExecuteJs), ..old_request.clone() }).await, Ok(1));
    assert_eq!(metered(store, &Meter { need: Need::Unmapped, ..old_request }).await, Ok(2));
    // A key of no scope is refused everything that needs one.
    let mut none = scoped_key(&user);
    none.grant = Grant::Only(ScopeSet::EMPTY);
    store.create_scoped_key(&user, &none, CAP).await.unwrap();
    let none_request = Meter { need: roll, ..meter(&none.digest, KeyKind::Scoped, 100, NO_CAP) };
    assert_eq!(metered(store, &none_request).await, Err(Decision::Scope));
}

async fn a_master_key_is_refused_on_the_relay_when_the_setting_says_so(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let request = meter(&user.master_key.digest, KeyKind::Master, 100, NO_CAP);
    let refused = Meter { master_allowed: false, need: Need::Scope(Scope::ExecuteJs), ..request.clone() };
    assert_eq!(metered(store, &refused).await, Err(Decision::MasterKeyNotAllowed));
    // A relay key (no kind in its text) that is a master key: the same.
    assert_eq!(metered(store, &Meter { kind: None, ..refused }).await, Err(Decision::MasterKeyNotAllowed));
    let allowed = Meter { need: Need::Unmapped, ..request };
    assert_eq!(metered(store, &allowed).await, Ok(1), "every scope, and routes of none");
    assert_eq!(metered(store, &Meter { kind: None, ..allowed }).await, Ok(2));
}

async fn changing_a_key_keeps_its_counters_and_decides_by_the_new_settings(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let key = scoped_key(&user);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    let rolls = Meter { need: Need::Scope(Scope::RollRead), ..meter(&key.digest, KeyKind::Scoped, 100, NO_CAP) };
    assert_eq!(metered(store, &rolls).await, Ok(1));

    let mut changed = key.clone();
    changed.grant = Grant::Only(ScopeSet::of([Scope::ChatRead]));
    changed.daily_limit = Some(5);
    changed.scoped_client_ids = vec!["world-a".into()];
    changed.scoped_user_ids = [("world-a".to_owned(), "gm".to_owned())].into();
    changed.name = "renamed".into();
    changed.updated_at = key.updated_at + Duration::seconds(1);
    store.update_scoped_key(&key, &changed).await.unwrap();
    assert_eq!(store.scoped_key(&user.id, &key.id).await.unwrap(), Some(changed.clone()));
    let entry = store.key_entry(&key.digest).await.unwrap().unwrap();
    assert_eq!((entry.grant, entry.daily_limit, entry.usage.this_month(rolls.now)), (changed.grant, Some(5), 1));
    assert_eq!(metered(store, &rolls).await, Err(Decision::Scope), "decided by the new scopes");
    let chat = Meter { need: Need::Scope(Scope::ChatRead), client_id: Some("world-a"), ..rolls.clone() };
    assert_eq!(metered(store, &chat).await, Ok(2), "the counters stayed");
    assert_eq!(metered(store, &Meter { client_id: Some("world-b"), ..chat.clone() }).await, Err(Decision::Client));

    // Limits and lists removed again: the entry loses them too.
    let mut relaxed = changed.clone();
    (relaxed.daily_limit, relaxed.scoped_client_ids, relaxed.scoped_user_ids) = (None, Vec::new(), Default::default());
    relaxed.grant = Grant::Unrestricted;
    relaxed.updated_at = changed.updated_at + Duration::seconds(1);
    store.update_scoped_key(&changed, &relaxed).await.unwrap();
    let entry = store.key_entry(&key.digest).await.unwrap().unwrap();
    assert_eq!((entry.grant, entry.daily_limit, entry.scoped_client_ids.len()), (Grant::Unrestricted, None, 0));
    // Its one client decides again.
    assert_eq!(metered(store, &Meter { client_id: Some("world-a"), ..chat.clone() }).await, Err(Decision::Client));
    assert_eq!(metered(store, &Meter { client_id: Some("client"), ..chat }).await, Ok(3));

    // A change from a stale read, and a change of a retired key, are conflicts.
    assert!(conflict(store.update_scoped_key(&changed, &relaxed).await), "read before the last change");
    store.retire_scoped_key(&relaxed, Utc::now()).await.unwrap();
    let retired = store.scoped_key(&user.id, &key.id).await.unwrap().unwrap();
    let mut again = retired.clone();
    again.enabled = true;
    again.updated_at = retired.updated_at + Duration::seconds(1);
    assert!(conflict(store.update_scoped_key(&retired, &again).await), "its entry is gone");
    assert!(store.key_entry(&key.digest).await.unwrap().is_none());
}

async fn disabled_and_expired_keys_are_refused_with_their_reason(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut off = scoped_key(&user);
    off.enabled = false;
    store.create_scoped_key(&user, &off, CAP).await.unwrap();
    assert_eq!(metered(store, &meter(&off.digest, KeyKind::Scoped, 100, NO_CAP)).await, Err(Decision::Disabled));
    let mut old = scoped_key(&user);
    old.expires_at = Some(Utc::now() - Duration::seconds(1));
    store.create_scoped_key(&user, &old, CAP).await.unwrap();
    assert_eq!(metered(store, &meter(&old.digest, KeyKind::Scoped, 100, NO_CAP)).await, Err(Decision::Expired));
    let mut later = scoped_key(&user);
    later.expires_at = Some(Utc::now() + Duration::hours(1));
    store.create_scoped_key(&user, &later, CAP).await.unwrap();
    assert_eq!(metered(store, &meter(&later.digest, KeyKind::Scoped, 100, NO_CAP)).await, Ok(1));
    let unknown = ApiKey::generate(KeyKind::Scoped).digest();
    assert_eq!(metered(store, &meter(&unknown, KeyKind::Scoped, 100, NO_CAP)).await, Err(Decision::Unknown));
}

async fn an_imported_account_is_written_whole_or_not_at_all(store: &Arc<dyn Store>) {
    let mut user = new_user(&email());
    user.password_hash = "$2b$10$relayrelayrelayrelayrelayrelayrelayrelayrelayrelayrel".into();
    user.scoped_key_count = 2;
    let mut usage = Usage::default();
    usage.counts.insert(shared::domain::model::day_period(Utc::now()), 3);
    let account = ImportedAccount {
        user: user.clone(),
        scoped_keys: vec![(scoped_key(&user), usage), (scoped_key(&user), Usage::default())],
    };
    store.import_account(&account).await.unwrap();
    let stored = reread(store, &user).await;
    assert_eq!((stored.password_hash.expose(), stored.scoped_key_count), (user.password_hash.expose(), 2));
    assert_eq!(store.scoped_keys(&user.id).await.unwrap().len(), 2);
    let entries = store.key_entries(&account.entries().iter().map(|e| e.digest.clone()).collect::<Vec<_>>()).await;
    let entries: Vec<_> = entries.unwrap().into_iter().map(Option::unwrap).collect();
    assert_eq!(entries[0].kind, KeyKind::Master);
    assert_eq!(entries[1].usage.today(Utc::now()), 3, "a key's counters come along");
    assert!(conflict(store.import_account(&account).await), "a second import of the same account");

    // Another account whose second scoped key is taken: nothing of it is written.
    let mut other = new_user(&email());
    other.scoped_key_count = 2;
    let taken = ScopedKey { user_id: other.id.clone(), ..account.scoped_keys[1].0.clone() };
    let partial = ImportedAccount {
        user: other.clone(),
        scoped_keys: vec![(scoped_key(&other), Usage::default()), (taken, Usage::default())],
    };
    assert!(conflict(store.import_account(&partial).await));
    assert!(store.user(&other.id).await.unwrap().is_none());
    assert!(store.user_by_email(&other.email_normalised).await.unwrap().is_none());
    assert!(store.key_entry(&other.master_key.digest).await.unwrap().is_none());
    assert!(store.key_entry(&partial.scoped_keys[0].0.digest).await.unwrap().is_none());
    assert!(store.scoped_keys(&other.id).await.unwrap().is_empty());
}

async fn metering_refuses_a_key_revoked_meanwhile(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let key = scoped_key(&user);
    store.create_scoped_key(&user, &key, CAP).await.unwrap();
    store.revoke_scoped_keys(&user, Utc::now()).await.unwrap();
    let request = meter(&key.digest, KeyKind::Scoped, 100, NO_CAP);
    assert_eq!(metered(store, &request).await, Err(Decision::Revoked), "minted under the old generation");
    assert_eq!(store.key_entry(&key.digest).await.unwrap().unwrap().usage.this_month(request.now), 0, "taken back");
    assert_eq!(reread(store, &user).await.usage.today(request.now), 0);
}

async fn metering_keeps_past_periods_out_of_the_current_counts(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let request = meter(&user.master_key.digest, KeyKind::Master, 10, NO_CAP);
    // Requests on seven days, each after an idle gap: every one of them leaves counters behind.
    for gap in (1..=7).rev() {
        let past = Meter { now: request.now - Duration::days(32 + 3 * gap), ..request.clone() };
        assert_eq!(metered(store, &past).await.map(|_| ()), Ok(()));
    }
    assert_eq!(metered(store, &request).await, Ok(1), "a new month's count starts at one");
    let usage = reread(store, &user).await.usage;
    assert_eq!((usage.today(request.now), usage.this_month(request.now)), (1, 1));
    let current = [shared::domain::model::day_period(request.now), shared::domain::model::month_period(request.now)];
    let older = usage.counts.keys().filter(|p| !current.contains(p)).count();
    assert!(older <= 2, "at most two counters of past periods stay: {:?}", usage.counts);
}

async fn the_scoped_key_cap_is_exact_under_concurrency(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let keys: Vec<ScopedKey> = (0..8).map(|_| scoped_key(&user)).collect();
    let created = join_all(keys.iter().map(|k| store.create_scoped_key(&user, k, 3))).await;
    assert_eq!(created.iter().filter(|r| r.is_ok()).count(), 3, "{created:?}");
    assert!(created.iter().all(|r| r.is_ok() || matches!(r, Err(PortError::Conflict))), "{created:?}");
    let stored = store.scoped_keys(&user.id).await.unwrap();
    assert_eq!((stored.len(), reread(store, &user).await.scoped_key_count), (3, 3));
    store.delete_scoped_key(&stored[0]).await.unwrap();
    assert_eq!(reread(store, &user).await.scoped_key_count, 2);
    store.create_scoped_key(&user, &scoped_key(&user), 3).await.unwrap();
    assert!(conflict(store.create_scoped_key(&user, &scoped_key(&user), 3).await), "full again");
}

async fn key_entries_are_read_in_one_batch_in_the_order_asked(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let mut digests = Vec::new();
    for _ in 0..3 {
        let key = scoped_key(&user);
        store.create_scoped_key(&user, &key, CAP).await.unwrap();
        digests.push(key.digest);
    }
    digests.insert(1, ApiKey::generate(KeyKind::Scoped).digest());
    let entries = store.key_entries(&digests).await.unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries[1].is_none(), "an unknown digest has no entry");
    for (digest, entry) in digests.iter().zip(&entries).filter(|(_, e)| e.is_some()) {
        assert_eq!(&entry.as_ref().unwrap().digest, digest);
    }
    assert_eq!(entries.iter().filter(|e| e.is_some()).count(), 3);
    assert_eq!(store.key_entries(&[]).await.unwrap(), vec![]);
}

async fn revoking_scoped_keys_keeps_the_master_key(store: &Arc<dyn Store>) {
    let user = created(store).await;
    store.revoke_scoped_keys(&user, Utc::now()).await.unwrap();
    let after = reread(store, &user).await;
    assert_eq!((after.key_generation, &after.master_key.digest), (1, &user.master_key.digest));
    assert!(conflict(store.create_scoped_key(&user, &scoped_key(&user), CAP).await), "minted under generation 0");
    let mut stale = user.clone();
    stale.master_key.digest = ApiKey::generate(KeyKind::Master).digest();
    assert!(conflict(store.revoke_scoped_keys(&stale, Utc::now()).await), "not this account's master key");
}

async fn the_throttle_secret_is_created_once(store: &Arc<dyn Store>) {
    let secrets = join_all((0..8).map(|_| store.throttle_secret())).await;
    let first = secrets[0].as_ref().unwrap().clone();
    assert_eq!(first.len(), 32);
    assert!(secrets.iter().all(|s| s.as_ref().unwrap() == &first), "one secret for every caller");
    assert_eq!(store.throttle_secret().await.unwrap(), first);
}

async fn an_entry_and_its_account_are_read_together(store: &Arc<dyn Store>) {
    let user = created(store).await;
    let (entry, account) = store.key_entry_and_account(&user.master_key.digest).await.unwrap().unwrap();
    assert_eq!((entry.user_id.as_str(), entry.kind), (user.id.as_str(), KeyKind::Master));
    assert_eq!(account, Some(user.clone()));
    let unknown = ApiKey::generate(KeyKind::Master).digest();
    assert_eq!(store.key_entry_and_account(&unknown).await.unwrap(), None);
    store.delete_user(&user).await.unwrap();
    assert_eq!(store.key_entry_and_account(&user.master_key.digest).await.unwrap(), None, "its entry went with it");
}

fn event(user_id: &str, kind: Activity, at: chrono::DateTime<Utc>) -> Event {
    Event::new(user_id, kind, Some("subject-1"), at)
}

async fn activity_is_read_newest_first_per_account_and_deleted_whole(store: &Arc<dyn Store>) {
    let (user, other) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let start = Utc::now();
    let written: Vec<Event> = (0..30)
        .map(|n| event(&user, Activity::ALL[n % Activity::COUNT], start + Duration::seconds(n as i64)))
        .collect();
    for e in written.iter().rev() {
        store.append_activity(e).await.unwrap();
    }
    store.append_activity(&event(&other, Activity::LoginFailed, start)).await.unwrap();

    let newest = store.activity(&user, 25, start).await.unwrap();
    let expected: Vec<Event> = written.iter().rev().take(25).cloned().collect();
    assert_eq!(newest, expected, "the 25 newest, newest first, read back whole");
    assert_eq!(store.activity(&user, 100, start).await.unwrap().len(), 30);

    store.delete_activity(&user).await.unwrap();
    assert!(store.activity(&user, 100, start).await.unwrap().is_empty());
    assert_eq!(store.activity(&other, 100, start).await.unwrap().len(), 1, "another account's log stays");
}

async fn activity_past_its_retention_is_not_read(store: &Arc<dyn Store>) {
    let user = uuid::Uuid::new_v4().to_string();
    let start = Utc::now();
    store.append_activity(&event(&user, Activity::PasswordChanged, start)).await.unwrap();
    store.append_activity(&event(&user, Activity::ResetRequested, start + Duration::days(30))).await.unwrap();

    let later = start + RETENTION + Duration::seconds(1);
    let kinds: Vec<Activity> = store.activity(&user, 50, later).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [Activity::ResetRequested]);
}
