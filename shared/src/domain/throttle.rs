//! Throttling shared by every instance of every function: fixed-window counters and
//! blocks kept by the store, so a fleet of Lambda instances sees one count.
//!
//! Per-account rules key on a digest of the normalised email, also for emails that have
//! no account, so that throttling reveals nothing about which accounts exist.

use crate::app::App;
use crate::domain::error::AuthError;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// At most `max` events per fixed `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub const fn new(max: u32, window_seconds: u64) -> Self {
        Self { max, window: Duration::from_secs(window_seconds) }
    }

    /// The window that holds `now`: its index and its end.
    pub fn window_at(&self, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
        let width = i64::try_from(self.window.as_secs().max(1)).unwrap_or(i64::MAX);
        let index = now.timestamp().div_euclid(width);
        let end = DateTime::from_timestamp(index.saturating_add(1).saturating_mul(width), 0).unwrap_or(now);
        (index, end)
    }
}

/// What a counter said about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the event was within the limit (and counted).
    pub allowed: bool,
    /// Events counted in the current window, this one included when allowed.
    pub count: u32,
    pub reset_at: DateTime<Utc>,
}

/// Which rule refused a request; each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    AccountFailures,
    AuthPerAddress,
    ResetPerAddress,
    AccountManagement,
}

/// The limits in force; `None` in [`crate::config::Settings`] when `THROTTLING=off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttling {
    /// Failed password checks per account; then the account is locked for one window,
    /// twice as long at each further lockout within a day, at most `max_lockout`.
    pub account_failures: Limit,
    pub max_lockout: Duration,
    /// register, login and regenerate-key per client address.
    pub auth_per_address: Limit,
    /// forgot-password, reset-password and validate-reset-token per client address.
    pub reset_per_address: Limit,
    /// Reset emails per address; every limit must allow a send.
    pub reset_emails: Vec<Limit>,
    /// export-data, delete account and change-password per account.
    pub account_management: Limit,
}

impl Default for Throttling {
    fn default() -> Self {
        Self {
            account_failures: Limit::new(10, 15 * 60),
            max_lockout: Duration::from_secs(24 * 3600),
            auth_per_address: Limit::new(30, 15 * 60),
            reset_per_address: Limit::new(20, 15 * 60),
            reset_emails: vec![Limit::new(1, 60), Limit::new(5, 3600)],
            account_management: Limit::new(10, 3600),
        }
    }
}

const STRIKE_WINDOW: Limit = Limit::new(u32::MAX, 24 * 3600);

fn subject(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn refused(rule: Rule, limit: u32, until: DateTime<Utc>, now: DateTime<Utc>) -> AuthError {
    // Whole seconds, rounded up: a client that waits this long is not refused again.
    let millis = u64::try_from((until - now).num_milliseconds()).unwrap_or(0);
    let retry_after = millis.div_ceil(1000).max(1);
    AuthError::RateLimited { rule, limit, retry_after }
}

async fn count(app: &App, rule: Rule, key: String, limit: Limit) -> Result<(), AuthError> {
    let now = app.clock.now();
    let verdict = app.store.hit(&key, limit, now).await?;
    if verdict.allowed {
        Ok(())
    } else {
        Err(refused(rule, limit.max, verdict.reset_at, now))
    }
}

/// Counts a request from a client address against `rule`'s budget.
pub async fn per_address(app: &App, rule: Rule, address: Option<&str>) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let limit = match rule {
        Rule::ResetPerAddress => throttling.reset_per_address,
        _ => throttling.auth_per_address,
    };
    // A request without an address (never through API Gateway) shares one budget.
    let address = address.unwrap_or("unknown");
    count(app, rule, format!("address:{rule:?}:{}", subject(address)), limit).await
}

/// Counts an account-management request of the account.
pub async fn per_account(app: &App, user_id: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    count(app, Rule::AccountManagement, format!("manage:{}", subject(user_id)), throttling.account_management).await
}

/// Refuses a password check while the account (known or not) is locked.
pub async fn check_not_locked(app: &App, email_normalised: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let now = app.clock.now();
    match app.store.blocked_until(&format!("lock:{}", subject(email_normalised)), now).await? {
        Some(until) => Err(refused(Rule::AccountFailures, throttling.account_failures.max, until, now)),
        None => Ok(()),
    }
}

/// Counts a failed password check; the last one the budget allows locks the account.
pub async fn record_failure(app: &App, email_normalised: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let now = app.clock.now();
    let account = subject(email_normalised);
    let limit = throttling.account_failures;
    let failures = app.store.hit(&format!("failures:{account}"), limit, now).await?;
    if failures.allowed && failures.count < limit.max {
        return Ok(());
    }
    let strikes = app.store.hit(&format!("strikes:{account}"), STRIKE_WINDOW, now).await?;
    let doublings = strikes.count.saturating_sub(1).min(16);
    let lockout = limit.window.saturating_mul(1 << doublings).min(throttling.max_lockout);
    let until = now + chrono::Duration::from_std(lockout).unwrap_or(chrono::Duration::MAX);
    app.store.block(&format!("lock:{account}"), until).await?;
    // A fresh budget once the lock is over.
    app.store.reset(&format!("failures:{account}"), limit, now).await?;
    Ok(())
}

/// A correct password (or a reset by email) clears the failures and any lock.
pub async fn clear_failures(app: &App, email_normalised: &str) -> Result<(), AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(());
    };
    let now = app.clock.now();
    let account = subject(email_normalised);
    app.store.reset(&format!("failures:{account}"), throttling.account_failures, now).await?;
    app.store.unblock(&format!("lock:{account}")).await?;
    Ok(())
}

/// Whether another reset email may go to this address now (counting it if so).
pub async fn reset_email_allowed(app: &App, email_normalised: &str) -> Result<bool, AuthError> {
    let Some(throttling) = &app.settings.throttling else {
        return Ok(true);
    };
    let now = app.clock.now();
    let address = subject(email_normalised);
    for (i, limit) in throttling.reset_emails.iter().enumerate() {
        if !app.store.hit(&format!("reset-mail:{i}:{address}"), *limit, now).await?.allowed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Parses `N/SECONDS` limits, comma-separated (`1/60,5/3600`).
pub fn parse_limits(text: &str) -> Option<Vec<Limit>> {
    text.split(',')
        .map(|part| {
            let (max, seconds) = part.trim().split_once('/')?;
            let (max, seconds) = (max.trim().parse().ok()?, seconds.trim().parse().ok()?);
            (max > 0 && seconds > 0).then_some(Limit::new(max, seconds))
        })
        .collect::<Option<Vec<_>>>()
        .filter(|limits| !limits.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_are_fixed_and_end_on_their_boundary() {
        let limit = Limit::new(3, 60);
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 59).unwrap();
        let (index, end) = limit.window_at(t);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 11, 26, 10, 1, 0).unwrap());
        let (next, _) = limit.window_at(end);
        assert_eq!(next, index + 1);
    }

    #[test]
    fn limits_parse_from_the_environment_form() {
        assert_eq!(parse_limits("10/900"), Some(vec![Limit::new(10, 900)]));
        assert_eq!(parse_limits(" 1/60 , 5/3600"), Some(vec![Limit::new(1, 60), Limit::new(5, 3600)]));
        for bad in ["", "10", "0/60", "10/0", "ten/60", "1/60,"] {
            assert_eq!(parse_limits(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn subjects_are_digests_not_the_values() {
        assert_eq!(subject("a@example.io").len(), 64);
        assert!(!subject("a@example.io").contains("example"));
    }
}
