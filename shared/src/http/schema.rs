//! The bodies the API answers, as types. The handlers build them and serde writes them;
//! with the `openapi` feature, utoipa describes the very same types in the OpenAPI
//! document (`http::openapi`), so the document cannot drift from what is answered.
//!
//! Every field of every response is always present: an unset optional value is `null`,
//! never left out.

use crate::domain::audit::Event;
use crate::domain::clock::iso;
use crate::domain::meter::Decision;
use crate::domain::model::ScopedKey;
use crate::domain::scopes::Grant;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// An ISO 8601 UTC timestamp with whole seconds, `2026-11-25T22:56:52Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "openapi",
    derive(ToSchema),
    schema(value_type = String, format = DateTime, example = "2026-11-25T22:56:52Z")
)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&iso(self.0))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

/// Declares [`ErrorCode`] from one list of variants and their wire strings, and with it
/// `ErrorCode::ALL` and `ErrorCode::as_str`.
macro_rules! error_codes {
    ($($code:ident => $text:literal,)*) => {
        /// The stable, machine-readable `code` of every error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "openapi", derive(ToSchema), schema(rename_all = "snake_case"))]
        pub enum ErrorCode {
            $($code,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $text,)*
                }
            }
        }
    };
}

error_codes! {
    InvalidJson => "invalid_json",
    InvalidBody => "invalid_body",
    UnsupportedContentType => "unsupported_content_type",
    PayloadTooLarge => "payload_too_large",
    MissingFields => "missing_fields",
    InvalidEmail => "invalid_email",
    PasswordTooShort => "password_too_short",
    PasswordNoUppercase => "password_no_uppercase",
    PasswordNoLowercase => "password_no_lowercase",
    PasswordNoNumber => "password_no_number",
    PasswordTooLong => "password_too_long",
    PasswordTooCommon => "password_too_common",
    InvalidName => "invalid_name",
    InvalidMonthlyLimit => "invalid_monthly_limit",
    InvalidDailyLimit => "invalid_daily_limit",
    InvalidExpiresAt => "invalid_expires_at",
    InvalidFoundryUrl => "invalid_foundry_url",
    FieldTooLong => "field_too_long",
    ApiKeyRequired => "api_key_required",
    InvalidApiKey => "invalid_api_key",
    ServiceKeyRequired => "service_key_required",
    InvalidCost => "invalid_cost",
    InvalidScopes => "invalid_scopes",
    InvalidScopedClientIds => "invalid_scoped_client_ids",
    InvalidScopedUserIds => "invalid_scoped_user_ids",
    MasterKeyRequired => "master_key_required",
    InvalidCredentials => "invalid_credentials",
    InvalidPassword => "invalid_password",
    CurrentPasswordIncorrect => "current_password_incorrect",
    EmailConfirmationRequired => "email_confirmation_required",
    RegistrationDisabled => "registration_disabled",
    UserExists => "user_exists",
    InvalidResetToken => "invalid_reset_token",
    InvalidVerificationToken => "invalid_verification_token",
    EmailAlreadyVerified => "email_already_verified",
    ApiKeyNotFound => "api_key_not_found",
    ScopedKeyLimitReached => "scoped_key_limit_reached",
    RateLimited => "rate_limited",
    ServiceUnavailable => "service_unavailable",
    InternalError => "internal_error",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Every error: a message for people and a stable code for programs.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"error": "Invalid API key", "code": "invalid_api_key"})))]
pub struct ErrorBody {
    /// What went wrong, in words (the relay's messages, kept exactly).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub error: Cow<'static, str>,
    pub code: ErrorCode,
}

/// POST /auth/register
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Registered {
    pub id: String,
    pub email: String,
    /// The new master key (`frm_…`).
    pub api_key: String,
    pub created_at: Timestamp,
    /// `free` for a new account.
    pub subscription_status: String,
}

