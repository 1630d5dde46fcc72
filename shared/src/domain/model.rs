//! What the service keeps about an account and its keys.

use crate::domain::keys::{KeyDigest, KeyKind};
use crate::domain::scopes::Grant;
use chrono::{DateTime, Datelike, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

/// A stored password hash (PHC string). Not a password, but an offline guessing target:
/// held as a `secrecy` secret, so `Debug` (a `?user` in a log line) shows `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct StoredPasswordHash(SecretString);

impl StoredPasswordHash {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for StoredPasswordHash {
    fn from(phc: String) -> Self {
        Self(phc.into())
    }
}

impl From<&str> for StoredPasswordHash {
    fn from(phc: &str) -> Self {
        Self(phc.into())
    }
}

impl PartialEq for StoredPasswordHash {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// The account's subscription, as the relay's billing sets it: `active` lifts the monthly
/// limit. Any other status it writes (`canceled`, `past_due`, ...) is kept as it is and
/// counts as free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    Free,
    Active,
    Other(String),
}

impl Subscription {
    /// The status as the relay writes it and the contract answers it.
    pub fn as_str(&self) -> &str {
        match self {
            Subscription::Free => "free",
            Subscription::Active => "active",
            Subscription::Other(status) => status,
        }
    }

    /// Whether the account's monthly requests are unlimited.
    pub fn is_active(&self) -> bool {
        matches!(self, Subscription::Active)
    }
}

impl From<String> for Subscription {
    fn from(status: String) -> Self {
        match status.as_str() {
            "free" | "" => Subscription::Free,
            "active" => Subscription::Active,
            _ => Subscription::Other(status),
        }
    }
}

/// A user account. The password hash and the master key's ciphertext never leave the
/// service; responses are built field by field, never by serialising this.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_normalised: String,
    /// The PHC string (argon2id, or a relay's bcrypt until its first login here): an
    /// offline guessing target, so `Debug` shows it as `[REDACTED]`.
    pub password_hash: StoredPasswordHash,
    pub master_key: StoredMasterKey,
    /// Bumped whenever the master key is replaced; scoped keys minted under an older
    /// generation stop working at that moment.
    pub key_generation: u64,
    /// The digest of the one reset token that may still be redeemed.
    pub reset_token_digest: Option<String>,
    /// Whether the owner proved control of the email. `false` only for an account
    /// registered while `REQUIRE_EMAIL_VERIFICATION` was on and not verified since (the
    /// stores keep only that case: absent means verified, so accounts made before the
    /// setting, or imported, count as verified).
    pub email_verified: bool,
    /// The digest of the one email-verification token that may still be redeemed.
    pub verification_token_digest: Option<String>,
    /// How many scoped keys the account has (capped by `SCOPED_KEYS_PER_ACCOUNT`).
    pub scoped_key_count: u64,
    pub subscription_status: Subscription,
    pub stripe_customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMasterKey {
    pub digest: KeyDigest,
    /// KMS ciphertext bound to the account (encryption context), so login can return it.
    /// Empty when the service never saw the key: an account imported from a relay 3.x,
    /// which kept only the key's digest (the key works, login cannot show it until the
    /// owner regenerates it).
    pub ciphertext: Vec<u8>,
    /// The key's first characters; empty when the key was never seen here.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

impl StoredMasterKey {
    /// Whether login can answer the key itself (its ciphertext is stored).
    pub fn is_available(&self) -> bool {
        !self.ciphertext.is_empty()
    }
}

/// Requests the authorizer counted, by UTC period (`day:2026-11-26`, `month:2026-11`):
/// a new day or month starts from zero by itself, with no batch job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub counts: BTreeMap<String, u64>,
    pub last_request_at: Option<DateTime<Utc>>,
}

impl Usage {
    pub fn today(&self, now: DateTime<Utc>) -> u64 {
        self.counts.get(&day_period(now)).copied().unwrap_or(0)
    }

    pub fn this_month(&self, now: DateTime<Utc>) -> u64 {
        self.counts.get(&month_period(now)).copied().unwrap_or(0)
    }

    /// The counters to drop when counting at `now`: every one read that is not of `now`'s
    /// day or month, and yesterday's and last month's (which a request counted after this
    /// read may have written). What stays is at most the current day and month.
    pub fn stale_periods(&self, now: DateTime<Utc>) -> Vec<String> {
        let current = [day_period(now), month_period(now)];
        let (previous_day, previous_month) = previous_periods(now);
        let mut stale: Vec<String> = self.counts.keys().filter(|k| !current.contains(k)).cloned().collect();
        for previous in [previous_day, previous_month] {
            if !stale.contains(&previous) {
                stale.push(previous);
            }
        }
        stale
    }
}

impl Usage {
    /// Counts `cost` requests at `now` on the day's and the month's counters, after
    /// dropping the stale ones.
    pub fn add(&mut self, now: DateTime<Utc>, cost: u64) {
        for stale in self.stale_periods(now) {
            self.counts.remove(&stale);
        }
        for period in [day_period(now), month_period(now)] {
            *self.counts.entry(period).or_insert(0) += cost;
        }
        self.last_request_at = Some(now);
    }
}

/// The UTC day that holds `now`, as a counter name.
pub fn day_period(now: DateTime<Utc>) -> String {
    // Plain integer formatting: chrono's format strings are parsed anew on every call, and
    // every authenticated request names its periods.
    format!("day:{:04}-{:02}-{:02}", now.year(), now.month(), now.day())
}

/// The UTC calendar month that holds `now`, as a counter name.
pub fn month_period(now: DateTime<Utc>) -> String {
    format!("month:{:04}-{:02}", now.year(), now.month())
}

/// The counters of the periods before `now`'s (yesterday, last month): a store drops
/// them as it counts, so that an active account keeps only current counters.
pub fn previous_periods(now: DateTime<Utc>) -> (String, String) {
    let yesterday = now - chrono::Duration::days(1);
    let last_month = now.with_day(1).unwrap_or(now) - chrono::Duration::days(1);
    (day_period(yesterday), month_period(last_month))
}

/// The key index entry: what a key digest resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub digest: KeyDigest,
    pub user_id: String,
    pub kind: KeyKind,
    /// For scoped keys: the key's id and the master key generation it was minted under.
    pub scoped_key_id: Option<String>,
    pub generation: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    /// Copied from the scoped key, so that authorising a request reads no more than the
    /// entry and the account.
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The Foundry clients the key serves (when not empty, instead of `scoped_client_id`).
    pub scoped_client_ids: Vec<String>,
    /// The Foundry user per client (before `scoped_user_id`, for a request naming that client).
    pub scoped_user_ids: BTreeMap<String, String>,
    /// What the scoped key may do.
    pub grant: Grant,
    /// The scoped key's own request counters.
    pub usage: Usage,
}

impl KeyEntry {
    /// The entry of an account's master key, minted under `generation`.
    pub fn master(user_id: &str, digest: &KeyDigest, generation: u64) -> Self {
        Self {
            digest: digest.clone(),
            user_id: user_id.to_owned(),
            kind: KeyKind::Master,
            scoped_key_id: None,
            generation,
            expires_at: None,
            enabled: true,
            monthly_limit: None,
            daily_limit: None,
            scoped_client_id: None,
            scoped_user_id: None,
            scoped_client_ids: Vec::new(),
            scoped_user_ids: BTreeMap::new(),
            grant: Grant::Unrestricted,
            usage: Usage::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScopedKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub digest: KeyDigest,
    pub prefix: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The Foundry clients the key serves (the relay 3.x's `scopedClientIds`); when not
    /// empty, it decides instead of `scoped_client_id`.
    pub scoped_client_ids: Vec<String>,
    /// The Foundry user per client id (the relay 3.x's `scopedUserIds`).
    pub scoped_user_ids: BTreeMap<String, String>,
    /// What the key may do: its scopes, or everything for a key made before scopes.
    pub grant: Grant,
    pub monthly_limit: Option<u64>,
    /// The key's cap on requests per UTC day (the Node relay's keys had one).
    pub daily_limit: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    /// KMS ciphertext bound to the account and this key.
    pub foundry_password_ciphertext: Option<Vec<u8>>,
    pub enabled: bool,
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ScopedKey {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Enabled and minted under the account's current master key.
    pub fn is_enabled(&self, user: &User) -> bool {
        self.enabled && self.generation == user.key_generation
    }

    pub fn entry(&self) -> KeyEntry {
        KeyEntry {
            digest: self.digest.clone(),
            user_id: self.user_id.clone(),
            kind: KeyKind::Scoped,
            scoped_key_id: Some(self.id.clone()),
            generation: self.generation,
            expires_at: self.expires_at,
            enabled: self.enabled,
            monthly_limit: self.monthly_limit,
            daily_limit: self.daily_limit,
            scoped_client_id: self.scoped_client_id.clone(),
            scoped_user_id: self.scoped_user_id.clone(),
            scoped_client_ids: self.scoped_client_ids.clone(),
            scoped_user_ids: self.scoped_user_ids.clone(),
            grant: self.grant,
            usage: Usage::default(),
        }
    }
}

/// An account moved over from the Node relay (`import-relay`), to be written whole or
/// not at all: the user (its bcrypt hash as it was, `scoped_key_count` the number of its
/// keys) and its scoped keys, each with the counters its index entry starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedAccount {
    pub user: User,
    pub scoped_keys: Vec<(ScopedKey, Usage)>,
}

impl ImportedAccount {
    /// The index entries of the account's keys: the master key's, then each scoped key's.
    pub fn entries(&self) -> Vec<KeyEntry> {
        let master = KeyEntry::master(&self.user.id, &self.user.master_key.digest, self.user.key_generation);
        let scoped = self.scoped_keys.iter().map(|(key, usage)| KeyEntry { usage: usage.clone(), ..key.entry() });
        std::iter::once(master).chain(scoped).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_subscription_status_reads_back_as_it_was_written() {
        for (status, active) in [("free", false), ("active", true), ("past_due", false), ("canceled", false)] {
            let subscription = Subscription::from(status.to_owned());
            assert_eq!((subscription.as_str(), subscription.is_active()), (status, active));
        }
        assert_eq!(Subscription::from(String::new()), Subscription::Free);
    }

    #[test]
    fn a_password_hash_never_shows_in_debug_output() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
        let hash = StoredPasswordHash::from(phc);
        assert_eq!(hash.expose(), phc);
        let shown = format!("{hash:?}");
        assert!(!shown.contains("c2FsdHNhbHQ") && shown.contains("REDACTED"), "{shown}");
        assert_eq!(hash, StoredPasswordHash::from(phc.to_owned()));
    }

    #[test]
    fn counters_are_read_for_the_period_that_holds_now() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        let mut usage = Usage::default();
        usage.counts.insert(day_period(now), 4);
        usage.counts.insert(month_period(now), 40);
        assert_eq!((usage.today(now), usage.this_month(now)), (4, 40));
        let next_day = now + chrono::Duration::seconds(1);
        assert_eq!((usage.today(next_day), usage.this_month(next_day)), (0, 0), "December starts from zero");
        assert_eq!(day_period(now), "day:2026-11-30");
        assert_eq!(month_period(next_day), "month:2026-12");
        assert_eq!(previous_periods(next_day), ("day:2026-11-30".to_owned(), "month:2026-11".to_owned()));
        let march = Utc.with_ymd_and_hms(2028, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(previous_periods(march), ("day:2028-02-29".to_owned(), "month:2028-02".to_owned()));
    }

    #[test]
    fn every_counter_of_a_past_period_is_stale() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let mut usage = Usage::default();
        for period in ["day:2026-11-30", "month:2026-11", "day:2026-10-02", "month:2026-09", "day:2026-11-29"] {
            usage.counts.insert(period.to_owned(), 1);
        }
        let mut stale = usage.stale_periods(now);
        stale.sort();
        assert_eq!(stale, ["day:2026-10-02", "day:2026-11-29", "month:2026-09", "month:2026-10"]);
    }
}
