//! Throttling shared by every instance of every function: rate limits and blocks kept by
//! the store, so a fleet of Lambda instances sees one count. The limits themselves and
//! their arithmetic (GCRA) are [`crate::domain::limits`].
//!
//! Per-account rules key on the normalised email, also for emails that have no account,
//! so that throttling reveals nothing about which accounts exist. Every subject (email,
//! client address, account id) is stored only as an HMAC under a secret the store keeps,
//! so neither an address (a few billion to try) nor an email (a list to try) can be
//! recovered from the throttle table.
//!
//! Nobody who knows only an email can lock its owner out. Failed password checks lock the
//! account *at one client network* (the account and the address together); a slower
//! account-wide budget bounds guessing spread over many addresses, and refuses only
//! networks the account does not know. A network becomes known to an account when a
//! correct password or a redeemed reset link comes from it. Reset emails are budgeted the
//! same way: the owner's own requests never share a budget with a stranger's.

use crate::domain::app::App;
use crate::domain::error::{AuthError, Chain};
use crate::domain::limits::{Limit, Rule};
use crate::domain::metrics::{self, Counter};
use chrono::{DateTime, Utc};
use sha2::Sha256;
use std::time::Duration;

/// Lockouts are counted per day: each one within a day lasts twice as long as the last.
const STRIKE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long a network that gave the right password, or redeemed a reset link, stays known
/// to the account: exempt from the account-wide budgets that strangers can spend.
pub const KNOWN_NETWORK_DAYS: u64 = 30;

/// What the store keeps of a subject: its HMAC-SHA256 under the throttle secret.
async fn subject(app: &App, value: &str) -> Result<String, AuthError> {
    let secret = app.store.throttle_secret().await?;
    keyed(&secret, value).ok_or_else(|| AuthError::from(crate::domain::error::PortError::other("HMAC key refused")))
}

fn keyed(secret: &[u8], value: &str) -> Option<String> {
    use hmac::Mac;
    // HMAC takes a key of any length: this never fails.
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(value.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn refused(rule: Rule, limit: u32, until: DateTime<Utc>, now: DateTime<Utc>) -> AuthError {
    metrics::count(Counter::Throttled(rule));
    // Whole seconds, rounded up: a client that waits this long is not refused again.
    let millis = u64::try_from((until - now).num_milliseconds()).unwrap_or(0);
    let retry_after = millis.div_ceil(1000).max(1);
    AuthError::RateLimited { rule, limit, retry_after }
}

// The keys throttling keeps in the store. Stored data: each must stay byte for byte what
// it is, or every subject silently starts afresh.

/// The key of a rate limit: its prefix ([`Rule::prefix`]), the limit itself (so that a
/// changed limit starts from a full budget instead of reading a TAT kept at another rate)
/// and the subject.
fn rate_key(prefix: &str, subject: &str, limit: Limit) -> String {
    format!("{prefix}:{}/{}:{subject}", limit.max, limit.window.as_secs())
}

/// The key of a lock of an account at one network ([`Pair`]), once its budget of password
/// checks there is spent.
fn lock_key(pair: &str) -> String {
    format!("lock:{pair}")
}

/// The key of the lockouts of the day of an account at one network.
fn strikes_key(pair: &str) -> String {
    format!("strikes:{pair}")
}

/// The key of the account-wide budget of failed password checks.
fn all_failures_key(account: &str, limit: Limit) -> String {
    rate_key("failures-all", account, limit)
}

/// The key that marks a network as known to an account.
fn known_key(pair: &str) -> String {
    format!("known:{pair}")
}

/// The key of the `n`th budget of reset emails of an address asked for from one network.
fn reset_mail_key(n: usize, pair: &str, limit: Limit) -> String {
    rate_key(&format!("reset-mail:{n}"), pair, limit)
}

/// The key of the `n`th account-wide budget of reset emails of an address.
fn all_reset_mail_key(n: usize, address: &str, limit: Limit) -> String {
    rate_key(&format!("reset-mail-all:{n}"), address, limit)
}

/// The subjects of an account (by its normalised email, with or without an account) and of
/// the account at the client's network.
struct Pair {
    account: String,
    pair: String,
}

impl Pair {
    async fn of(app: &App, email_normalised: &str, address: Option<&str>) -> Result<Self, AuthError> {
        let network = network(address.unwrap_or("unknown"));
        Ok(Self {
            account: subject(app, email_normalised).await?,
            // No email holds a NUL: the pair cannot be forged from another email.
            pair: subject(app, &format!("{email_normalised}\0{network}")).await?,
        })
    }

    /// The key of the account's budget of password checks at this network.
    fn failures_key(&self, limit: Limit) -> String {
        rate_key(Rule::AccountFailures.prefix(), &self.pair, limit)
    }

    /// The key of the account's budget of password checks from networks it does not know.
    fn all_failures_key(&self, limit: Limit) -> String {
        all_failures_key(&self.account, limit)
    }

    async fn is_known(&self, app: &App) -> Result<bool, AuthError> {
        Ok(app.store.blocked_until(&known_key(&self.pair), app.clock.now()).await?.is_some())
    }

    /// Marks the network as known to the account for [`KNOWN_NETWORK_DAYS`]; best effort.
    async fn remember(&self, app: &App) {
        let until = app.clock.now() + chrono::Duration::days(KNOWN_NETWORK_DAYS as i64);
        if let Err(error) = app.store.block(&known_key(&self.pair), until).await {
            tracing::warn!(error = %Chain(&error), "remembering a network as known to an account failed");
        }
    }
}

/// Gives an attempt taken from a password-check budget back; a failure only leaves it
/// spent, and is logged.
async fn give_back(app: &App, key: &str, limit: Limit) {
    if let Err(error) = app.store.give_back(key, limit, app.clock.now()).await {
        tracing::warn!(error = %Chain(&error), "giving back a password check failed");
    }
}

/// Counts one event of `subject` against `rule`'s budget.
async fn admit(app: &App, rule: Rule, subject: &str, limit: Limit) -> Result<(), AuthError> {
    let now = app.clock.now();
    let verdict = app.store.admit(&rate_key(rule.prefix(), subject, limit), limit, now).await?;
    if verdict.allowed {
        Ok(())
    } else {
        Err(refused(rule, limit.max, verdict.retry_at, now))
    }
}

/// Counts a request from a client address against `rule`'s budget.
pub async fn per_address(app: &App, rule: Rule, address: Option<&str>) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    // A request without an address (never through API Gateway) shares one budget.
    let network = network(address.unwrap_or("unknown"));
    admit(app, rule, &subject(app, &network).await?, throttling.limit(rule)).await
}

/// What one client controls of its address, and so what a per-address budget counts: an
/// IPv4 address whole, an IPv6 address by its /64 (one subscriber's prefix, whose other
/// half a client changes at will), an IPv4-mapped IPv6 address as the IPv4 address;
/// anything else as given.
fn network(address: &str) -> String {
    use std::net::IpAddr;
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => address.to_owned(),
    }
}