/// POST /auth/login
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoggedIn {
    pub id: String,
    pub email: String,
    /// The account's current master key; `null` when this service never saw it (an
    /// account imported from a relay 3.x, which kept only its digest): the key works, and
    /// regenerate-key makes a new one that login shows.
    pub api_key: Option<String>,
    /// Whether `apiKey` holds the key (`false`: regenerate it to see one).
    pub api_key_available: bool,
    pub requests_this_month: u64,
    pub created_at: Timestamp,
}

/// POST /auth/regenerate-key
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegeneratedKey {
    /// The new master key; the old one and every scoped key of the account stop working.
    pub api_key: String,
}

/// The plan limits shown in user-data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PlanLimits {
    pub daily_limit: u64,
    pub monthly_limit: u64,
    /// `subscriptionStatus == "active"`.
    pub unlimited_monthly: bool,
}

/// GET /auth/user-data
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UserData {
    pub id: String,
    pub email: String,
    /// The key presented.
    pub api_key: String,
    pub requests_this_month: u64,
    pub requests_today: u64,
    pub subscription_status: String,
    /// `false` only for an account registered while email verification is required and
    /// not verified yet (its keys are refused on the relay's routes until then).
    pub email_verified: bool,
    pub limits: PlanLimits,
    /// The key presented came from the Node relay (64 hex characters): it works until
    /// `legacyKeysUntil`; regenerate it to get a key of this service.
    pub legacy_key: bool,
    /// When keys from the Node relay stop working (`LEGACY_KEYS_UNTIL`); `null`: no end
    /// is set.
    pub legacy_keys_until: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportedUser {
    pub id: String,
    pub email: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportedSubscription {
    pub status: String,
    pub stripe_customer_id: Option<String>,
    pub subscription_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportedUsage {
    pub requests_this_month: u64,
    pub requests_today: u64,
    pub last_request_date: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportedApiAccess {
    /// The master key's first characters, enough to recognise it.
    pub key_prefix: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ExportedScopedKey {
    pub id: String,
    pub name: String,
    pub key_prefix: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The key's scopes, in catalogue order; `null` for a key made before scopes, which
    /// holds every scope (and may be narrowed with PATCH).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, example = json!(["roll:read", "chat:read"])))]
    pub scopes: Option<Vec<&'static str>>,
    /// The Foundry clients the key serves (instead of `scopedClientId`, when not empty).
    pub scoped_client_ids: Vec<String>,
    /// The Foundry user the key acts as, per client id.
    pub scoped_user_ids: BTreeMap<String, String>,
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub requests_this_month: u64,
    pub expires_at: Option<Timestamp>,
    pub enabled: bool,
    pub has_foundry_credentials: bool,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub created_at: Timestamp,
}

/// GET /auth/export-data: everything kept about the account, and no secret of any kind.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DataExport {
    pub export_date: Timestamp,
    pub user: ExportedUser,
    pub subscription: ExportedSubscription,
    pub usage: ExportedUsage,
    pub api_access: ExportedApiAccess,
    pub scoped_keys: Vec<ExportedScopedKey>,
    /// The account's security events of the last 90 days, newest first (at most 1000).
    pub activity: Vec<ActivityEntry>,
}

/// One security event of the account, as its owner sees it: when, what, where from.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ActivityEntry {
    pub at: Timestamp,
    /// What happened: `login-succeeded`, `login-failed`, `login-locked`,
    /// `password-changed`, `reset-requested`, `reset-completed`, `master-key-regenerated`,
    /// `scoped-key-created`, `scoped-key-changed`, `scoped-key-deleted`, `account-imported`.
    #[cfg_attr(feature = "openapi", schema(example = "login-failed"))]
    pub event: &'static str,
    /// `success`, or `failure` for a refused login.
    #[cfg_attr(feature = "openapi", schema(example = "failure"))]
    pub outcome: &'static str,
    /// The scoped key a `scoped-key-*` event is about.
    pub scoped_key_id: Option<String>,
    /// The client's address, as the gateway saw it.
    #[cfg_attr(feature = "openapi", schema(example = "203.0.113.7"))]
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// The request's id, to quote to the operator.
    pub request_id: Option<String>,
}

impl From<&Event> for ActivityEntry {
    fn from(event: &Event) -> Self {
        Self {
            at: event.at.into(),
            event: event.kind.name(),
            outcome: event.kind.outcome(),
            scoped_key_id: event.subject.clone(),
            address: event.origin.address.clone(),
            user_agent: event.origin.user_agent.clone(),
            request_id: event.origin.request_id.clone(),
        }
    }
}

/// GET /auth/activity: the account's newest security events (at most 50), newest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ActivityList {
    pub events: Vec<ActivityEntry>,
}

/// POST /auth/reset-password
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordResetDone {
    pub message: &'static str,
    /// With `revokeKeys: true`, the new master key (the old one and every scoped key
    /// stopped working in the same write); otherwise `null`: the keys are unchanged.
    #[cfg_attr(feature = "openapi", schema(nullable))]
    pub api_key: Option<String>,
}

/// A fixed confirmation.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Message {
    pub message: &'static str,
}

/// A deletion done.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Deleted {
    /// Always `true`.
    pub success: bool,
    pub message: &'static str,
}

