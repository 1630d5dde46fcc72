//! The one error boundary: where a request's failure becomes a status, a public message
//! and a code.

use crate::domain::error::{AuthError, Field, PasswordRule};
use crate::domain::limits::Rule;
use crate::domain::meter::MAX_COST;
use crate::domain::password::{MAX_CHARS, MIN_CHARS};
use crate::domain::scoped::{MAX_CLIENTS, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use crate::http::schema::ErrorCode;
use lambda_http::http::StatusCode;
use std::borrow::Cow;
use thiserror::Error;

/// What a request's shape can get wrong, before any operation runs.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("a required field is missing: {0:?}")]
    Required(Required),
    #[error("malformed JSON body")]
    InvalidJson,
    #[error("invalid body: {0}")]
    InvalidBody(String),
    #[error("unsupported content type")]
    UnsupportedContentType,
    #[error("body too large")]
    PayloadTooLarge,
}

/// Which required fields a request lacked (each route has its own message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    EmailAndPassword,
    Email,
    TokenAndPassword,
    CurrentAndNewPassword,
    Key,
    Token,
}

/// Why a request was not answered with success: its shape, or the operation.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Failure {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl Failure {
    /// The cause of a failure of the service itself (a 5xx), which the answer does not tell.
    pub fn fault(&self) -> Option<&crate::domain::error::PortError> {
        match self {
            Failure::Auth(AuthError::Unavailable(cause) | AuthError::Internal(cause)) => Some(cause),
            _ => None,
        }
    }
}

/// What a client is told about an error: never more than this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicError {
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub code: ErrorCode,
    /// For a 429: the limit and the seconds until a retry may succeed.
    pub rate_limit: Option<(u32, u64)>,
}

impl From<&Failure> for PublicError {
    fn from(failure: &Failure) -> Self {
        match failure {
            Failure::Request(err) => Self::from(err),
            Failure::Auth(err) => Self::from(err),
        }
    }
}

impl From<&RequestError> for PublicError {
    fn from(err: &RequestError) -> Self {
        use RequestError as E;
        let (status, message, code): (StatusCode, Cow<'static, str>, ErrorCode) = match err {
            E::Required(which) => (StatusCode::BAD_REQUEST, required_message(*which).into(), ErrorCode::MissingFields),
            E::InvalidJson => (StatusCode::BAD_REQUEST, "Invalid JSON format".into(), ErrorCode::InvalidJson),
            E::InvalidBody(detail) => (StatusCode::BAD_REQUEST, detail.clone().into(), ErrorCode::InvalidBody),
            E::UnsupportedContentType => (
                StatusCode::BAD_REQUEST,
                "Content-Type must be application/json".into(),
                ErrorCode::UnsupportedContentType,
            ),
            E::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large".into(), ErrorCode::PayloadTooLarge)
            }
        };
        Self { status, message, code, rate_limit: None }
    }
}

impl From<&AuthError> for PublicError {
    fn from(err: &AuthError) -> Self {
        use AuthError as E;
        let (status, message, code): (StatusCode, Cow<'static, str>, ErrorCode) = match err {
            E::NameRequired => (StatusCode::BAD_REQUEST, "Name is required".into(), ErrorCode::MissingFields),
            E::PasswordRequired => (StatusCode::BAD_REQUEST, "Password required".into(), ErrorCode::MissingFields),
            E::InvalidEmail => (StatusCode::BAD_REQUEST, "Invalid email address".into(), ErrorCode::InvalidEmail),
            E::WeakPassword(rule) => {
                let (message, code) = password_rule(*rule);
                (StatusCode::BAD_REQUEST, message, code)
            }
            E::InvalidField(field) => {
                let (message, code) = field_message(*field);
                (StatusCode::BAD_REQUEST, message, code)
            }
            E::InvalidScopes(first) => {
                // The client's own text, cut short: a scope name is at most 16 characters.
                let shown: String = first.chars().take(40).collect();
                (
                    StatusCode::BAD_REQUEST,
                    format!("Unknown or repeated scope: {shown:?}").into(),
                    ErrorCode::InvalidScopes,
                )
            }
            E::MissingApiKey => (StatusCode::UNAUTHORIZED, "API key is required".into(), ErrorCode::ApiKeyRequired),
            E::InvalidApiKey => (StatusCode::UNAUTHORIZED, "Invalid API key".into(), ErrorCode::InvalidApiKey),
            E::ServiceKeyRequired => {
                (StatusCode::UNAUTHORIZED, "A valid service key is required".into(), ErrorCode::ServiceKeyRequired)
            }
            E::MasterKeyRequired => (
                StatusCode::FORBIDDEN,
                "Use your master API key to manage scoped keys.".into(),
                ErrorCode::MasterKeyRequired,
            ),
            E::ScopedKeyCannotCreateKeys => (
                StatusCode::FORBIDDEN,
                "Scoped keys cannot create other scoped keys. Use your master API key.".into(),
                ErrorCode::MasterKeyRequired,
            ),
            E::InvalidCredentials => {
                (StatusCode::UNAUTHORIZED, "Invalid credentials".into(), ErrorCode::InvalidCredentials)
            }
            E::InvalidPassword => (StatusCode::UNAUTHORIZED, "Invalid password".into(), ErrorCode::InvalidPassword),
            E::CurrentPasswordIncorrect => {
                (StatusCode::UNAUTHORIZED, "Current password is incorrect".into(), ErrorCode::CurrentPasswordIncorrect)
            }
            E::EmailConfirmationRequired => {
                (StatusCode::BAD_REQUEST, "Email confirmation required".into(), ErrorCode::EmailConfirmationRequired)
            }
            E::RegistrationDisabled => (
                StatusCode::FORBIDDEN,
                "Registration is disabled on this server".into(),
                ErrorCode::RegistrationDisabled,
            ),
            E::UserExists => (StatusCode::CONFLICT, "User already exists".into(), ErrorCode::UserExists),
            E::InvalidResetToken => {
                (StatusCode::BAD_REQUEST, "Invalid or expired reset token".into(), ErrorCode::InvalidResetToken)
            }
            E::InvalidVerificationToken => (
                StatusCode::BAD_REQUEST,
                "Invalid or expired verification token".into(),
                ErrorCode::InvalidVerificationToken,
            ),
            E::EmailAlreadyVerified => {
                (StatusCode::CONFLICT, "Email is already verified".into(), ErrorCode::EmailAlreadyVerified)
            }
            E::ApiKeyNotFound => (StatusCode::NOT_FOUND, "API key not found".into(), ErrorCode::ApiKeyNotFound),
            E::ScopedKeyLimit(cap) => (
                StatusCode::BAD_REQUEST,
                format!("Scoped key limit reached ({cap})").into(),
                ErrorCode::ScopedKeyLimitReached,
            ),
            E::RateLimited { rule, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, rate_limit_message(*rule).into(), ErrorCode::RateLimited)
            }
            E::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable".into(),
                ErrorCode::ServiceUnavailable,
            ),
            E::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal server error".into(), ErrorCode::InternalError)
            }
        };
        let rate_limit = match err {
            E::RateLimited { limit, retry_after, .. } => Some((*limit, *retry_after)),
            _ => None,
        };
        Self { status, message, code, rate_limit }
    }
}

