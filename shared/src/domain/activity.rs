//! The security log. Every security event ([`Activity`]) is written twice:
//!
//! - for operators, as one log line with `audit = true` (JSON in the function's log group:
//!   the account id, never the email; the request id, client address and user agent;
//!   the outcome), always, before anything else;
//! - for the owner, in the account's log in the store ([`crate::domain::ports::ActivityLog`]),
//!   kept [`crate::domain::audit::RETENTION`], read by `GET /auth/activity`, exported and
//!   deleted with the account.
//!
//! Writing the owner's copy is best effort: it runs after the operation has committed,
//! and its failure is logged (with its cause, and the operator line already written) but
//! never turns a done operation into an error, which a client would retry: a second key
//! regenerated, a second scoped key created.

use crate::domain::app::App;
use crate::domain::audit::{Activity, Event, MAX_EXPORTED, RECENT};
use crate::domain::email::normalise;
use crate::domain::error::{AuthError, Chain};
use crate::domain::limits::Rule;
use crate::domain::model::User;

/// Records an event about the account itself.
pub async fn record(app: &App, user_id: &str, kind: Activity) {
    record_about(app, user_id, kind, None).await;
}

/// Records an event about something of the account (`subject`: a scoped key's id).
pub async fn record_about(app: &App, user_id: &str, kind: Activity, subject: Option<&str>) {
    let event = Event::new(user_id, kind, subject, app.clock.now());
    log(&event, Some(user_id));
    if kind.for_owner() {
        append(app, &event).await;
    }
}

/// Records the outcome of a password check by email (login, regenerate-key): a wrong
/// password or a locked account in the log of the account the email names, `success`
/// when the password was right; and answers the check's result unchanged.
///
/// A check for an email without an account writes its event all the same, into a log
/// that no account reads (it expires like any other): the store write takes the same
/// time whether the account exists, so the answer's timing does not tell.
pub async fn checked(
    app: &App,
    email: &str,
    success: Option<Activity>,
    result: Result<User, AuthError>,
) -> Result<User, AuthError> {
    let kind = match &result {
        Ok(user) => {
            if let Some(kind) = success {
                record(app, &user.id, kind).await;
            }
            return result;
        }
        Err(AuthError::InvalidCredentials) => Activity::LoginFailed,
        Err(AuthError::RateLimited { rule: Rule::AccountFailures, .. }) => Activity::LoginLocked,
        Err(_) => return result,
    };
    match app.store.user_by_email(&normalise(email)).await {
        Ok(Some(user)) => record(app, &user.id, kind).await,
        Ok(None) => {
            let event = Event::new(&nobody(), kind, None, app.clock.now());
            log(&event, None);
            append(app, &event).await;
        }
        Err(error) => {
            let event = Event::new("", kind, None, app.clock.now());
            log(&event, None);
            tracing::error!(event = kind.name(), error = %Chain(&error), "finding the account of a failed password check failed; its owner's log misses the event");
        }
    }
    result
}

/// The operator's line of a deleted account, and its owner's log deleted again: an event
/// recorded between the deletion of the log (before the account's last step) and the
/// account's would otherwise outlive it (by its TTL at most).
pub async fn account_deleted(app: &App, user_id: &str) {
    record(app, user_id, Activity::AccountDeleted).await;
    if let Err(error) = forget(app, user_id).await {
        tracing::error!(%user_id, error = %Chain(&error), "deleting the security events of a deleted account again failed; they expire with their TTL");
    }
}

/// Writes the operator's line of an event that only operators get, where no store call
/// may be added (the authorizer's hot path): `LegacyKeyUsed`.
pub fn note(user_id: &str, kind: Activity, at: chrono::DateTime<chrono::Utc>) {
    log(&Event::new(user_id, kind, None, at), Some(user_id));
}

/// The account's newest events, at most [`RECENT`], newest first.
pub async fn recent(app: &App, user_id: &str) -> Result<Vec<Event>, AuthError> {
    Ok(app.store.activity(user_id, RECENT, app.clock.now()).await?)
}

/// The account's events for its data export, at most [`MAX_EXPORTED`], newest first.
pub async fn exported(app: &App, user_id: &str) -> Result<Vec<Event>, AuthError> {
    Ok(app.store.activity(user_id, MAX_EXPORTED, app.clock.now()).await?)
}

/// Deletes the account's log (account deletion).
pub async fn forget(app: &App, user_id: &str) -> Result<(), AuthError> {
    Ok(app.store.delete_activity(user_id).await?)
}

/// The log of the failed password checks of emails without an account: one of 256, so
/// that no single partition takes every such write.
fn nobody() -> String {
    format!("nobody-{:02x}", rand::random::<u8>())
}

/// The operator's line: every field of the event, the account by id alone.
fn log(event: &Event, user_id: Option<&str>) {
    let origin = &event.origin;
    tracing::info!(
        audit = true,
        event = event.kind.name(),
        outcome = event.kind.outcome(),
        user_id,
        subject = event.subject.as_deref(),
        request_id = origin.request_id.as_deref(),
        address = origin.address.as_deref(),
        user_agent = origin.user_agent.as_deref(),
        at = %event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "security event"
    );
}

async fn append(app: &App, event: &Event) {
    if let Err(error) = app.store.append_activity(event).await {
        tracing::error!(
            event = event.kind.name(),
            request_id = event.origin.request_id.as_deref(),
            error = %Chain(&error),
            "writing a security event to the owner's log failed; the operation stands"
        );
    }
}