/// GET /auth/validate-reset-token/{token}
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokenValidity {
    pub valid: bool,
}

/// A key's scopes as answered: `None` for a key made before scopes (unrestricted).
pub fn scope_names(key: &ScopedKey) -> Option<Vec<&'static str>> {
    match key.grant {
        Grant::Unrestricted => None,
        Grant::Only(set) => Some(set.names()),
    }
}

/// POST /auth/api-keys: the new scoped key, with its plaintext shown this once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedScopedKey {
    pub id: String,
    /// The scoped key (`frs_…`), shown here once and never again.
    pub key: String,
    pub name: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The key's scopes, in catalogue order; `null` for a key made before scopes, which
    /// holds every scope (and may be narrowed with PATCH).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, example = json!(["roll:read", "chat:read"])))]
    pub scopes: Option<Vec<&'static str>>,
    /// The Foundry clients the key serves (instead of `scopedClientId`, when not empty).
    pub scoped_client_ids: Vec<String>,
    /// The Foundry user the key acts as, per client id.
    pub scoped_user_ids: BTreeMap<String, String>,
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub expires_at: Option<Timestamp>,
    pub has_foundry_credentials: bool,
    /// Always `true`.
    pub enabled: bool,
    pub created_at: Timestamp,
}

/// One scoped key as listed: `key` is only its prefix followed by `...`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ListedScopedKey {
    pub id: String,
    pub key: String,
    pub name: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The key's scopes, in catalogue order; `null` for a key made before scopes, which
    /// holds every scope (and may be narrowed with PATCH).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, example = json!(["roll:read", "chat:read"])))]
    pub scopes: Option<Vec<&'static str>>,
    /// The Foundry clients the key serves (instead of `scopedClientId`, when not empty).
    pub scoped_client_ids: Vec<String>,
    /// The Foundry user the key acts as, per client id.
    pub scoped_user_ids: BTreeMap<String, String>,
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub requests_this_month: u64,
    pub expires_at: Option<Timestamp>,
    pub is_expired: bool,
    pub enabled: bool,
    pub has_foundry_credentials: bool,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// GET /auth/api-keys: the account's scoped keys, oldest first.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ScopedKeyList {
    pub keys: Vec<ListedScopedKey>,
}

/// Whether the key is the account's master key or one of its scoped keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(rename_all = "lowercase"))]
pub enum KeyType {
    Master,
    Scoped,
}

/// A cap, or `""` when there is none (API Gateway passes context values as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapOrEmpty(pub Option<u64>);

impl Serialize for CapOrEmpty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(limit) => serializer.serialize_u64(limit),
            None => serializer.serialize_str(""),
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CapOrEmpty {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some([""])))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl ToSchema for CapOrEmpty {}

