//! The limits throttling enforces, as values and pure arithmetic: a [`Limit`] and the
//! generic cell rate algorithm (GCRA) that keeps it, the [`Rule`]s that refuse requests,
//! and the [`Throttling`] in force. The operations over the store are in
//! [`crate::domain::throttle`].
//!
//! A limit `N/T` is a burst of at most `N` events, refilled at one event every `T/N`. The
//! store keeps one number per subject, the "theoretical arrival time" (TAT), and changes
//! it with atomic conditional writes, so a limit holds under any concurrency and over any
//! window, with no window boundary where a client could spend two budgets back to back.

use crate::domain::named::named_enum;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// At most `max` events at once, refilled at `max` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// The fixed window of length `window` that holds `now`: its index and its end.
pub fn fixed_window(window: Duration, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let width = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
    let index = now.timestamp().div_euclid(width);
    let end = DateTime::from_timestamp(index.saturating_add(1).saturating_mul(width), 0).unwrap_or(now);
    (index, end)
}

/// What one event does to a subject's theoretical arrival time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted: the new TAT to store (epoch milliseconds).
    Admit { tat: i64 },
    /// Refused: nothing changes.
    Refuse,
}

impl Limit {
    pub const fn new(max: u32, window_seconds: u64) -> Self {
        Self { max, window: Duration::from_secs(window_seconds) }
    }

    /// The emission interval `T/N` in milliseconds, rounded up (never more than `N` per `T`).
    pub fn interval_ms(&self) -> i64 {
        let window = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX).max(1);
        let max = i64::from(self.max.max(1));
        (window + max - 1) / max
    }

    /// How far the TAT may run ahead of now after an admitted event: `N` intervals.
    pub fn span_ms(&self) -> i64 {
        self.interval_ms().saturating_mul(i64::from(self.max.max(1)))
    }

    /// The highest TAT at which one more event is still admitted at `now_ms`.
    pub fn admits_up_to(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.span_ms() - self.interval_ms())
    }

    /// GCRA: one event at `now_ms` against the stored TAT.
    pub fn decide(&self, tat: Option<i64>, now_ms: i64) -> Admission {
        match tat {
            Some(tat) if tat > self.admits_up_to(now_ms) => Admission::Refuse,
            Some(tat) if tat > now_ms => Admission::Admit { tat: tat + self.interval_ms() },
            _ => Admission::Admit { tat: now_ms + self.interval_ms() },
        }
    }

    /// The verdict of a decision whose TAT is (now) `tat`.
    pub fn verdict(&self, admitted: bool, tat: i64, now_ms: i64) -> Verdict {
        let ahead = (tat - now_ms).max(0);
        let remaining = (self.span_ms() - ahead) / self.interval_ms();
        let retry_at = if admitted { tat } else { tat - (self.span_ms() - self.interval_ms()) };
        Verdict {
            allowed: admitted,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(0),
            retry_at: DateTime::from_timestamp_millis(retry_at).unwrap_or_default(),
        }
    }
}

/// What a limit said about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the event was within the limit (and counted).
    pub allowed: bool,
    /// Events that could still be admitted right now, after this one.
    pub remaining: u32,
    /// Refused: when one more event will be admitted. Admitted: when the whole burst is
    /// available again.
    pub retry_at: DateTime<Utc>,
}

named_enum! {
    /// Which rule refused a request; each has its own message, and its name is the `Rule`
    /// dimension of the `Throttled` metric.
    pub enum Rule {
        /// Failed password checks per account.
        AccountFailures => "account-failures",
        /// register, login and regenerate-key per client address.
        AuthPerAddress => "auth-per-address",
        /// forgot-password, reset-password and validate-reset-token per client address.
        ResetPerAddress => "reset-per-address",
        /// export-data, delete account and change-password per account.
        AccountManagement => "account-management",
        /// Requests with a missing or wrong service key (verify), per client address.
        ServiceKeyFailures => "service-key-failures",
        /// Verification emails asked for again (resend-verification), per account.
        VerificationEmails => "verification-emails",
    }
}

impl Rule {
    /// What the store keys of the rule's budget start with. Stored data: a changed prefix
    /// would silently give every subject a fresh budget.
    pub const fn prefix(self) -> &'static str {
        match self {
            Rule::AccountFailures => "failures",
            Rule::AuthPerAddress => "address:auth",
            Rule::ResetPerAddress => "address:reset",
            Rule::AccountManagement => "manage",
            Rule::ServiceKeyFailures => "address:service-key",
            Rule::VerificationEmails => "verify-mail",
        }
    }
}

/// The limits in force (`None` in the settings when `THROTTLING=off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttling {
    /// Failed password checks per account; then the account is locked for one window,
    /// twice as long at each further lockout within a day, at most `max_lockout`.
    pub account_failures: Limit,
    /// Failed password checks per account from all the networks it does not know together
    /// (see [`crate::domain::throttle`]); beyond it, only known networks are checked.
    pub account_failures_all: Limit,
    pub max_lockout: Duration,
    /// register, login and regenerate-key per client address.
    pub auth_per_address: Limit,
    /// forgot-password, reset-password and validate-reset-token per client address.
    pub reset_per_address: Limit,
    /// Reset emails per address asked for from one network; every limit must allow a send.
    pub reset_emails: Vec<Limit>,
    /// Reset emails per address asked for from all the networks the account does not know
    /// together: once spent, strangers can no longer replace the newest link with another.
    pub reset_emails_all: Vec<Limit>,
    /// export-data, delete account and change-password per account.
    pub account_management: Limit,
    /// Missing or wrong service keys per client address (verify); correct ones are not counted.
    pub service_key_failures: Limit,
    /// Verification emails asked for again, per account (resend-verification).
    pub verification_emails: Limit,
}

