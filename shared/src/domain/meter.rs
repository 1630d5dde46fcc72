//! The rules of one metered request, as data and pure functions: what makes a key's
//! request refused, and with which reason. Both stores apply them: the embedded store in
//! one transaction, DynamoDB as the conditions of its counting writes (and, when a
//! condition fails, on the item it returns, to name the reason). Nothing here reads a
//! store or a clock.

use crate::domain::keys::{KeyDigest, KeyKind};
use crate::domain::model::{KeyEntry, Subscription, Usage, User};
use crate::domain::named::named_enum;
use crate::domain::scopes::Need;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

named_enum! {
    /// Why a key's request was admitted or refused (the `Reason` of the authorizer's metric
    /// and verify's `reason`).
    pub enum Decision {
        Admitted => "admitted",
        /// Over a cap: the key's monthly or daily limit, the account's daily or monthly limit.
        Cap => "cap",
        /// No key at all.
        Missing => "missing",
        /// Not a key of this service (format or checksum), refused before any read.
        Malformed => "malformed",
        /// Well formed, but no such key (or its account is gone).
        Unknown => "unknown",
        /// A replaced master key, or a scoped key of an older master key.
        Revoked => "revoked",
        /// A scoped key switched off (`enabled: false`).
        Disabled => "disabled",
        Expired => "expired",
        /// A scoped key bound to another Foundry client than the request's.
        Client => "client",
        /// A scoped key bound to another Foundry user than the request's.
        User => "user",
        /// A scoped key without the scope the route requires (or a route of no scope).
        Scope => "scope",
        /// A master key on a relay route, where `MASTER_KEY_RELAY_ACCESS` is `none`.
        MasterKeyNotAllowed => "master_key_not_allowed",
        /// A key imported from the Node relay (64 hex characters) after `LEGACY_KEYS_UNTIL`.
        Legacy => "legacy",
        /// A key of an account whose email is not verified yet, while
        /// `REQUIRE_EMAIL_VERIFICATION` is on.
        Unverified => "unverified",
        /// A dependency failed: refused without a verdict (fails closed).
        Error => "error",
    }
}

/// A refused request: the reason and, for a cap, when the cap that refused frees up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Decision,
    /// The start of the UTC day or month that frees the cap (`Cap` only).
    pub resets_at: Option<DateTime<Utc>>,
}

impl Refusal {
    /// No such key, or its account is gone.
    pub const UNKNOWN: Refusal = Refusal { reason: Decision::Unknown, resets_at: None };

    pub fn because(reason: Decision) -> Self {
        Self { reason, resets_at: None }
    }
}

/// The most requests one request may count as (verify's `cost`).
pub const MAX_COST: u64 = 1000;

/// One request of a key, as the store meters it.
#[derive(Debug, Clone)]
pub struct Meter<'a> {
    pub digest: &'a KeyDigest,
    /// The kind the key's text names; `None` for a key imported from the relay (its entry says).
    pub kind: Option<KeyKind>,
    pub now: DateTime<Utc>,
    /// How many requests this one counts as (1 to [`MAX_COST`]).
    pub cost: u64,
    /// `false`: decide whether `cost` would be admitted, and count nothing.
    pub count: bool,
    /// The Foundry client and user the request targets, when it names them.
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// What the request needs of a scoped key.
    pub need: Need,
    /// Whether a master key may make the request (`MASTER_KEY_RELAY_ACCESS`).
    pub master_allowed: bool,
    /// Whether the account's email must be verified (`REQUIRE_EMAIL_VERIFICATION`).
    pub require_verified: bool,
    /// The account's caps (`DAILY_REQUEST_LIMIT`, `MONTHLY_REQUEST_LIMIT`; an active
    /// subscription lifts the monthly one).
    pub daily_limit: u64,
    pub monthly_limit: u64,
}