/// What the authorizer hands to a relay route it admits, under
/// `requestContext.authorizer.lambda` of the route's event. Not an HTTP body of this API:
/// the `authorizer` function answers API Gateway with `{isAuthorized, context}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "userId": "71ea7eec-a986-4a81-85a4-195cc03e88da", "keyType": "scoped",
    "scopedKeyId": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede", "scopedClientId": "client-1",
    "scopedUserId": "", "scopes": "roll:read chat:read", "requestsThisMonth": 12, "requestsToday": 3,
    "monthlyLimit": 500, "dailyLimit": ""
})))]
pub struct AuthorizerContext {
    /// The account.
    pub user_id: String,
    pub key_type: KeyType,
    /// The scoped key; `""` for a master key.
    pub scoped_key_id: String,
    /// The scoped key's Foundry client; `""` for a master key or an unset scope.
    pub scoped_client_id: String,
    /// The scoped key's Foundry user; `""` for a master key or an unset scope.
    pub scoped_user_id: String,
    /// What the key may do, space-separated scope names in catalogue order (every scope for
    /// a master key and for a scoped key made before scopes; `""` for a key of none).
    pub scopes: String,
    /// This month's requests of the key (scoped) or of the account (master), this one included.
    pub requests_this_month: u64,
    /// Today's (UTC) requests of the key (scoped) or of the account (master), this one included.
    pub requests_today: u64,
    /// The cap behind that count; `""` when there is none.
    #[cfg_attr(feature = "openapi", schema(value_type = CapOrEmpty))]
    pub monthly_limit: CapOrEmpty,
    /// The daily cap of the key (scoped) or of the account (master); `""` when there is none.
    #[cfg_attr(feature = "openapi", schema(value_type = CapOrEmpty))]
    pub daily_limit: CapOrEmpty,
}

/// Why verify refused a key: a name of [`Decision`] (never `admitted` or `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub Decision);

impl Reason {
    /// Every reason verify can answer.
    pub fn all() -> impl Iterator<Item = &'static str> {
        Decision::ALL.into_iter().filter(|d| !matches!(d, Decision::Admitted | Decision::Error)).map(Decision::name)
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Reason {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Reason::all())).into()
    }
}

#[cfg(feature = "openapi")]
impl ToSchema for Reason {}

/// POST /auth/verify: the key is good, and this request was counted (unless `count` was
/// false). The authorizer's context, and more.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VerifiedKey {
    /// Always `true`.
    pub valid: bool,
    #[serde(flatten)]
    pub context: AuthorizerContext,
    /// When the scoped key stops working; `null`: never (and for a master key).
    pub expires_at: Option<Timestamp>,
    /// The account's subscription (`active` lifts the monthly limit).
    pub subscription_status: String,
    /// The scoped key's Foundry login, only with `credentials: true` (else `null`, and
    /// `null` when the key has none).
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub foundry_password: Option<String>,
}

/// POST /auth/verify: the key is refused, and nothing was counted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RefusedKey {
    /// Always `false`.
    pub valid: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Reason))]
    pub reason: Reason,
    /// For `cap`: the start of the UTC day or month that frees the cap that refused; else `null`.
    pub resets_at: Option<Timestamp>,
    /// For `scope`: the scope the route requires; `null` otherwise, and for a route that is
    /// in no entry of the route table (refused to every key that holds scopes).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "roll:execute"))]
    pub required_scope: Option<&'static str>,
}

/// POST /auth/verify
#[derive(Debug, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum Verification {
    Valid(Box<VerifiedKey>),
    Invalid(RefusedKey),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_iso_utc_with_whole_seconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T23:56:52.75+01:00").unwrap().with_timezone(&Utc);
        assert_eq!(serde_json::to_value(Timestamp(t)).unwrap(), serde_json::json!("2026-11-25T22:56:52Z"));
    }

    #[test]
    fn error_codes_are_distinct_snake_case_strings() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(text.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{text}");
            assert!(seen.insert(text), "{text} twice");
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn absent_optional_fields_are_written_as_null() {
        let subscription =
            ExportedSubscription { status: "free".into(), stripe_customer_id: None, subscription_id: None };
        assert_eq!(
            serde_json::to_value(subscription).unwrap(),
            serde_json::json!({"status": "free", "stripeCustomerId": null, "subscriptionId": null})
        );
    }
}
