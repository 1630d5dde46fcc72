//! Verified emails (`REQUIRE_EMAIL_VERIFICATION`): the link register sends, its
//! redemption (verify-email), and asking for it again (resend-verification).
//!
//! A verification token is a reset token with another [`Purpose`]: the same generation,
//! digest and table, its own slot on the account, valid for
//! [`crate::domain::token::VERIFICATION_LIFETIME`]. Until it is redeemed (or a password
//! reset proves control of the email), the account's keys are refused on the relay's
//! routes (`meter::Decision::Unverified`); its `/auth` routes keep working, so that the
//! owner can ask for the link again.

use crate::domain::app::App;
use crate::domain::auth::Caller;
use crate::domain::error::{AuthError, PortError};
use crate::domain::limits::Rule;
use crate::domain::model::User;
use crate::domain::token::{self, Purpose, ResetToken, StoredResetToken};
use crate::domain::{notify, throttle, with_current_user};

/// The message of a redeemed verification link.
pub const VERIFIED: &str = "Email verified successfully";
/// The message of a resent verification link.
pub const RESENT: &str = "Verification email sent";

/// Issues a verification token for `user` and mails the link. A failure to send is
/// logged (the owner can ask again), a failure to issue is answered.
pub async fn send_link(app: &App, user: User) -> Result<(), AuthError> {
    let Some(page) = &app.settings.verify_url else {
        return Err(
            PortError::Other("no verification page (VERIFY_EMAIL_URL) is configured for this function".into()).into()
        );
    };
    let token = ResetToken::generate();
    let token_ref = &token;
    let user_id = user.id.clone();
    let user = with_current_user(
        user,
        || async { app.store.user(&user_id).await?.ok_or(AuthError::InvalidApiKey) },
        |user| async move {
            let stored = StoredResetToken::issue_for(Purpose::VerifyEmail, token_ref, &user.id, app.clock.now());
            app.store.issue_reset_token(&user, &stored).await.map(|()| user)
        },
    )
    .await?;
    tracing::info!(user_id = %user.id, "email verification token issued");
    let link = notify::verify_link(page, token.expose());
    notify::send_logged(app, notify::verification_email(&user.email, &link), "email-verification").await;
    Ok(())
}

/// Sends the link again to the caller's account, while its email is unverified: at most
/// `THROTTLE_VERIFICATION_EMAILS` per account. The new link supersedes the previous one.
pub async fn resend(app: &App, caller: &Caller) -> Result<(), AuthError> {
    if caller.user.email_verified {
        return Err(AuthError::EmailAlreadyVerified);
    }
    throttle::per_account_under(app, Rule::VerificationEmails, &caller.user.id).await?;
    send_link(app, caller.user.clone()).await
}

/// Uses a verification token up and marks its account's email verified. Unknown, expired,
/// superseded, already used and reset tokens are refused alike.
pub async fn verify_email(app: &App, presented: &str, address: Option<&str>) -> Result<(), AuthError> {
    throttle::per_address(app, Rule::AuthPerAddress, address).await?;
    if presented.is_empty() || presented.len() > token::MAX_PRESENTED_LEN {
        return Err(AuthError::InvalidVerificationToken);
    }
    let now = app.clock.now();
    let stored = app.store.reset_token(&token::digest(presented)).await?;
    let stored = stored
        .filter(|t| t.purpose == Purpose::VerifyEmail && t.is_live(now))
        .ok_or(AuthError::InvalidVerificationToken)?;
    match app.store.redeem_verification_token(&stored, now).await {
        Ok(()) => {
            tracing::info!(user_id = %stored.user_id, "email verified");
            Ok(())
        }
        Err(PortError::Conflict) => Err(AuthError::InvalidVerificationToken),
        Err(e) => Err(e.into()),
    }
}
