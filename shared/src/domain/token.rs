//! Emailed tokens: 256 random bits, stored only as SHA-256. A password-reset token is
//! valid for one hour, an email-verification token for 24 hours; both kinds live in the
//! reset tokens table, told apart by their [`Purpose`].

use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const TOKEN_BYTES: usize = 32;
pub const LIFETIME: Duration = Duration::hours(1);
/// How long an email-verification link stays valid.
pub const VERIFICATION_LIFETIME: Duration = Duration::hours(24);
/// The longest presented token looked up at all (a real one has `2 x TOKEN_BYTES`).
pub const MAX_PRESENTED_LEN: usize = 256;

/// The token that goes into the email link. Never stored, never logged.
pub struct ResetToken(Zeroizing<String>);

impl ResetToken {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(hex::encode(bytes.as_ref())))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The SHA-256 (hex) of a presented token: the only form the store ever sees.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a token proves when redeemed. Each purpose has its own slot on the account (the
/// one token of that purpose that may still be redeemed), so a verification link and a
/// reset link never void each other, and a token of one purpose is never accepted for
/// the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sets a new password (forgot-password, reset-password).
    Reset,
    /// Proves control of the account's email (register, resend-verification, verify-email).
    VerifyEmail,
}

impl Purpose {
    pub const fn lifetime(self) -> Duration {
        match self {
            Purpose::Reset => LIFETIME,
            Purpose::VerifyEmail => VERIFICATION_LIFETIME,
        }
    }
}

/// A stored token as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResetToken {
    pub digest: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    pub purpose: Purpose,
}

impl StoredResetToken {
    /// A password-reset token.
    pub fn issue(token: &ResetToken, user_id: &str, now: DateTime<Utc>) -> Self {
        Self::issue_for(Purpose::Reset, token, user_id, now)
    }

    pub fn issue_for(purpose: Purpose, token: &ResetToken, user_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            digest: digest(token.expose()),
            user_id: user_id.to_owned(),
            // Whole seconds, as stores keep it (a TTL is epoch seconds): never later than
            // the lifetime after issue.
            expires_at: (now + purpose.lifetime()).trunc_subsecs(0),
            purpose,
        }
    }

    /// Expiry is decided here, against the injected clock; a store's TTL only cleans up.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tokens_carry_256_random_bits_and_are_stored_as_their_digest() {
        let a = ResetToken::generate();
        let b = ResetToken::generate();
        assert_eq!(a.expose().len(), TOKEN_BYTES * 2);
        const { assert!(TOKEN_BYTES * 8 >= 128) };
        assert_ne!(a.expose(), b.expose());
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let stored = StoredResetToken::issue(&a, "u1", now);
        assert_eq!(stored.digest, digest(a.expose()));
        assert_ne!(stored.digest, a.expose());
    }

    #[test]
    fn a_token_lives_exactly_one_hour() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let stored = StoredResetToken::issue(&ResetToken::generate(), "u1", now);
        assert!(stored.is_live(now));
        assert!(stored.is_live(now + Duration::minutes(59) + Duration::seconds(59)));
        assert!(!stored.is_live(now + Duration::hours(1)));
        assert!(!stored.is_live(now + Duration::days(2)));
    }

    #[test]
    fn a_verification_token_lives_exactly_24_hours() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let stored = StoredResetToken::issue_for(Purpose::VerifyEmail, &ResetToken::generate(), "u1", now);
        assert_eq!(stored.purpose, Purpose::VerifyEmail);
        assert!(stored.is_live(now + Duration::hours(23) + Duration::minutes(59)));
        assert!(!stored.is_live(now + Duration::hours(24)));
    }
}
