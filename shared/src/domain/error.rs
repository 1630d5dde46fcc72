//! The one error type of every operation. It knows nothing of HTTP: `http::error` maps it.

use thiserror::Error;

/// Which password rule a candidate password broke, in the order the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRule {
    TooShort,
    NoUppercase,
    NoLowercase,
    NoDigit,
    TooLong,
    TooCommon,
}

/// Which optional field of a scoped key was not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    NameTooLong,
    MonthlyLimit,
    DailyLimit,
    ExpiresAt,
    FoundryUrl,
    /// verify's `cost`: not an integer from 1 to 1000.
    Cost,
    /// A free-text field longer than [`crate::domain::scoped::MAX_TEXT_CHARS`].
    TooLong(&'static str),
    /// `scopedClientIds`: empty, repeated or too long ids, or more than
    /// [`crate::domain::scoped::MAX_CLIENTS`].
    ClientIds,
    /// `scopedUserIds`: an empty or too long id, or more than
    /// [`crate::domain::scoped::MAX_CLIENTS`] entries.
    UserIds,
}

/// Why an operation did not succeed. (What a request's shape can get wrong before any
/// operation runs is `http::error::RequestError`.)
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    // Validation.
    #[error("a scoped key needs a name")]
    NameRequired,
    #[error("invalid email address")]
    InvalidEmail,
    #[error("password rule broken: {0:?}")]
    WeakPassword(PasswordRule),
    #[error("invalid scoped key field: {0:?}")]
    InvalidField(Field),
    /// The first string of a list of scopes that is not a scope of the catalogue, or is
    /// there twice (a client's text: shown in the answer, as the client sent it).
    #[error("unknown or repeated scope")]
    InvalidScopes(String),

    // Authentication.
    #[error("API key missing")]
    MissingApiKey,
    #[error("API key invalid")]
    InvalidApiKey,
    #[error("service key missing or wrong")]
    ServiceKeyRequired,
    #[error("scoped key used on a master-key route")]
    MasterKeyRequired,
    #[error("scoped key tried to create a scoped key")]
    ScopedKeyCannotCreateKeys,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid password")]
    InvalidPassword,
    #[error("current password incorrect")]
    CurrentPasswordIncorrect,
    #[error("email confirmation missing or different")]
    EmailConfirmationRequired,
    #[error("deleting an account needs its password")]
    PasswordRequired,

    // State.
    #[error("registration disabled")]
    RegistrationDisabled,
    #[error("user already exists")]
    UserExists,
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    #[error("invalid or expired verification token")]
    InvalidVerificationToken,
    #[error("the email is already verified")]
    EmailAlreadyVerified,
    #[error("API key not found")]
    ApiKeyNotFound,
    #[error("scoped key limit of {0} reached")]
    ScopedKeyLimit(u64),

    #[error("rate limited by {rule:?}")]
    RateLimited { rule: crate::domain::limits::Rule, limit: u32, retry_after: u64 },

    // Infrastructure: the cause is kept as the source, logged once where the request is
    // answered (with the route and the request id), and never answered.
    #[error("dependency unavailable")]
    Unavailable(#[source] PortError),
    #[error("internal error")]
    Internal(#[source] PortError),
}

/// What a store, mailer or cipher reports. Details stay in logs.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PortError {
    /// A condition of a write did not hold (a uniqueness or a concurrency guard).
    #[error("condition failed")]
    Conflict,
    /// The dependency throttled or was out of reach.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

/// An error with its whole cause chain, for a log line: `error = %Chain(&error)` writes
/// the error's own message and then every `source()` after it, separated by `: `
/// (`internal error: service error: ResourceNotFoundException: ...`). An error's `Display`
/// leaves out the cause it keeps as its `#[source]`, so `%error` alone would lose it.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl PortError {
    pub fn other(e: impl std::fmt::Display) -> Self {
        Self::Other(e.to_string())
    }
}

impl From<PortError> for AuthError {
    /// A dependency that throttled, was out of reach, or kept losing optimistic writes to
    /// concurrent changes is busy: worth retrying (503). Anything else is a fault (500).
    fn from(e: PortError) -> Self {
        match e {
            PortError::Unavailable(_) | PortError::Conflict => AuthError::Unavailable(e),
            PortError::Other(_) => AuthError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_shows_every_cause_after_the_error() {
        let error = AuthError::from(PortError::Other("ResourceNotFoundException: no table users".into()));
        assert_eq!(error.to_string(), "internal error", "the cause is not in the error's own message");
        assert_eq!(Chain(&error).to_string(), "internal error: ResourceNotFoundException: no table users");
        assert_eq!(Chain(&PortError::Conflict).to_string(), "condition failed");
    }
}