/// What metering needs of an account, and all it writes: the counters, and what decides
/// whether a key may still add to them. (DynamoDB keeps it as an item of its own beside
/// the account, so that the item every request writes stays under 1 KB.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMeter {
    pub user_id: String,
    /// The account's master key: the only master key that may count.
    pub master_key_digest: KeyDigest,
    /// Scoped keys of other generations may not count.
    pub key_generation: u64,
    /// `active` lifts the monthly cap.
    pub subscription_status: Subscription,
    /// An unverified account's keys are refused while verification is required.
    pub email_verified: bool,
    pub usage: Usage,
}

impl From<&User> for AccountMeter {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            master_key_digest: user.master_key.digest.clone(),
            key_generation: user.key_generation,
            subscription_status: user.subscription_status.clone(),
            email_verified: user.email_verified,
            usage: user.usage.clone(),
        }
    }
}

/// What the store answers: the entry and the account's meter as they are after counting
/// (or, for `count: false`, as read), or the refusal.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "made once per request and taken apart at once")]
pub enum Metered {
    Admitted { entry: KeyEntry, account: AccountMeter },
    Refused(Refusal),
}

/// The start of the next UTC day after `now`.
pub fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive().succ_opt().unwrap_or(NaiveDate::MAX);
    Utc.from_utc_datetime(&tomorrow.and_time(chrono::NaiveTime::MIN))
}

/// The start of the next UTC month after `now`.
pub fn next_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(NaiveDate::MAX);
    Utc.from_utc_datetime(&first.and_time(chrono::NaiveTime::MIN))
}

/// Whether keys imported from the Node relay are refused at `now`: `LEGACY_KEYS_UNTIL`
/// (`legacy_keys_until`) is set and reached (its instant is the first one refused).
pub fn legacy_keys_ended(legacy_keys_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    legacy_keys_until.is_some_and(|until| now >= until)
}

/// Whether a key that expires at `expires_at` is expired at `now`. Expiry is decided to
/// the second (a key expires at the start of its expiry second), as DynamoDB decides it
/// in the counting condition, comparing whole-second timestamps as text.
pub fn is_expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.timestamp() >= expires_at.timestamp()
}

/// The caps of `counts` that `cost` more requests would pass, as the refusal they make:
/// a cap refuses when `count + cost > cap`; when several refuse, the one that frees last.
fn caps(now: DateTime<Utc>, cost: u64, day: (u64, Option<u64>), month: (u64, Option<u64>)) -> Option<Refusal> {
    let over = |(count, cap): (u64, Option<u64>)| cap.is_some_and(|cap| count.saturating_add(cost) > cap);
    let resets_at = if over(month) {
        next_month(now)
    } else if over(day) {
        next_day(now)
    } else {
        return None;
    };
    Some(Refusal { reason: Decision::Cap, resets_at: Some(resets_at) })
}

/// The key's own verdict, from its index entry alone (before counting: `counted` is 0;
/// after, on the entry as counted, it is the cost already added).
pub fn entry_refusal(entry: &KeyEntry, meter: &Meter<'_>, counted: u64) -> Option<Refusal> {
    if meter.kind.is_some_and(|kind| kind != entry.kind) {
        return Some(Refusal::UNKNOWN);
    }
    if entry.kind == KeyKind::Master {
        return (!meter.master_allowed).then(|| Refusal::because(Decision::MasterKeyNotAllowed));
    }
    let reason = if !entry.enabled {
        Decision::Disabled
    } else if entry.expires_at.is_some_and(|at| is_expired(at, meter.now)) {
        Decision::Expired
    } else if !serves_client(entry, meter.client_id) {
        Decision::Client
    } else if !serves_user(entry, meter.client_id, meter.user_id) {
        Decision::User
    } else if !entry.grant.allows(meter.need) {
        Decision::Scope
    } else {
        let usage = &entry.usage;
        let day = (usage.today(meter.now).saturating_sub(counted), entry.daily_limit);
        let month = (usage.this_month(meter.now).saturating_sub(counted), entry.monthly_limit);
        return caps(meter.now, meter.cost, day, month);
    };
    Some(Refusal::because(reason))
}