fn required_message(which: Required) -> &'static str {
    match which {
        Required::EmailAndPassword => "Email and password are required",
        Required::Email => "Email is required",
        Required::TokenAndPassword => "Token and password are required",
        Required::CurrentAndNewPassword => "Current password and new password are required",
        Required::Key => "key is required",
        Required::Token => "Token is required",
    }
}

fn password_rule(rule: PasswordRule) -> (Cow<'static, str>, ErrorCode) {
    match rule {
        PasswordRule::TooShort => {
            (format!("Password must be at least {MIN_CHARS} characters long").into(), ErrorCode::PasswordTooShort)
        }
        PasswordRule::NoUppercase => {
            ("Password must contain at least one uppercase letter".into(), ErrorCode::PasswordNoUppercase)
        }
        PasswordRule::NoLowercase => {
            ("Password must contain at least one lowercase letter".into(), ErrorCode::PasswordNoLowercase)
        }
        PasswordRule::NoDigit => ("Password must contain at least one number".into(), ErrorCode::PasswordNoNumber),
        PasswordRule::TooLong => {
            (format!("Password must be at most {MAX_CHARS} characters long").into(), ErrorCode::PasswordTooLong)
        }
        PasswordRule::TooCommon => ("Password is too common".into(), ErrorCode::PasswordTooCommon),
    }
}

fn rate_limit_message(rule: Rule) -> &'static str {
    match rule {
        Rule::AccountFailures => "Too many failed attempts, please try again later",
        Rule::AuthPerAddress => "Too many authentication attempts from this IP, please try again after 15 minutes",
        Rule::ResetPerAddress => "Too many password reset attempts from this IP, please try again later",
        Rule::AccountManagement => "Too many account management requests, please try again later",
        Rule::ServiceKeyFailures => "Too many requests with a wrong service key from this IP, please try again later",
        Rule::VerificationEmails => "Too many verification emails, please try again later",
    }
}