/// Counts an account-management request of the account.
pub async fn per_account(app: &App, user_id: &str) -> Result<(), AuthError> {
    per_account_under(app, Rule::AccountManagement, user_id).await
}

/// Counts one event of the account under `rule`'s limit (a per-account rule).
pub async fn per_account_under(app: &App, rule: Rule, user_id: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    admit(app, rule, &subject(app, user_id).await?, throttling.limit(rule)).await
}

/// One password check, reserved from the budgets before any hashing; see
/// [`reserve_password_check`].
#[must_use = "settle the reservation with the outcome of the check"]
pub struct PasswordCheck {
    /// The subjects; `None` when throttling is off.
    pair: Option<Pair>,
    /// The check took an attempt from the account-wide budget (the network is not known).
    account_wide: bool,
    /// This check took the last attempt of the account at this network: failing it locks
    /// the account there.
    last: bool,
}

/// Takes one attempt from the budgets of password checks of the account (known or not)
/// before any hashing: at most `N` checks per window from one network whatever the
/// concurrency, and, from networks the account does not know, at most the account-wide
/// budget from all of them together. Refused while the account is locked at this network
/// or, for a network it does not know, while the account-wide budget is spent.
pub async fn reserve_password_check(
    app: &App,
    email_normalised: &str,
    address: Option<&str>,
) -> Result<PasswordCheck, AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(PasswordCheck { pair: None, account_wide: false, last: false });
    };
    let now = app.clock.now();
    let pair = Pair::of(app, email_normalised, address).await?;
    let limit = throttling.account_failures;
    if let Some(until) = app.store.blocked_until(&lock_key(&pair.pair), now).await? {
        return Err(refused(Rule::AccountFailures, limit.max, until, now));
    }
    let known = pair.is_known(app).await?;
    if !known {
        let all = throttling.account_failures_all;
        let verdict = app.store.admit(&pair.all_failures_key(all), all, now).await?;
        if !verdict.allowed {
            return Err(refused(Rule::AccountFailures, all.max, verdict.retry_at, now));
        }
    }
    let verdict = app.store.admit(&pair.failures_key(limit), limit, now).await?;
    if !verdict.allowed {
        // Not checked: the account-wide attempt (if one was taken) goes back, and only it.
        if !known {
            let all = throttling.account_failures_all;
            give_back(app, &pair.all_failures_key(all), all).await;
        }
        return Err(refused(Rule::AccountFailures, limit.max, verdict.retry_at, now));
    }
    Ok(PasswordCheck { last: verdict.remaining == 0, account_wide: !known, pair: Some(pair) })
}

