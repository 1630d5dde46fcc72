//! The words of the OpenAPI document: what each endpoint is for, its examples, the
//! errors it documents (their statuses, codes and messages come from `http::error`, the
//! one mapping the service answers with), and the schemas utoipa cannot derive.

use crate::domain::error::{AuthError, Field, PasswordRule};
use crate::domain::limits::Rule;
use crate::domain::scoped::{HTTP_URL, MAX_CLIENTS, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use crate::http::error::{Failure, PublicError, RequestError, Required};
use crate::http::openapi::fields;
use crate::http::request::MAX_BODY_BYTES;
use crate::http::response::NOT_FOUND;
use crate::http::routes::Endpoint;
use crate::http::schema::ErrorCode;
use serde_json::{json, Value};
use std::borrow::Cow;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::Type;

/// The characters `str::trim` removes (Unicode's `White_Space`), as a regular expression
/// character class's contents.
macro_rules! white_space {
    () => {
        "\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
    };
}

/// One documented error: status, code and message, as the service answers it.
pub(super) type Documented = (u16, ErrorCode, Cow<'static, str>);

/// How the service answers `failure`.
pub(super) fn public(failure: impl Into<Failure>) -> Documented {
    let answer = PublicError::from(&failure.into());
    (answer.status.as_u16(), answer.code, answer.message)
}

/// The password rule's answers, in the order the rule is checked.
fn password_rules() -> impl Iterator<Item = Documented> {
    use PasswordRule::*;
    [TooShort, NoUppercase, NoLowercase, NoDigit, TooLong, TooCommon]
        .into_iter()
        .map(|rule| public(AuthError::WeakPassword(rule)))
}

/// The scoped key cap in the examples: the default of `SCOPED_KEYS_PER_ACCOUNT`.
const SCOPED_KEYS_PER_ACCOUNT_EXAMPLE: u64 = crate::domain::settings::DEFAULT_SCOPED_KEYS_PER_ACCOUNT;

/// A `foundryUrl` the service takes (JSON Schema cannot say "a URL the service can parse",
/// so this is the plain subset: `http` or `https`, a host of letters, digits and dots whose
/// last label starts with a letter, an optional port, a path of unreserved characters), or
/// nothing (empty, or only whitespace, counts as absent).
/// The Foundry URL's pattern: [`HTTP_URL`], with the white space the service trims around it,
/// or white space alone (absent).
fn http_url_pattern() -> String {
    format!("^[{ws}]*({HTTP_URL})?[{ws}]*$", ws = white_space!())
}

/// The security scheme of every key-authenticated route.
pub(super) const MASTER_KEY: &str = "masterKey";
/// The security scheme of `/auth/verify`.
pub(super) const SERVICE_KEY: &str = "serviceKey";

pub(super) const MASTER_KEY_EXAMPLE: &str = "frm_IFAn33AjJyE6832Q4SH6bZs9OFVPpdCai87q0bJ792";
const EMAIL_EXAMPLE: &str = "gm@example.com";
const PASSWORD_EXAMPLE: &str = "Dragon-Hoard-2026";

/// What the master key scheme is.
pub(super) const MASTER_KEY_WORDS: &str = "The account's master key (`frm_…`). A scoped key (`frs_…`) is \
refused on every `/auth` route with 403 `master_key_required`; scoped keys are for the relay's own \
routes, behind the authorizer (see the `AuthorizerContext` schema). A key in the query string is \
never accepted.";

/// What the service key scheme is.
pub(super) const SERVICE_KEY_WORDS: &str = "A relay's service key (`fsv_…`), as `authorization: Bearer \
<key>`; the service keeps only its SHA-256 (`SERVICE_KEY_DIGESTS`). Without one configured, \
`/auth/verify` answers 404.";

/// The tags the operations are grouped by, with what each is about.
pub(super) const TAGS: [(&str, &str); 4] = [
    ("account", "Registering, signing in and the account itself"),
    ("password reset", "Resetting a forgotten password by email"),
    ("scoped keys", "Keys with a scope and limits, made by the master key"),
    ("relay", "The relay asks whether a key may make a request"),
];

pub(super) fn description() -> String {
    format!(
        "The authentication and API-key service of the Foundry VTT REST relay. \
JSON in, JSON out; every answer has `content-type: application/json` and `cache-control: no-store`. \
Every error body is `{{error, code}}`: `error` is the message the relay's clients know, `code` a \
stable machine-readable value (`ErrorCode`). A body over {} KiB is answered 413; malformed JSON \
400 `invalid_json`; a body that is JSON but not an object, or a field of the wrong type, 400 \
`invalid_body` naming the field; a content type other than JSON 400 `unsupported_content_type` \
(a missing content type is read as JSON). Throttled requests are answered 429 `rate_limited` with \
`retry-after` and `ratelimit-limit` / `ratelimit-remaining` / `ratelimit-reset` (seconds); a busy \
or failing dependency 503 `service_unavailable` with `retry-after` (nothing was half-written: the \
same request may be sent again). Timestamps are ISO 8601 UTC with whole seconds; ids are UUIDs.",
        MAX_BODY_BYTES / 1024
    )
}

/// What [`operation`] needs to know of one endpoint beyond the route table.
pub(super) struct Spec {
    pub(super) summary: &'static str,
    pub(super) description: &'static str,
    pub(super) tag: &'static str,
    /// Takes the master key in `x-api-key`.
    pub(super) key: bool,
    /// The request body's schema name and an example.
    pub(super) body: Option<(&'static str, Value)>,
    pub(super) path_parameter: Option<(&'static str, &'static str, &'static str)>,
    /// Status, description, schema name and example of the success.
    pub(super) success: (u16, &'static str, &'static str, Value),
    /// The endpoint's own errors (besides those of its body, its key and 503).
    pub(super) errors: Vec<Documented>,
    /// The throttles that apply.
    pub(super) throttles: &'static [Rule],
}

pub(super) fn spec(endpoint: Endpoint) -> Spec {
    use Endpoint::*;
    let credentials = json!({"email": EMAIL_EXAMPLE, "password": PASSWORD_EXAMPLE});
    let id = "71ea7eec-a986-4a81-85a4-195cc03e88da";
    let created = "2026-11-26T01:38:49Z";
    let listed = json!({"id": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede", "key": "frs_mvPL...", "name": "Discord bot", "scopedClientId": null, "scopedUserId": null, "scopes": ["roll:read", "chat:read"], "scopedClientIds": [], "scopedUserIds": {}, "monthlyLimit": 500, "dailyLimit": null, "requestsThisMonth": 0, "expiresAt": null, "isExpired": false, "enabled": true, "hasFoundryCredentials": false, "foundryUrl": null, "foundryUsername": null, "createdAt": created, "updatedAt": created});
    let mut changed = listed.clone();
    changed["scopes"] = json!(["roll:read"]);
    changed["dailyLimit"] = json!(200);
    match endpoint {
        Register => Spec {
            summary: "Create an account",
            description: "Creates an account and its master key. Registration may be switched off by configuration (403). When `REQUIRE_EMAIL_VERIFICATION` is on, a verification link (valid 24 hours) is emailed, and until it is used the account's keys are refused on the relay's routes (reason `unverified`) while its `/auth` routes work.",
            tag: "account",
            key: false,
            body: Some(("NewAccount", credentials)),
            path_parameter: None,
            success: (201, "The account and its master key", "Registered", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "createdAt": created, "subscriptionStatus": "free"})),
            errors: [public(RequestError::Required(Required::EmailAndPassword)), public(AuthError::InvalidEmail)]
                .into_iter()
                .chain(password_rules())
                .chain([public(AuthError::RegistrationDisabled), public(AuthError::UserExists)])
                .collect(),
            throttles: &[Rule::AuthPerAddress],
        },
        Login => Spec {
            summary: "Sign in",
            description: "Answers the account's current master key. An unknown email and a wrong password get the same 401, in the same time.",
            tag: "account",
            key: false,
            body: Some(("Credentials", credentials)),
            path_parameter: None,
            success: (200, "The account and its master key", "LoggedIn", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "apiKeyAvailable": true, "requestsThisMonth": 0, "createdAt": created})),
            errors: vec![
                public(RequestError::Required(Required::EmailAndPassword)),
                public(AuthError::InvalidCredentials),
            ],
            throttles: &[Rule::AuthPerAddress, Rule::AccountFailures],
        },
        RegenerateKey => Spec {
            summary: "Replace the master key",
            description: "A new master key; at that moment the old master key and every scoped key of the account stop working.",
            tag: "account",
            key: false,
            body: Some(("Credentials", credentials)),
            path_parameter: None,
            success: (200, "The new master key", "RegeneratedKey", json!({"apiKey": MASTER_KEY_EXAMPLE})),
            errors: vec![
                public(RequestError::Required(Required::EmailAndPassword)),
                public(AuthError::InvalidCredentials),
            ],
            throttles: &[Rule::AuthPerAddress, Rule::AccountFailures],
        },
        UserData => Spec {
            summary: "The account, its usage and its limits",
            description: "`apiKey` is the key presented; `limits` come from configuration. `emailVerified` is false only for an account registered while email verification is required and not verified yet. `legacyKey`: the key presented came from the Node relay; it stops working at `legacyKeysUntil` (`LEGACY_KEYS_UNTIL`, `null`: no end set), after which it is refused with reason `legacy`: regenerate it.",
            tag: "account",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The account", "UserData", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "requestsThisMonth": 0, "requestsToday": 0, "subscriptionStatus": "free", "emailVerified": true, "limits": {"dailyLimit": 1000, "monthlyLimit": 100, "unlimitedMonthly": false}, "legacyKey": false, "legacyKeysUntil": null})),
            errors: vec![],
            throttles: &[],
        },
        Activity => Spec {
            summary: "The account's recent security events",
            description: "The 50 newest, newest first, of the last 90 days: logins (succeeded, failed, locked), \
password changes and resets, master key regenerations, scoped key changes, the import of the account. Each with \
its time, what happened, its outcome and where from (the client address and user agent as the gateway saw \
them). The master key only.",
            tag: "account",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The events", "ActivityList", json!({"events": [
                {"at": "2026-11-26T01:50:00Z", "event": "login-failed", "outcome": "failure", "scopedKeyId": null, "address": "203.0.113.7", "userAgent": "Mozilla/5.0", "requestId": "CgJ3vhqpDoEEMfw="},
                {"at": "2026-11-26T01:40:00Z", "event": "scoped-key-created", "outcome": "success", "scopedKeyId": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "address": "198.51.100.23", "userAgent": "foundry-rest-api-relay/2.1", "requestId": "CgJ3rhqpDoEEMfw="},
            ]})),
            errors: vec![],
            throttles: &[],
        },
        ExportData => Spec {
            summary: "Download everything kept about the account",
            description: "No secret of any kind: keys appear only as their prefix. Answered with `cache-control: no-store`.",
            tag: "account",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The export", "DataExport", json!({
                "exportDate": "2026-11-26T02:00:00Z",
                "user": {"id": id, "email": EMAIL_EXAMPLE, "createdAt": created, "updatedAt": created},
                "subscription": {"status": "free", "stripeCustomerId": null, "subscriptionId": null},
                "usage": {"requestsThisMonth": 3, "requestsToday": 1, "lastRequestDate": "2026-11-26T01:50:00Z"},
                "apiAccess": {"keyPrefix": "frm_IFAn", "createdAt": created},
                "scopedKeys": [],
                "activity": [],
            })),
            errors: vec![],
            throttles: &[Rule::AccountManagement],
        },
        DeleteAccount => Spec {
            summary: "Delete the account and everything of it",
            description: "User, email, master key, scoped keys, reset tokens, usage and stored Foundry credentials are gone; any key of the account answers 401 from then on.",
            tag: "account",
            key: true,
            body: Some(("AccountDeletion", json!({"confirmEmail": EMAIL_EXAMPLE, "password": PASSWORD_EXAMPLE}))),
            path_parameter: None,
            success: (200, "Deleted", "Deleted", json!({"success": true, "message": "Account successfully deleted"})),
            errors: vec![
                public(AuthError::EmailConfirmationRequired),
                public(AuthError::PasswordRequired),
                public(AuthError::InvalidPassword),
            ],
            throttles: &[Rule::AccountManagement, Rule::AccountFailures],
        },
        ChangePassword => Spec {
            summary: "Change the password",
            description: "Checks, in this order: both fields given, the current password, the rule on the new one. Every outstanding reset token stops working and a notification email goes to the account.",
            tag: "account",
            key: true,
            body: Some(("PasswordChange", json!({"currentPassword": PASSWORD_EXAMPLE, "newPassword": "Fresh-Start-2027"}))),
            path_parameter: None,
            success: (200, "Changed", "Message", json!({"message": "Password changed successfully"})),
            errors: [public(RequestError::Required(Required::CurrentAndNewPassword))]
                .into_iter()
                .chain(password_rules())
                .chain([public(AuthError::CurrentPasswordIncorrect)])
                .collect(),
            throttles: &[Rule::AccountManagement, Rule::AccountFailures],
        },
        ForgotPassword => Spec {
            summary: "Email a password reset link",
            description: "The same 200 for known and unknown emails, in the same time. For a known account a new token (valid one hour) voids every earlier one; the link is the configured reset page with `?reset-token=`, and `&revoke-keys=1` when `keyLeaked` is `true` (the page then offers `revokeKeys` ticked).",
            tag: "password reset",
            key: false,
            body: Some(("ResetRequest", json!({"email": EMAIL_EXAMPLE}))),
            path_parameter: None,
            success: (200, "Always the same answer", "Message", json!({"message": "If an account with that email exists, a password reset link has been sent."})),
            errors: vec![public(RequestError::Required(Required::Email))],
            throttles: &[Rule::ResetPerAddress],
        },
        ResetPassword => Spec {
            summary: "Set a new password with an emailed token",
            description: "The token is used up atomically and every other token of the account stops working. The API keys are unchanged, unless `revokeKeys` is `true`: then the same write replaces the master key, the old one and every scoped key stop working, and `apiKey` is the new master key.",
            tag: "password reset",
            key: false,
            body: Some(("PasswordReset", json!({"token": "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e", "password": "Fresh-Start-2027"}))),
            path_parameter: None,
            success: (200, "Reset", "PasswordResetDone", json!({"message": "Password has been reset successfully", "apiKey": null})),
            errors: [public(RequestError::Required(Required::TokenAndPassword))]
                .into_iter()
                .chain(password_rules())
                .chain([public(AuthError::InvalidResetToken)])
                .collect(),
            throttles: &[Rule::ResetPerAddress],
        },
        ValidateResetToken => Spec {
            summary: "Whether a reset token is still good",
            description: "Never consumes the token.",
            tag: "password reset",
            key: false,
            body: None,
            path_parameter: Some(("token", "The token of the emailed link", "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e")),
            success: (200, "`valid` is false for an unknown, used, superseded or expired token", "TokenValidity", json!({"valid": true})),
            errors: vec![],
            throttles: &[Rule::ResetPerAddress],
        },
        CreateApiKey => Spec {
            summary: "Make a scoped key",
            description: "The key is shown in this answer once and never again. `foundryPassword` is stored only encrypted, bound to the account and the key. Without `scopes` the key gets the relay's read-only default set; `[]` grants nothing.",
            tag: "scoped keys",
            key: true,
            body: Some(("NewScopedKey", json!({"name": "Discord bot", "monthlyLimit": 500, "scopes": ["roll:read", "chat:read"]}))),
            path_parameter: None,
            success: (201, "The new key", "CreatedScopedKey", json!({"id": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede", "key": "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi", "name": "Discord bot", "scopedClientId": null, "scopedUserId": null, "scopes": ["roll:read", "chat:read"], "scopedClientIds": [], "scopedUserIds": {}, "monthlyLimit": 500, "dailyLimit": null, "expiresAt": null, "hasFoundryCredentials": false, "enabled": true, "createdAt": created})),
            errors: vec![
                public(AuthError::NameRequired),
                public(AuthError::InvalidField(Field::NameTooLong)),
                public(AuthError::InvalidField(Field::MonthlyLimit)),
                public(AuthError::InvalidField(Field::DailyLimit)),
                public(AuthError::InvalidField(Field::ExpiresAt)),
                public(AuthError::InvalidField(Field::FoundryUrl)),
                public(AuthError::InvalidField(Field::TooLong("scopedClientId"))),
                public(AuthError::InvalidScopes("roll:fly".into())),
                public(AuthError::InvalidField(Field::ClientIds)),
                public(AuthError::InvalidField(Field::UserIds)),
                public(AuthError::ScopedKeyLimit(SCOPED_KEYS_PER_ACCOUNT_EXAMPLE)),
            ],
            throttles: &[],
        },
        ListApiKeys => Spec {
            summary: "The account's scoped keys",
            description: "Oldest first; `key` is only the key's prefix followed by `...`. `scopes` is `null` for a key made before scopes: it holds every scope until it is narrowed.",
            tag: "scoped keys",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The keys", "ScopedKeyList", json!({"keys": [listed]})),
            errors: vec![],
            throttles: &[],
        },
        Verify => Spec {
            summary: "Decide and count one request of a key (for the relay)",
            description: "The relay's key check: the same decision as the gateway's authorizer \
(key, revocation, expiry, client and user binding, scope, every cap), counted the same way (a refused \
request is never counted). A refusal is answered 200 `valid: false` with its `reason`, so that \
the relay can answer its own 401 / 429 as it always has. Costs two DynamoDB calls when admitted; \
a malformed key none.",
            tag: "relay",
            key: false,
            body: Some(("VerifyRequest", json!({"key": "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi", "clientId": "fvtt_a1b2c3"}))),
            path_parameter: None,
            success: (200, "The verdict", "Verification", json!({
                "valid": true, "userId": id, "keyType": "scoped", "scopedKeyId": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede",
                "scopedClientId": "fvtt_a1b2c3", "scopedUserId": "", "scopes": "roll:read chat:read", "requestsThisMonth": 12, "requestsToday": 3,
                "monthlyLimit": 500, "dailyLimit": "", "expiresAt": null, "subscriptionStatus": "free",
                "foundryUrl": null, "foundryUsername": null, "foundryPassword": null
            })),
            errors: vec![
                public(RequestError::Required(Required::Key)),
                public(AuthError::InvalidField(Field::Cost)),
                public(AuthError::InvalidScopes("roll:fly".into())),
                public(RequestError::InvalidBody("method and path go together".into())),
                public(AuthError::ServiceKeyRequired),
                (404, ErrorCode::NotFound, NOT_FOUND.into()),
            ],
            throttles: &[Rule::ServiceKeyFailures],
        },
        VerifyEmail => Spec {
            summary: "Verify the account's email with an emailed token",
            description: "The token of the verification link (valid 24 hours, single use; a newer link supersedes it). From then on the account's keys work on the relay's routes. A completed password reset verifies the email too.",
            tag: "account",
            key: false,
            body: Some(("EmailVerification", json!({"token": "9d0c1e6a4b7f3a2e8c5d1f0b6a9e7c3d2b8f4a1e6c0d9b7a5f3e2c1d0b9a8f7e"}))),
            path_parameter: None,
            success: (200, "Verified", "Message", json!({"message": crate::domain::verification::VERIFIED})),
            errors: vec![public(RequestError::Required(Required::Token)), public(AuthError::InvalidVerificationToken)],
            throttles: &[Rule::AuthPerAddress],
        },
        ResendVerification => Spec {
            summary: "Email the verification link again",
            description: "A new link (valid 24 hours) that supersedes the previous one, for an account whose email is not verified yet.",
            tag: "account",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "Sent", "Message", json!({"message": crate::domain::verification::RESENT})),
            errors: vec![public(AuthError::EmailAlreadyVerified)],
            throttles: &[Rule::VerificationEmails],
        },
        UpdateApiKey => Spec {
            summary: "Change a scoped key",
            description: "Its scopes, name, caps, expiry, state and clients, with the rules of creating one; the key itself, its id and its counters stay. Absent fields stay as they are; `null` removes a cap or the expiry. From the next request on, the authorizer and verify decide by the new settings. An unknown id, a malformed id, another account's key and a key retired with an older master key are all 404.",
            tag: "scoped keys",
            key: true,
            body: Some(("ScopedKeyChange", json!({"scopes": ["roll:read"], "dailyLimit": 200, "expiresAt": null}))),
            path_parameter: Some(("id", "The scoped key's id", "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede")),
            success: (200, "The key as changed, as listed", "ListedScopedKey", changed),
            errors: vec![
                public(AuthError::NameRequired),
                public(AuthError::InvalidField(Field::NameTooLong)),
                public(AuthError::InvalidField(Field::MonthlyLimit)),
                public(AuthError::InvalidField(Field::DailyLimit)),
                public(AuthError::InvalidField(Field::ExpiresAt)),
                public(AuthError::InvalidScopes("roll:fly".into())),
                public(AuthError::InvalidField(Field::ClientIds)),
                public(AuthError::InvalidField(Field::UserIds)),
                public(AuthError::ApiKeyNotFound),
            ],
            throttles: &[],
        },
        DeleteApiKey => Spec {
            summary: "Revoke a scoped key",
            description: "From that moment the key answers 401. An unknown id, a malformed id and another account's key are all 404.",
            tag: "scoped keys",
            key: true,
            body: None,
            path_parameter: Some(("id", "The scoped key's id", "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede")),
            success: (200, "Deleted", "Deleted", json!({"success": true, "message": "API key deleted"})),
            errors: vec![public(AuthError::ApiKeyNotFound)],
            throttles: &[],
        },
    }
}

