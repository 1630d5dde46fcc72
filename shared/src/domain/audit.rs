//! Security events: what happened to an account, when, and from where (see
//! [`crate::domain::activity`] for where they go). Values only: the kinds, one event, and
//! the origin of the request an event is recorded in.

use crate::domain::named::named_enum;
use chrono::{DateTime, SubsecRound, Utc};
use std::future::Future;

/// How long an account's events are kept for its owner (the store's TTL, and the reads
/// leave out what is older).
pub const RETENTION: chrono::Duration = chrono::Duration::days(90);
/// How many of the newest events `GET /auth/activity` and the account page show.
pub const RECENT: usize = 50;
/// The most events `export-data` includes, newest first (an account under a password
/// guessing attack for 90 days could otherwise hold more than one answer can carry).
pub const MAX_EXPORTED: usize = 1000;
/// The longest user agent kept, in characters (the rest is cut off).
pub const MAX_USER_AGENT_CHARS: usize = 256;

named_enum! {
    /// A kind of security event; its name is the `event` of the log line and of the
    /// owner's list.
    pub enum Activity {
        LoginSucceeded => "login-succeeded",
        /// A wrong password for the account's email (login or regenerate-key).
        LoginFailed => "login-failed",
        /// A password check refused because the account's budget of failures is spent.
        LoginLocked => "login-locked",
        PasswordChanged => "password-changed",
        ResetRequested => "reset-requested",
        ResetCompleted => "reset-completed",
        MasterKeyRegenerated => "master-key-regenerated",
        ScopedKeyCreated => "scoped-key-created",
        ScopedKeyChanged => "scoped-key-changed",
        ScopedKeyDeleted => "scoped-key-deleted",
        /// Operators only: the owner's log goes with the account.
        AccountDeleted => "account-deleted",
        AccountImported => "account-imported",
        /// Operators only: the authorizer's hot path makes no extra store call.
        LegacyKeyUsed => "legacy-key-used",
    }
}

impl Activity {
    /// `success` or `failure`: whether what was tried was done.
    pub const fn outcome(self) -> &'static str {
        match self {
            Activity::LoginFailed | Activity::LoginLocked => "failure",
            _ => "success",
        }
    }

    /// Whether the owner's log keeps it (see the variants' notes).
    pub const fn for_owner(self) -> bool {
        !matches!(self, Activity::AccountDeleted | Activity::LegacyKeyUsed)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Where a request came from, as API Gateway saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

impl Origin {
    /// Runs `work` as the handling of a request from this origin: every event recorded
    /// in it carries the origin (the HTTP layer sets it once per request, so that the
    /// operations need no extra parameter).
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        ORIGIN.scope(self, work).await
    }

    /// The origin of the request being handled; empty outside one (the importer).
    pub fn current() -> Origin {
        ORIGIN.try_with(Origin::clone).unwrap_or_default()
    }

    /// Cuts the user agent to [`MAX_USER_AGENT_CHARS`].
    pub fn with_user_agent(mut self, user_agent: Option<&str>) -> Self {
        self.user_agent = user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect());
        self
    }
}

/// One security fact about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub user_id: String,
    pub at: DateTime<Utc>,
    /// Makes the event's place in its account's log unique (events of one instant).
    pub id: String,
    pub kind: Activity,
    /// What it was done to, where that is not the account itself (a scoped key's id).
    pub subject: Option<String>,
    pub origin: Origin,
}

impl Event {
    /// An event at `at`, to the microsecond (what the store keeps).
    pub fn new(user_id: &str, kind: Activity, subject: Option<&str>, at: DateTime<Utc>) -> Self {
        Self {
            user_id: user_id.to_owned(),
            at: at.trunc_subsecs(6),
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind,
            subject: subject.map(str::to_owned),
            origin: Origin::current(),
        }
    }

    /// When the store may drop it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.at + RETENTION
    }

    /// Its place in the account's log: ordered by time as text (fixed-width UTC with
    /// microseconds), unique by its id.
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sort_keys_order_events_by_time() {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 59, 59).single().unwrap();
        let earlier = Event::new("u", Activity::LoginFailed, None, at);
        let later = Event::new("u", Activity::LoginFailed, None, at + chrono::Duration::microseconds(1));
        let much_later = Event::new("u", Activity::LoginFailed, None, at + chrono::Duration::days(400));
        assert!(earlier.sort_key() < later.sort_key());
        assert!(later.sort_key() < much_later.sort_key());
    }

    #[test]
    fn names_read_back_and_only_login_failures_are_failures() {
        for kind in Activity::ALL {
            assert_eq!(Activity::from_name(kind.name()), Some(kind));
        }
        let failures: Vec<_> = Activity::ALL.into_iter().filter(|k| k.outcome() == "failure").collect();
        assert_eq!(failures, [Activity::LoginFailed, Activity::LoginLocked]);
    }

    #[tokio::test]
    async fn an_event_carries_the_origin_of_the_request_it_is_recorded_in() {
        let origin = Origin { request_id: Some("r-1".into()), address: Some("203.0.113.9".into()), user_agent: None }
            .with_user_agent(Some(&"x".repeat(MAX_USER_AGENT_CHARS + 9)));
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 9, 59, 59).single().unwrap();
        let event = origin.clone().scope(async { Event::new("u", Activity::PasswordChanged, None, at) }).await;
        assert_eq!(event.origin, origin);
        assert_eq!(event.origin.user_agent.map(|ua| ua.chars().count()), Some(MAX_USER_AGENT_CHARS));
        assert_eq!(Event::new("u", Activity::PasswordChanged, None, at).origin, Origin::default());
    }
}