/// Settles a reserved check. A correct password gives its attempts back and makes the
/// network known to the account; a wrong one keeps them spent, and the one that spent the
/// last attempt at this network locks the account there for one window, twice as long at
/// each further lockout within a day: one lockout per spent budget, however many requests
/// raced into it.
pub async fn settle_password_check(app: &App, check: PasswordCheck, correct: bool) {
    let (Some(throttling), Some(pair)) = (&app.settings.throttling, check.pair) else {
        return;
    };
    let now = app.clock.now();
    let limit = throttling.account_failures;
    // Bookkeeping after the check: a failure here never changes the answer. Not giving an
    // attempt back only spends it; not locking still leaves the budget spent.
    if correct {
        give_back(app, &pair.failures_key(limit), limit).await;
        if check.account_wide {
            let all = throttling.account_failures_all;
            give_back(app, &pair.all_failures_key(all), all).await;
        }
        pair.remember(app).await;
        return;
    }
    if !check.last {
        return;
    }
    let locked = async {
        let strikes = app.store.tally(&strikes_key(&pair.pair), STRIKE_WINDOW, now).await?;
        let doublings = strikes.saturating_sub(1).min(16);
        let lockout = limit.window.saturating_mul(1 << doublings).min(throttling.max_lockout);
        let until = now + chrono::Duration::from_std(lockout).unwrap_or(chrono::Duration::MAX);
        app.store.block(&lock_key(&pair.pair), until).await.map(|()| until)
    };
    match locked.await {
        Ok(until) => {
            metrics::count(Counter::Lockouts);
            tracing::info!(until = %until.to_rfc3339(), "password checks of an account locked at one network")
        }
        Err(error) => tracing::warn!(error = %Chain(&error), "locking an account after its last failed check failed"),
    }
}

/// A password reset by email clears the failures and any lock of the account at the
/// network it came from, and makes that network known: whoever holds the mailbox may log
/// in again at once from there, even while strangers spend the account-wide budget.
pub async fn clear_failures(app: &App, email_normalised: &str, address: Option<&str>) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let pair = Pair::of(app, email_normalised, address).await?;
    app.store.reset(&pair.failures_key(throttling.account_failures)).await?;
    app.store.unblock(&lock_key(&pair.pair)).await?;
    pair.remember(app).await;
    Ok(())
}

/// Whether another reset email may go to this address now (counting it if so): within the
/// budgets of requests from this network, and, from a network the account does not know,
/// within the account-wide budgets too. Requests from other networks never spend the
/// budgets of the owner's own.
pub async fn reset_email_allowed(app: &App, email_normalised: &str, from: Option<&str>) -> Result<bool, AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(true);
    };
    let now = app.clock.now();
    let pair = Pair::of(app, email_normalised, from).await?;
    for (i, limit) in throttling.reset_emails.iter().enumerate() {
        if !app.store.admit(&reset_mail_key(i, &pair.pair, *limit), *limit, now).await?.allowed {
            return Ok(false);
        }
    }
    if pair.is_known(app).await? {
        return Ok(true);
    }
    for (i, limit) in throttling.reset_emails_all.iter().enumerate() {
        if !app.store.admit(&all_reset_mail_key(i, &pair.account, *limit), *limit, now).await?.allowed {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_an_ipv4_one_by_its_address() {
        assert_eq!(network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(network("2001:DB8:1:2:ffff:ffff:ffff:ffff"), network("2001:db8:1:2::9"));
        assert_ne!(network("2001:db8:1:2::1"), network("2001:db8:1:3::1"));
        assert_eq!(network("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(network("198.51.100.7"), "198.51.100.7");
        assert_ne!(network("198.51.100.7"), network("198.51.100.8"));
        assert_eq!(network("unknown"), "unknown");
    }
    use sha2::Digest;

    #[test]
    fn store_keys_stay_byte_for_byte_what_is_stored() {
        let limit = Limit::new(30, 900);
        assert_eq!(
            Rule::ALL.map(|rule| rate_key(rule.prefix(), "s", limit)),
            [
                "failures:30/900:s",
                "address:auth:30/900:s",
                "address:reset:30/900:s",
                "manage:30/900:s",
                "address:service-key:30/900:s",
                "verify-mail:30/900:s",
            ]
        );
        assert_eq!(lock_key("s"), "lock:s");
        assert_eq!(strikes_key("s"), "strikes:s");
        assert_eq!(known_key("s"), "known:s");
        assert_eq!(all_failures_key("s", limit), "failures-all:30/900:s");
        assert_eq!(reset_mail_key(1, "s", Limit::new(5, 3600)), "reset-mail:1:5/3600:s");
        assert_eq!(all_reset_mail_key(1, "s", Limit::new(5, 3600)), "reset-mail-all:1:5/3600:s");
    }

    #[test]
    fn subjects_are_keyed_digests_not_the_values() {
        let subject = keyed(b"secret-one", "a@example.io").unwrap();
        assert_eq!(subject.len(), 64);
        assert!(!subject.contains("example"));
        assert_ne!(subject, hex::encode(Sha256::digest(b"a@example.io")), "not a bare digest anyone can compute");
        assert_ne!(subject, keyed(b"secret-two", "a@example.io").unwrap(), "another secret, another subject");
        assert_eq!(subject, keyed(b"secret-one", "a@example.io").unwrap());
    }
}