/// Contains a character that trimming keeps.
const NOT_ONLY_WHITESPACE: &str = concat!("[^", white_space!(), "]");

/// The body of POST /auth/api-keys (`change: false`) and of PATCH /auth/api-keys/{id}
/// (`change: true`), written out because `monthlyLimit` and `dailyLimit` take a number or a
/// string of digits (`bodies::Positive`), and because `null` means "absent" in one and
/// "remove" in the other.
pub(super) fn scoped_key_schema(change: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::SchemaType;
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(MAX_TEXT_CHARS))
            .description(Some(description))
    };
    let id = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_TEXT_CHARS))
            .pattern(Some(NOT_ONLY_WHITESPACE))
    };
    let removes = if change { "; `null` removes it" } else { "" };
    let positive = |description: &str| -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(usize::try_from(u64::MAX).unwrap_or(usize::MAX))),
            )
            .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^0*[1-9][0-9]{0,18}$")))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(format!("{description}{removes}")))
            .into()
    };
    // In a change, `null` is as absent (a new key needs its name).
    let name = ObjectBuilder::new()
        .schema_type(if change { SchemaType::from_iter([Type::String, Type::Null]) } else { Type::String.into() })
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(NOT_ONLY_WHITESPACE))
        .description(Some(format!("1 to {MAX_NAME_CHARS} characters after trimming")))
        .examples([json!("Discord bot")]);
    let scopes = if change {
        "The key's new scopes (`[]`: nothing)"
    } else {
        "The key's scopes; absent or `null`: the relay's read-only default set; `[]`: nothing"
    };
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    object = if change {
        object
            .description(Some(
                "What to change: absent fields (and `null` ones other than the caps and the expiry) stay as they are.",
            ))
            .property("name", name)
    } else {
        object
            .description(Some(
                "A scoped key. Absent and `null` optional fields are the same; empty strings count as absent.",
            ))
            .property("name", name)
            .required("name")
            .property("scopedClientId", text("The Foundry client the key is for"))
            .property("scopedUserId", text("The Foundry user the key is for"))
    };
    object = object
        .property("scopes", fields::scopes(scopes))
        .property(
            "monthlyLimit",
            positive(
                "The key's cap on requests per UTC month: a positive whole number, as a number or a string of digits",
            ),
        )
        .property(
            "dailyLimit",
            positive(
                "The key's cap on requests per UTC day: a positive whole number, as a number or a string of digits",
            ),
        )
        .property(
            "expiresAt",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
                .description(Some(format!("An RFC 3339 timestamp in the future{removes}")))
                .examples([json!("2030-01-01T00:00:00Z")]),
        )
        .property(
            "scopedClientIds",
            utoipa::openapi::schema::ArrayBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
                .items(id())
                .max_items(Some(MAX_CLIENTS))
                .unique_items(true)
                .description(Some(format!(
                    "The Foundry clients the key serves, at most {MAX_CLIENTS}, each once (when not empty, instead of `scopedClientId`; `[]`: none)"
                ))),
        )
        .property(
            "scopedUserIds",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
                .additional_properties(Some(id()))
                .property_names(Some(id()))
                .max_properties(Some(MAX_CLIENTS))
                .description(Some(format!(
                    "The Foundry user the key acts as, per client id, at most {MAX_CLIENTS} (`{{}}`: none)"
                ))),
        );
    if change {
        return object
            .property(
                "enabled",
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Boolean, Type::Null])).description(Some(
                    "`false`: the key is refused (reason `disabled`) until it is enabled again; `null` as absent",
                )),
            )
            .build();
    }
    object
        .property(
            "foundryUrl",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(utoipa::openapi::SchemaFormat::Custom("http-url".into())))
                .max_length(Some(MAX_TEXT_CHARS * 8))
                .pattern(Some(http_url_pattern()))
                .description(Some(
                    "An `http` or `https` URL with a host name, IPv4 or IPv6 address, an optional port and a path \
                     of unreserved or percent-encoded characters (format `http-url`), trimmed; empty counts as absent",
                ))
                .examples([json!("https://foundry.example.com")]),
        )
        .property("foundryUsername", text("The Foundry user name to sign in with"))
        .property("foundryPassword", text("The Foundry password; stored only encrypted and never shown again"))
        .build()
}