/// Whether a scoped key serves the Foundry client a request names (any, when it names
/// none): one of its client list when it has one, else its one client, if any.
pub fn serves_client(entry: &KeyEntry, asked: Option<&str>) -> bool {
    let Some(asked) = asked else {
        return true;
    };
    if !entry.scoped_client_ids.is_empty() {
        return entry.scoped_client_ids.iter().any(|id| id == asked);
    }
    entry.scoped_client_id.as_deref().is_none_or(|id| id == asked)
}

/// The Foundry user a scoped key acts as for a request of `client`: the key's user for
/// that client when it maps one, else its one user, if any.
pub fn user_for<'e>(entry: &'e KeyEntry, client: Option<&str>) -> Option<&'e str> {
    client.and_then(|client| entry.scoped_user_ids.get(client)).or(entry.scoped_user_id.as_ref()).map(String::as_str)
}

/// Whether a scoped key may act as the Foundry user a request names (any, when it names none).
pub fn serves_user(entry: &KeyEntry, client: Option<&str>, asked: Option<&str>) -> bool {
    asked.is_none_or(|asked| user_for(entry, client).is_none_or(|user| user == asked))
}

/// The account's verdict on a request of `entry`: the key must still be the account's, its
/// email verified when that is required, and the account's caps must have room (`counted`
/// as for [`entry_refusal`]).
pub fn account_refusal(user: &AccountMeter, entry: &KeyEntry, meter: &Meter<'_>, counted: u64) -> Option<Refusal> {
    let still_the_accounts = match entry.kind {
        KeyKind::Master => user.master_key_digest == entry.digest,
        KeyKind::Scoped => user.key_generation == entry.generation,
    };
    if !still_the_accounts {
        return Some(Refusal::because(Decision::Revoked));
    }
    if meter.require_verified && !user.email_verified {
        return Some(Refusal::because(Decision::Unverified));
    }
    let monthly_limit = (!user.subscription_status.is_active()).then_some(meter.monthly_limit);
    let day = (user.usage.today(meter.now).saturating_sub(counted), Some(meter.daily_limit));
    let month = (user.usage.this_month(meter.now).saturating_sub(counted), monthly_limit);
    caps(meter.now, meter.cost, day, month)
}

/// The refusal, if any, of a request of a key from its index entry and its account as read
/// (`None`: the account is gone): what the embedded store applies in one transaction.
pub fn refusal(entry: &KeyEntry, user: Option<&User>, meter: &Meter<'_>) -> Option<Refusal> {
    if let Some(refusal) = entry_refusal(entry, meter, 0) {
        return Some(refusal);
    }
    let Some(user) = user else {
        return Some(Refusal::UNKNOWN);
    };
    account_refusal(&AccountMeter::from(user), entry, meter, 0)
}