fn field_message(field: Field) -> (Cow<'static, str>, ErrorCode) {
    match field {
        Field::NameTooLong => {
            (format!("Name must be at most {MAX_NAME_CHARS} characters").into(), ErrorCode::InvalidName)
        }
        Field::MonthlyLimit => ("monthlyLimit must be a positive whole number".into(), ErrorCode::InvalidMonthlyLimit),
        Field::DailyLimit => ("dailyLimit must be a positive whole number".into(), ErrorCode::InvalidDailyLimit),
        Field::ExpiresAt => {
            ("expiresAt must be an RFC 3339 timestamp in the future".into(), ErrorCode::InvalidExpiresAt)
        }
        Field::FoundryUrl => ("foundryUrl must be an http(s) URL".into(), ErrorCode::InvalidFoundryUrl),
        Field::Cost => (format!("cost must be a whole number from 1 to {MAX_COST}").into(), ErrorCode::InvalidCost),
        Field::TooLong(name) => {
            (format!("{name} must be at most {MAX_TEXT_CHARS} characters").into(), ErrorCode::FieldTooLong)
        }
        Field::ClientIds => (
            format!(
                "scopedClientIds must be at most {MAX_CLIENTS} different client ids of 1 to {MAX_TEXT_CHARS} characters"
            )
            .into(),
            ErrorCode::InvalidScopedClientIds,
        ),
        Field::UserIds => (
            format!(
                "scopedUserIds must map at most {MAX_CLIENTS} client ids to user ids, each of 1 to {MAX_TEXT_CHARS} characters"
            )
            .into(),
            ErrorCode::InvalidScopedUserIds,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::PortError;

    fn public(err: AuthError) -> (u16, String, &'static str) {
        let p = PublicError::from(&err);
        (p.status.as_u16(), p.message.into_owned(), p.code.as_str())
    }

    #[test]
    fn contract_messages_and_statuses() {
        let invalid_json = PublicError::from(&RequestError::InvalidJson);
        assert_eq!((invalid_json.status.as_u16(), invalid_json.code.as_str()), (400, "invalid_json"));
        assert_eq!(invalid_json.message, "Invalid JSON format");
        assert_eq!(public(AuthError::MissingApiKey), (401, "API key is required".into(), "api_key_required"));
        assert_eq!(public(AuthError::InvalidApiKey), (401, "Invalid API key".into(), "invalid_api_key"));
        assert_eq!(public(AuthError::UserExists), (409, "User already exists".into(), "user_exists"));
        assert_eq!(public(AuthError::InvalidCredentials).0, 401);
        assert_eq!(public(AuthError::ApiKeyNotFound).0, 404);
        assert_eq!(PublicError::from(&RequestError::PayloadTooLarge).status.as_u16(), 413);
        assert_eq!(
            public(AuthError::ScopedKeyLimit(100)),
            (400, "Scoped key limit reached (100)".into(), "scoped_key_limit_reached")
        );
        let required = PublicError::from(&RequestError::Required(Required::EmailAndPassword));
        assert_eq!((required.status.as_u16(), required.code.as_str()), (400, "missing_fields"));
        assert_eq!(required.message, "Email and password are required");
        assert_eq!(public(AuthError::PasswordRequired), (400, "Password required".into(), "missing_fields"));
        assert_eq!(public(AuthError::NameRequired), (400, "Name is required".into(), "missing_fields"));
        assert_eq!(
            public(AuthError::WeakPassword(PasswordRule::NoDigit)).1,
            "Password must contain at least one number"
        );
        assert_eq!(
            public(AuthError::WeakPassword(PasswordRule::TooShort)).1,
            "Password must be at least 8 characters long"
        );
        assert_eq!(
            public(AuthError::WeakPassword(PasswordRule::TooLong)).1,
            "Password must be at most 128 characters long"
        );
        assert_eq!(public(AuthError::InvalidField(Field::NameTooLong)).1, "Name must be at most 100 characters");
        assert_eq!(
            public(AuthError::InvalidField(Field::TooLong("scopedUserId"))).1,
            "scopedUserId must be at most 256 characters"
        );
        assert_eq!(public(AuthError::InvalidField(Field::Cost)).1, "cost must be a whole number from 1 to 1000");
    }

    #[test]
    fn throttled_requests_are_429_with_their_rule_and_retry_time() {
        let limited = AuthError::RateLimited { rule: Rule::AccountFailures, limit: 10, retry_after: 900 };
        let public = PublicError::from(&limited);
        assert_eq!(public.status.as_u16(), 429);
        assert_eq!(public.message, "Too many failed attempts, please try again later");
        assert_eq!((public.code, public.rate_limit), (ErrorCode::RateLimited, Some((10, 900))));
        assert_eq!(PublicError::from(&AuthError::InvalidCredentials).rate_limit, None);
    }

    #[test]
    fn infrastructure_failures_reveal_nothing() {
        let cause = || PortError::Other("table UsersTable-x: AccessDenied for arn:aws:iam::1:role/r".into());
        assert_eq!(public(AuthError::Internal(cause())), (500, "Internal server error".into(), "internal_error"));
        assert_eq!(public(AuthError::Unavailable(cause())).0, 503);
        let failure = Failure::from(AuthError::Internal(cause()));
        assert_eq!(failure.fault(), Some(&cause()), "the cause is kept for the log line");
        assert_eq!(Failure::from(RequestError::InvalidJson).fault(), None);
    }

    #[test]
    fn every_code_is_snake_case() {
        let samples =
            [Failure::from(RequestError::InvalidBody("x".into())), Failure::from(RequestError::UnsupportedContentType)];
        for err in samples {
            let code = PublicError::from(&err).code.as_str();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
        let samples = [
            AuthError::InvalidField(Field::TooLong("scopedClientId")),
            AuthError::ScopedKeyCannotCreateKeys,
            AuthError::EmailConfirmationRequired,
            AuthError::RegistrationDisabled,
            AuthError::InvalidResetToken,
        ];
        for err in samples {
            let code = PublicError::from(&err).code.as_str();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
    }
}
