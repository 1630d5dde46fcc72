//! Throttling shared by every instance of every function: rate limits and blocks kept by
//! the store, so a fleet of Lambda instances sees one count. The limits themselves and
//! their arithmetic (GCRA) are [`crate::domain::limits`].
//!
//! Per-account rules key on the normalised email, also for emails that have no account,
//! so that throttling reveals nothing about which accounts exist. Every subject (email,
//! client address, account id) is stored only as an HMAC under a secret the store keeps,
//! so neither an address (a few billion to try) nor an email (a list to try) can be
//! recovered from the throttle table.

use crate::domain::app::App;
use crate::domain::error::{AuthError, Chain};
use crate::domain::limits::{Limit, Rule};
use crate::domain::metrics::{self, Counter};
use chrono::{DateTime, Utc};
use sha2::Sha256;
use std::time::Duration;

/// Lockouts are counted per day: each one within a day lasts twice as long as the last.
const STRIKE_WINDOW: Duration = Duration::from_secs(24 * 3600);

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

/// The key of an account's lock, once its budget of password checks is spent.
fn lock_key(account: &str) -> String {
    format!("lock:{account}")
}

/// The key of an account's lockouts of the day.
fn strikes_key(account: &str) -> String {
    format!("strikes:{account}")
}

/// The key of the `n`th budget of reset emails of an address.
fn reset_mail_key(n: usize, address: &str, limit: Limit) -> String {
    rate_key(&format!("reset-mail:{n}"), address, limit)
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

/// One password check, reserved from the account's budget before any hashing; see
/// [`reserve_password_check`].
#[must_use = "settle the reservation with the outcome of the check"]
pub struct PasswordCheck {
    /// The account's subject; `None` when throttling is off.
    account: Option<String>,
    /// This check took the budget's last attempt: failing it locks the account.
    last: bool,
}

/// Takes one attempt from the account's (known or not) budget of password checks, before
/// any hashing: at most `N` checks per window whatever the concurrency. Refused while the
/// account is locked or its budget is spent.
pub async fn reserve_password_check(app: &App, email_normalised: &str) -> Result<PasswordCheck, AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(PasswordCheck { account: None, last: false });
    };
    let now = app.clock.now();
    let account = subject(app, email_normalised).await?;
    let limit = throttling.account_failures;
    if let Some(until) = app.store.blocked_until(&lock_key(&account), now).await? {
        return Err(refused(Rule::AccountFailures, limit.max, until, now));
    }
    let verdict = app.store.admit(&rate_key(Rule::AccountFailures.prefix(), &account, limit), limit, now).await?;
    if !verdict.allowed {
        return Err(refused(Rule::AccountFailures, limit.max, verdict.retry_at, now));
    }
    Ok(PasswordCheck { account: Some(account), last: verdict.remaining == 0 })
}

/// Settles a reserved check. A correct password gives its attempt back; a wrong one keeps
/// it spent, and the one that spent the budget's last attempt locks the account for one
/// window, twice as long at each further lockout within a day: one lockout per spent
/// budget, however many requests raced into it.
pub async fn settle_password_check(app: &App, check: PasswordCheck, correct: bool) {
    let (Some(throttling), Some(account)) = (&app.settings.throttling, check.account) else {
        return;
    };
    let now = app.clock.now();
    let limit = throttling.account_failures;
    // Bookkeeping after the check: a failure here never changes the answer. Not giving an
    // attempt back only spends it; not locking still leaves the budget spent.
    if correct {
        if let Err(error) =
            app.store.give_back(&rate_key(Rule::AccountFailures.prefix(), &account, limit), limit, now).await
        {
            tracing::warn!(error = %Chain(&error), "giving back a password check failed");
        }
        return;
    }
    if !check.last {
        return;
    }
    let locked = async {
        let strikes = app.store.tally(&strikes_key(&account), STRIKE_WINDOW, now).await?;
        let doublings = strikes.saturating_sub(1).min(16);
        let lockout = limit.window.saturating_mul(1 << doublings).min(throttling.max_lockout);
        let until = now + chrono::Duration::from_std(lockout).unwrap_or(chrono::Duration::MAX);
        app.store.block(&lock_key(&account), until).await.map(|()| until)
    };
    match locked.await {
        Ok(until) => {
            metrics::count(Counter::Lockouts);
            tracing::info!(until = %until.to_rfc3339(), "password checks of an account locked")
        }
        Err(error) => tracing::warn!(error = %Chain(&error), "locking an account after its last failed check failed"),
    }
}

/// A password reset by email clears the failures and any lock: whoever holds the mailbox
/// may log in again at once.
pub async fn clear_failures(app: &App, email_normalised: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let account = subject(app, email_normalised).await?;
    app.store.reset(&rate_key(Rule::AccountFailures.prefix(), &account, throttling.account_failures)).await?;
    app.store.unblock(&lock_key(&account)).await?;
    Ok(())
}

/// Whether another reset email may go to this address now (counting it if so).
pub async fn reset_email_allowed(app: &App, email_normalised: &str) -> Result<bool, AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(true);
    };
    let now = app.clock.now();
    let address = subject(app, email_normalised).await?;
    for (i, limit) in throttling.reset_emails.iter().enumerate() {
        if !app.store.admit(&reset_mail_key(i, &address, *limit), *limit, now).await?.allowed {
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
        assert_eq!(reset_mail_key(1, "s", Limit::new(5, 3600)), "reset-mail:1:5/3600:s");
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
