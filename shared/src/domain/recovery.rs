//! Password recovery by email: forgot-password, reset-password, validate-reset-token.

use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::audit::Activity;
use crate::domain::email::normalise;
use crate::domain::error::{AuthError, PortError};
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::limits::Rule;
use crate::domain::metrics::{self, Counter};
use crate::domain::model::User;
use crate::domain::throttle;
use crate::domain::token::{self, Purpose, ResetToken, StoredResetToken};
use crate::domain::{accounts, notify, password, with_current_user};
use std::future::Future;
use std::time::Duration;

/// Issues a token and mails the link when the account exists; does nothing visible
/// otherwise. Always succeeds: every failure is logged, none is answered, and both paths
/// take at least `reset_response_floor`, so neither the answer nor its timing tells
/// whether the account exists.
///
/// Only the per-address throttle is answered (429); the per-email budget of reset emails
/// (counted alike for addresses with and without an account) silently sends nothing.
///
/// `key_leaked`: the owner thinks a key leaked; the link then opens the reset page with
/// "replace every key" ticked.
pub async fn forgot_password(app: &App, email: &str, key_leaked: bool, address: Option<&str>) -> Result<(), AuthError> {
    throttle::per_address(app, Rule::ResetPerAddress, address).await?;
    match at_the_floor(app.settings.reset_response_floor, send_reset_link(app, email, key_leaked, address)).await {
        Some(Ok(())) => {}
        Some(Err(error)) => tracing::error!(error = %crate::domain::error::Chain(&error), "forgot-password failed"),
        // SES retrying, a slow table: the answer must not come later for a known account.
        None => tracing::error!("forgot-password did not finish within the response floor and was abandoned"),
    }
    Ok(())
}

async fn send_reset_link(app: &App, email: &str, key_leaked: bool, address: Option<&str>) -> Result<(), AuthError> {
    let Some(reset_page) = &app.settings.reset_url else {
        return Err(PortError::Other("no reset page (RESET_URL) is configured for this function".into()).into());
    };
    let normalised = normalise(email);
    if !throttle::reset_email_allowed(app, &normalised, address).await? {
        metrics::count(Counter::ResetEmailsSuppressed);
        tracing::info!("reset email budget of the address spent; nothing sent");
        return Ok(());
    }
    let Some(first) = app.store.user_by_email(&normalised).await? else {
        return Ok(());
    };
    let token = ResetToken::generate();
    let (normalised, token_ref) = (&normalised, &token);
    let user = with_current_user(
        first,
        || async move {
            let user = app.store.user_by_email(normalised).await?;
            user.ok_or_else(|| AuthError::from(PortError::Other("account deleted meanwhile".into())))
        },
        |user| async move {
            let stored = StoredResetToken::issue(token_ref, &user.id, app.clock.now());
            app.store.issue_reset_token(&user, &stored).await.map(|()| user)
        },
    )
    .await?;
    let link = notify::reset_link(reset_page, token.expose(), key_leaked);
    tracing::info!(user_id = %user.id, "password reset token issued");
    activity::record(app, &user.id, Activity::ResetRequested).await;
    if notify::send_logged(app, notify::reset_email(&user.email, &link), "password-reset").await {
        metrics::count(Counter::ResetEmailsSent);
    }
    Ok(())
}