/// The verdict on a request of a key, from its index entry and account as read (`None`:
/// no such key): what both stores answer for `count: false`.
pub fn verdict(found: Option<(KeyEntry, Option<User>)>, meter: &Meter<'_>) -> Metered {
    let Some((entry, user)) = found else {
        return Metered::Refused(Refusal::UNKNOWN);
    };
    match (refusal(&entry, user.as_ref(), meter), user) {
        (None, Some(user)) => Metered::Admitted { entry, account: AccountMeter::from(&user) },
        (refused, _) => Metered::Refused(refused.unwrap_or(Refusal::UNKNOWN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Usage;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn scoped(now: DateTime<Utc>, day: u64, month: u64) -> KeyEntry {
        let mut entry = KeyEntry::master("u1", &KeyDigest("d".repeat(64)), 1);
        entry.kind = KeyKind::Scoped;
        entry.scoped_key_id = Some("k1".into());
        entry.usage = Usage {
            counts: [(crate::domain::model::day_period(now), day), (crate::domain::model::month_period(now), month)]
                .into_iter()
                .collect(),
            last_request_at: None,
        };
        entry
    }

    fn meter(digest: &KeyDigest, now: DateTime<Utc>, cost: u64) -> Meter<'_> {
        Meter {
            digest,
            kind: Some(KeyKind::Scoped),
            now,
            cost,
            count: true,
            client_id: None,
            user_id: None,
            need: Need::Nothing,
            master_allowed: true,
            require_verified: false,
            daily_limit: 1000,
            monthly_limit: 100,
        }
    }

    #[test]
    fn caps_free_up_at_the_start_of_the_next_utc_day_or_month() {
        assert_eq!(next_day(at("2026-12-31T23:59:59Z")), at("2027-01-01T00:00:00Z"));
        assert_eq!(next_month(at("2026-12-31T23:59:59Z")), at("2027-01-01T00:00:00Z"));
        assert_eq!(next_month(at("2026-02-01T00:00:00Z")), at("2026-03-01T00:00:00Z"));
        assert_eq!(next_day(at("2028-02-28T12:00:00Z")), at("2028-02-29T00:00:00Z"));
    }

    #[test]
    fn a_cost_is_admitted_only_when_every_cap_has_room_for_all_of_it() {
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let mut entry = scoped(now, 7, 40);
        entry.daily_limit = Some(10);
        entry.monthly_limit = Some(50);
        assert_eq!(entry_refusal(&entry, &meter(&digest, now, 3), 0), None, "7 + 3 = 10: room");
        let refused = entry_refusal(&entry, &meter(&digest, now, 4), 0).unwrap();
        assert_eq!((refused.reason, refused.resets_at), (Decision::Cap, Some(at("2026-12-03T00:00:00Z"))));
        entry.usage.counts.insert(crate::domain::model::month_period(now), 48);
        let both = entry_refusal(&entry, &meter(&digest, now, 4), 0).unwrap();
        assert_eq!(both.resets_at, Some(at("2027-01-01T00:00:00Z")), "the cap that frees last");
        assert_eq!(entry_refusal(&entry, &meter(&digest, now, 4), 4), None, "judged after counting 4");
    }

    #[test]
    fn a_key_bound_to_a_client_or_user_refuses_another_and_admits_when_none_is_named() {
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let mut entry = scoped(now, 0, 0);
        entry.scoped_client_id = Some("world-a".into());
        entry.scoped_user_id = Some("gm".into());
        let mut ask = meter(&digest, now, 1);
        assert_eq!(entry_refusal(&entry, &ask, 0), None);
        ask.client_id = Some("world-b");
        assert_eq!(entry_refusal(&entry, &ask, 0).unwrap().reason, Decision::Client);
        ask.client_id = Some("world-a");
        ask.user_id = Some("player");
        assert_eq!(entry_refusal(&entry, &ask, 0).unwrap().reason, Decision::User);
        ask.user_id = Some("gm");
        assert_eq!(entry_refusal(&entry, &ask, 0), None);
    }

    #[test]
    fn a_key_of_several_clients_serves_each_as_its_user_for_it() {
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let mut entry = scoped(now, 0, 0);
        // The list takes precedence over the single client, as in the relay.
        entry.scoped_client_id = Some("world-z".into());
        entry.scoped_client_ids = vec!["world-a".into(), "world-b".into()];
        entry.scoped_user_ids = [("world-a".to_owned(), "gm-a".to_owned())].into();
        entry.scoped_user_id = Some("gm".into());
        let mut ask = meter(&digest, now, 1);
        let reason = |ask: &Meter<'_>| entry_refusal(&entry, ask, 0).map(|r| r.reason);
        for (client, user, expected) in [
            (Some("world-a"), Some("gm-a"), None),
            (Some("world-a"), Some("gm"), Some(Decision::User)),
            (Some("world-b"), Some("gm"), None),
            (Some("world-b"), Some("gm-a"), Some(Decision::User)),
            (Some("world-z"), None, Some(Decision::Client)),
            (None, Some("gm"), None),
            (None, None, None),
        ] {
            (ask.client_id, ask.user_id) = (client, user);
            assert_eq!(reason(&ask), expected, "{client:?} {user:?}");
        }
        assert_eq!(user_for(&entry, Some("world-a")), Some("gm-a"));
        assert_eq!(user_for(&entry, Some("world-b")), Some("gm"));
    }

    #[test]
    fn a_scoped_key_needs_the_routes_scope_and_a_master_key_the_setting() {
        use crate::domain::scopes::{Grant, Scope, ScopeSet};
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let mut entry = scoped(now, 0, 0);
        entry.grant = Grant::Only(ScopeSet::of([Scope::RollRead]));
        let mut ask = meter(&digest, now, 1);
        let reason = |entry: &KeyEntry, ask: &Meter<'_>| entry_refusal(entry, ask, 0).map(|r| r.reason);
        for (need, expected) in [
            (Need::Scope(Scope::RollRead), None),
            (Need::Scope(Scope::RollExecute), Some(Decision::Scope)),
            (Need::Scope(Scope::ExecuteJs), Some(Decision::Scope)),
            (Need::Unmapped, Some(Decision::Scope)),
            (Need::Nothing, None),
        ] {
            ask.need = need;
            assert_eq!(reason(&entry, &ask), expected, "{need:?}");
        }
        // Over its cap and without the scope: the scope is named (the cap would free up, the scope not).
        entry.daily_limit = Some(0);
        ask.need = Need::Scope(Scope::ExecuteJs);
        assert_eq!(reason(&entry, &ask), Some(Decision::Scope));
        let mut master = KeyEntry::master("u1", &digest, 1);
        master.grant = Grant::Only(ScopeSet::EMPTY);
        ask.kind = Some(KeyKind::Master);
        assert_eq!(reason(&master, &ask), None, "a master key holds every scope");
        ask.master_allowed = false;
        assert_eq!(reason(&master, &ask), Some(Decision::MasterKeyNotAllowed));
    }

    #[test]
    fn disabled_expired_and_kind_mismatches_are_named() {
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let mut entry = scoped(now, 0, 0);
        entry.expires_at = Some(at("2026-12-02T10:00:00.5Z"));
        assert_eq!(entry_refusal(&entry, &meter(&digest, now, 1), 0).unwrap().reason, Decision::Expired);
        entry.expires_at = Some(at("2026-12-02T10:00:01Z"));
        assert_eq!(entry_refusal(&entry, &meter(&digest, now, 1), 0), None);
        entry.enabled = false;
        assert_eq!(entry_refusal(&entry, &meter(&digest, now, 1), 0).unwrap().reason, Decision::Disabled);
        let mut master = meter(&digest, now, 1);
        master.kind = Some(KeyKind::Master);
        assert_eq!(entry_refusal(&entry, &master, 0).unwrap().reason, Decision::Unknown);
    }

    #[test]
    fn an_unverified_account_is_refused_only_while_verification_is_required() {
        let now = at("2026-12-02T10:00:00Z");
        let digest = KeyDigest("d".repeat(64));
        let entry = scoped(now, 0, 0);
        let account = AccountMeter {
            user_id: "u1".into(),
            master_key_digest: digest.clone(),
            key_generation: 1,
            subscription_status: Subscription::Free,
            email_verified: false,
            usage: Usage::default(),
        };
        let mut ask = meter(&digest, now, 1);
        assert_eq!(account_refusal(&account, &entry, &ask, 0), None, "not required: admitted");
        ask.require_verified = true;
        assert_eq!(account_refusal(&account, &entry, &ask, 0).unwrap().reason, Decision::Unverified);
        let verified = AccountMeter { email_verified: true, ..account.clone() };
        assert_eq!(account_refusal(&verified, &entry, &ask, 0), None);
        let revoked = AccountMeter { key_generation: 2, ..account };
        assert_eq!(account_refusal(&revoked, &entry, &ask, 0).unwrap().reason, Decision::Revoked, "revoked first");
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = Decision::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), Decision::ALL.len());
    }
}