impl Throttling {
    /// The limit `rule` keeps.
    pub fn limit(&self, rule: Rule) -> Limit {
        match rule {
            Rule::AccountFailures => self.account_failures,
            Rule::AuthPerAddress => self.auth_per_address,
            Rule::ResetPerAddress => self.reset_per_address,
            Rule::AccountManagement => self.account_management,
            Rule::ServiceKeyFailures => self.service_key_failures,
            Rule::VerificationEmails => self.verification_emails,
        }
    }
}

impl Default for Throttling {
    fn default() -> Self {
        Self {
            account_failures: Limit::new(10, 15 * 60),
            account_failures_all: Limit::new(50, 3600),
            max_lockout: Duration::from_secs(24 * 3600),
            auth_per_address: Limit::new(30, 15 * 60),
            reset_per_address: Limit::new(20, 15 * 60),
            reset_emails: vec![Limit::new(1, 60), Limit::new(5, 3600)],
            reset_emails_all: vec![Limit::new(5, 3600)],
            account_management: Limit::new(10, 3600),
            service_key_failures: Limit::new(10, 15 * 60),
            verification_emails: Limit::new(3, 3600),
        }
    }
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

    fn ms(t: DateTime<Utc>) -> i64 {
        t.timestamp_millis()
    }

    /// Applies events at the given times; answers which were admitted.
    fn run(limit: Limit, times: &[DateTime<Utc>]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|t| match limit.decide(tat, ms(*t)) {
                Admission::Admit { tat: new } => {
                    tat = Some(new);
                    true
                }
                Admission::Refuse => false,
            })
            .collect()
    }

    #[test]
    fn a_burst_is_admitted_up_to_the_limit_and_no_further() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        let admitted = run(Limit::new(10, 900), &[t; 30]);
        assert_eq!(admitted.iter().filter(|a| **a).count(), 10);
        assert!(admitted[..10].iter().all(|a| *a), "the first ten, then none");
    }

    #[test]
    fn a_window_boundary_gives_no_second_budget() {
        // One reset email a minute: 10:00:59.5 and 10:01:00.5 lie in two fixed windows,
        // but one second apart.
        let limit = Limit::new(1, 60);
        let before = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 59).unwrap() + chrono::Duration::milliseconds(500);
        let after = before + chrono::Duration::seconds(1);
        assert_eq!(run(limit, &[before, after]), [true, false]);
        assert_eq!(run(limit, &[before, before + chrono::Duration::seconds(60)]), [true, true]);
        // Five an hour: five at the end of one hour and five at the start of the next
        // are not ten in two minutes.
        let limit = Limit::new(5, 3600);
        let end = Utc.with_ymd_and_hms(2026, 11, 26, 10, 59, 30).unwrap();
        let mut times = vec![end; 5];
        times.extend([end + chrono::Duration::seconds(60); 5]);
        assert_eq!(run(limit, &times).iter().filter(|a| **a).count(), 5);
    }

    #[test]
    fn the_budget_refills_at_its_rate() {
        let limit = Limit::new(10, 900);
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        let mut times = vec![t; 10];
        times.push(t + chrono::Duration::seconds(89));
        times.push(t + chrono::Duration::seconds(90));
        times.push(t + chrono::Duration::seconds(90));
        assert_eq!(&run(limit, &times)[10..], [false, true, false], "one more every 90 s");
    }

    #[test]
    fn verdicts_say_what_remains_and_when_to_retry() {
        let limit = Limit::new(3, 60);
        let now = 1_000_000;
        let Admission::Admit { tat } = limit.decide(None, now) else { panic!("admitted") };
        assert_eq!(limit.verdict(true, tat, now).remaining, 2);
        let Admission::Admit { tat } = limit.decide(Some(tat), now) else { panic!("admitted") };
        let Admission::Admit { tat } = limit.decide(Some(tat), now) else { panic!("admitted") };
        assert_eq!(limit.verdict(true, tat, now).remaining, 0);
        assert_eq!(limit.decide(Some(tat), now), Admission::Refuse);
        let refused = limit.verdict(false, tat, now);
        assert_eq!(ms(refused.retry_at) - now, 20_000, "one interval until the next is admitted");
        assert_eq!(limit.decide(Some(tat), ms(refused.retry_at)), Admission::Admit { tat: tat + 20_000 });
    }

    #[test]
    fn limits_parse_from_the_environment_form() {
        assert_eq!(parse_limits("10/900"), Some(vec![Limit::new(10, 900)]));
        assert_eq!(parse_limits(" 1/60 , 5/3600"), Some(vec![Limit::new(1, 60), Limit::new(5, 3600)]));
        for bad in ["", "10", "0/60", "10/0", "ten/60", "1/60,"] {
            assert_eq!(parse_limits(bad), None, "{bad:?}");
        }
    }
}