/// Sets a new password with a live token, using the token up. The password rules are
/// checked before the token. With `revoke_keys` (the owner thinks a key leaked), the same
/// write also replaces the master key, so that it and every scoped key of the account stop
/// working at once; the new master key is answered. Nothing but the mailbox is needed, so
/// no lockout and no stranger's requests can stand in the way.
pub async fn reset_password(
    app: &App,
    presented: &str,
    new_password: &str,
    revoke_keys: bool,
    address: Option<&str>,
) -> Result<Option<ApiKey>, AuthError> {
    throttle::per_address(app, Rule::ResetPerAddress, address).await?;
    password::check_rules(new_password)?;
    let (stored, user) = live_token(app, presented).await?.ok_or(AuthError::InvalidResetToken)?;
    // The reset of an unverified account is a takeover by the mailbox's owner: whoever
    // registered the email may have been someone else, so every key they made stops.
    let revoke_keys = revoke_keys || !user.email_verified;
    let new_hash = password::hash_on_pool(app, new_password).await?;
    let now = app.clock.now();
    let new_key = match revoke_keys {
        true => {
            let key = ApiKey::generate(KeyKind::Master);
            let sealed = accounts::seal_master_key(app, &user.id, &key, now).await?;
            Some((key, sealed))
        }
        false => None,
    };
    // The reset proves control of the email: an unverified account becomes verified.
    match app.store.redeem_reset_token(&stored, &user, &new_hash, now, new_key.as_ref().map(|(_, sealed)| sealed)).await
    {
        Ok(()) => {}
        // Used meanwhile, superseded, or the master key changed since it was read.
        Err(PortError::Conflict) => return Err(AuthError::InvalidResetToken),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user_id = %user.id, keys_revoked = revoke_keys, "password reset with a token");
    activity::record(app, &user.id, Activity::ResetCompleted).await;
    if revoke_keys {
        activity::record(app, &user.id, Activity::MasterKeyRegenerated).await;
    }
    // The reset has committed: what follows is best effort and never changes the answer.
    // Whoever holds the mailbox may log in again at once, even after a lockout.
    if let Err(error) = throttle::clear_failures(app, &user.email_normalised, address).await {
        tracing::warn!(user_id = %user.id, error = %crate::domain::error::Chain(&error), "clearing the password-check throttle after a reset failed");
    }
    if revoke_keys {
        accounts::retire_scoped_keys(app, &user.id, user.key_generation + 1).await;
    }
    notify::send_logged(app, notify::password_changed_email(&user.email), "password-changed").await;
    Ok(new_key.map(|(key, _)| key))
}

/// Whether a token could be redeemed now. Never consumes it.
pub async fn validate_reset_token(app: &App, presented: &str, address: Option<&str>) -> Result<bool, AuthError> {
    throttle::per_address(app, Rule::ResetPerAddress, address).await?;
    Ok(live_token(app, presented).await?.is_some())
}

/// The stored token and its account when the token is known, unexpired, and still the
/// account's current one (not superseded, not voided by a password change).
async fn live_token(app: &App, presented: &str) -> Result<Option<(StoredResetToken, User)>, AuthError> {
    if presented.is_empty() || presented.len() > token::MAX_PRESENTED_LEN {
        return Ok(None);
    }
    let digest = token::digest(presented);
    let Some(stored) = app.store.reset_token(&digest).await? else {
        return Ok(None);
    };
    if stored.purpose != Purpose::Reset || !stored.is_live(app.clock.now()) {
        return Ok(None);
    }
    let user = app.store.user(&stored.user_id).await?;
    Ok(user.filter(|u| u.reset_token_digest.as_deref() == Some(digest.as_str())).map(|u| (stored, u)))
}

/// Runs `work` and answers exactly `floor` after it started: its output if it finished by
/// then, `None` (the work abandoned) if not, so that the time of the answer says nothing
/// about what the work found. A zero floor runs the work to its end.
pub async fn at_the_floor<T>(floor: Duration, work: impl Future<Output = T>) -> Option<T> {
    if floor.is_zero() {
        return Some(work.await);
    }
    let deadline = tokio::time::Instant::now() + floor;
    let out = tokio::time::timeout_at(deadline, work).await.ok();
    tokio::time::sleep_until(deadline).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quick_work_is_held_until_the_floor() {
        let start = tokio::time::Instant::now();
        let answer = at_the_floor(Duration::from_millis(800), async { 7 }).await;
        assert_eq!(answer, Some(7));
        assert_eq!(start.elapsed(), Duration::from_millis(800));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_work_is_abandoned_at_the_floor() {
        // Say SES retries for seconds: the answer still comes at the floor, not later.
        let start = tokio::time::Instant::now();
        let answer = at_the_floor(Duration::from_millis(1000), async {
            tokio::time::sleep(Duration::from_millis(3000)).await;
            "sent"
        })
        .await;
        assert_eq!(answer, None);
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_floor_waits_for_the_work() {
        let start = tokio::time::Instant::now();
        let answer = at_the_floor(Duration::ZERO, async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            1
        })
        .await;
        assert_eq!((answer, start.elapsed()), (Some(1), Duration::from_millis(300)));
    }
}
