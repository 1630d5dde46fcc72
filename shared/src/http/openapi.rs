//! The OpenAPI 3.1 description of the routes, generated from the code: the paths,
//! methods and operation ids come from the route table ([`Endpoint`]), the response bodies
//! from the types the handlers answer with (`http::schema`), the error codes from
//! [`ErrorCode`], the limits from the constants the validation uses. Served by the local
//! server at `GET /openapi.json` and committed as `openapi.json` at the repository root
//! (a test compares the two; `cargo run -p local -- --write-openapi openapi.json` rewrites it).
//!
//! Built only with the `openapi` feature, which the local server enables: the Lambda
//! functions link none of it.

use crate::domain::scoped::{MAX_NAME_CHARS, MAX_TEXT_CHARS};
use crate::http::request::API_KEY_HEADER;
use crate::http::routes::Endpoint;
use crate::http::schema::{
    CreatedScopedKey, DataExport, Deleted, ErrorBody, ErrorCode, LoggedIn, Message, RegeneratedKey, Registered,
    ScopedKeyList, TokenValidity, UserData,
};
use crate::http::UNAVAILABLE_RETRY_AFTER_SECONDS;
use serde_json::{json, Value};
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, HttpMethod, InfoBuilder, LicenseBuilder, ObjectBuilder, OpenApi, Paths, Ref, Required,
    ResponseBuilder, Type,
};
use utoipa::{OpenApi as _, ToSchema};

/// The security scheme of every key-authenticated route.
const MASTER_KEY: &str = "masterKey";
/// The security scheme of `/auth/verify`.
const SERVICE_KEY: &str = "serviceKey";

const MASTER_KEY_EXAMPLE: &str = "frm_IFAn33AjJyE6832Q4SH6bZs9OFVPpdCai87q0bJ792";
const EMAIL_EXAMPLE: &str = "gm@example.com";
const PASSWORD_EXAMPLE: &str = "Dragon-Hoard-2026";

/// `{email, password}` of register: a new account.
#[derive(ToSchema)]
#[allow(dead_code)]
struct NewAccount {
    /// A syntactically valid address (trimmed; unique case-insensitively).
    #[schema(format = "email", max_length = 254, example = "gm@example.com")]
    email: String,
    /// 8 to 128 characters with an uppercase letter, a lowercase letter and a digit, and
    /// not one of the 10,000 most common passwords. Never trimmed.
    #[schema(format = Password, min_length = 8, max_length = 128, example = "Dragon-Hoard-2026")]
    password: String,
}

/// `{email, password}` of login and regenerate-key.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Credentials {
    #[schema(min_length = 1, example = "gm@example.com")]
    email: String,
    #[schema(format = Password, min_length = 1, example = "Dragon-Hoard-2026")]
    password: String,
}

/// DELETE /auth/account
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct AccountDeletion {
    /// The account's email (compared trimmed, case-insensitively).
    #[schema(min_length = 1, example = "gm@example.com")]
    confirm_email: String,
    #[schema(format = Password, min_length = 1, example = "Dragon-Hoard-2026")]
    password: String,
}

/// POST /auth/change-password
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct PasswordChange {
    #[schema(format = Password, min_length = 1, example = "Dragon-Hoard-2026")]
    current_password: String,
    /// The password rule of register applies.
    #[schema(format = Password, min_length = 8, max_length = 128, example = "Fresh-Start-2027")]
    new_password: String,
}

/// POST /auth/forgot-password
#[derive(ToSchema)]
#[allow(dead_code)]
struct ResetRequest {
    #[schema(min_length = 1, example = "gm@example.com")]
    email: String,
}

/// POST /auth/reset-password
#[derive(ToSchema)]
#[allow(dead_code)]
struct PasswordReset {
    /// The token of the emailed link (`reset-token`).
    #[schema(min_length = 1, example = "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e")]
    token: String,
    /// The password rule of register applies (checked before the token).
    #[schema(format = Password, min_length = 8, max_length = 128, example = "Fresh-Start-2027")]
    password: String,
}

/// POST /auth/verify
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
struct VerifyRequest {
    /// The key the relay's client presented in `x-api-key`, as it was; `""` when it
    /// presented none (answered `valid: false`, reason `missing`).
    #[schema(example = "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi")]
    key: String,
    /// The Foundry client the request targets (the relay's `clientId`): a key bound to
    /// another client is refused with reason `client`.
    #[schema(example = "fvtt_a1b2c3")]
    client_id: Option<String>,
    /// The Foundry user the request acts as: a key bound to another is refused (`user`).
    user_id: Option<String>,
    /// How many requests this one counts as; admitted only when every cap has room for all of it.
    #[schema(minimum = 1, maximum = 1000, default = 1)]
    cost: Option<u64>,
    /// `false`: decide without counting (for a relay that caches the answer and reports
    /// its usage later with `cost`).
    #[schema(default = true)]
    count: Option<bool>,
    /// `true`: a valid scoped key's answer carries its Foundry login, the password decrypted.
    #[schema(default = false)]
    credentials: Option<bool>,
}

/// The document: see the module's comment.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorBody,
    ErrorCode,
    Registered,
    LoggedIn,
    RegeneratedKey,
    UserData,
    DataExport,
    Message,
    Deleted,
    TokenValidity,
    CreatedScopedKey,
    ScopedKeyList,
    NewAccount,
    Credentials,
    AccountDeletion,
    PasswordChange,
    ResetRequest,
    PasswordReset,
    crate::http::schema::AuthorizerContext,
    crate::http::schema::Verification,
    crate::http::schema::VerifiedKey,
    crate::http::schema::RefusedKey,
    crate::http::schema::Reason,
    VerifyRequest,
)))]
struct Components;

/// The schemas of request bodies: the only ones whose optional fields may be left out.
const REQUEST_SCHEMAS: [&str; 8] = [
    "NewAccount",
    "Credentials",
    "AccountDeletion",
    "PasswordChange",
    "ResetRequest",
    "PasswordReset",
    "NewScopedKey",
    "VerifyRequest",
];

/// The document as JSON, pretty-printed with a final newline: the bytes of `openapi.json`.
pub fn document_json() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// The document as a JSON value.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(openapi()).unwrap_or(Value::Null);
    finish(&mut doc);
    doc
}

fn openapi() -> OpenApi {
    let mut doc = Components::openapi();
    doc.info = InfoBuilder::new()
        .title("Foundry REST relay: Auth API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .license(Some(LicenseBuilder::new().name("MIT").identifier(Some("MIT")).build()))
        .build();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            MASTER_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                API_KEY_HEADER,
                "The account's master key (`frm_…`). A scoped key (`frs_…`) is refused on every \
                 `/auth` route with 403 `master_key_required`; scoped keys are for the relay's own \
                 routes, behind the authorizer (see the `AuthorizerContext` schema). A key in the \
                 query string is never accepted.",
            ))),
        );
        components.add_security_scheme(
            SERVICE_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A relay's service key (`fsv_…`), as `authorization: Bearer <key>`; the service \
                         keeps only its SHA-256 (`SERVICE_KEY_DIGESTS`). Without one configured, \
                         `/auth/verify` answers 404.",
                    ))
                    .build(),
            ),
        );
        components.schemas.insert("NewScopedKey".into(), new_scoped_key_schema().into());
    }
    doc.tags = Some(
        [
            ("account", "Registering, signing in and the account itself"),
            ("password reset", "Resetting a forgotten password by email"),
            ("scoped keys", "Keys with a scope and limits, made by the master key"),
            ("relay", "The relay asks whether a key may make a request"),
        ]
        .into_iter()
        .map(|(name, description)| TagBuilder::new().name(name).description(Some(description)).build())
        .collect(),
    );
    let mut paths = Paths::new();
    for endpoint in Endpoint::ALL {
        let method = match endpoint.method().as_str() {
            "GET" => HttpMethod::Get,
            "DELETE" => HttpMethod::Delete,
            _ => HttpMethod::Post,
        };
        paths.add_path_operation(endpoint.path(), vec![method], operation(endpoint));
    }
    doc.paths = paths;
    doc
}

const DESCRIPTION: &str = "The authentication and API-key service of the Foundry VTT REST relay. \
JSON in, JSON out; every answer has `content-type: application/json` and `cache-control: no-store`. \
Every error body is `{error, code}`: `error` is the message the relay's clients know, `code` a \
stable machine-readable value (`ErrorCode`). A body over 16 KiB is answered 413; malformed JSON \
400 `invalid_json`; a body that is JSON but not an object, or a field of the wrong type, 400 \
`invalid_body` naming the field; a content type other than JSON 400 `unsupported_content_type` \
(a missing content type is read as JSON). Throttled requests are answered 429 `rate_limited` with \
`retry-after` and `ratelimit-limit` / `ratelimit-remaining` / `ratelimit-reset` (seconds); a busy \
or failing dependency 503 `service_unavailable` with `retry-after` (nothing was half-written: the \
same request may be sent again). Timestamps are ISO 8601 UTC with whole seconds; ids are UUIDs.";

/// How one endpoint is described: its words, its body, its answers.
fn operation(endpoint: Endpoint) -> utoipa::openapi::path::Operation {
    use Endpoint::*;
    let spec = spec(endpoint);
    let mut op = OperationBuilder::new()
        .operation_id(Some(endpoint.function_name()))
        .summary(Some(spec.summary))
        .description(Some(spec.description))
        .tag(spec.tag);
    let has_body = spec.body.is_some();
    if let Some((schema, example)) = spec.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).example(Some(example)).build(),
                )
                .required(Some(Required::True))
                .build(),
        ));
    }
    if let Some((name, description, example)) = spec.path_parameter {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
                .example(Some(json!(example))),
        );
    }
    let success = ResponseBuilder::new().description(spec.success.1).content(
        "application/json",
        ContentBuilder::new().schema(Some(Ref::from_schema_name(spec.success.2))).example(Some(spec.success.3)).build(),
    );
    let success = match endpoint {
        ExportData => success.header("cache-control", header("`no-store`: the export is personal data", Type::String)),
        // The key an account gets is the key of every other route: links let clients (and
        // stateful testing) follow it.
        Register | Login | RegenerateKey => {
            [UserData, ExportData, CreateApiKey, ListApiKeys, ChangePassword, DeleteAccount].into_iter().fold(
                success,
                |response, target| {
                    response.link(
                        target.function_name(),
                        LinkBuilder::new()
                            .operation_id(target.function_name())
                            .parameter(format!("header.{API_KEY_HEADER}"), "$response.body#/apiKey")
                            .description("Use the master key of this answer")
                            .build(),
                    )
                },
            )
        }
        CreateApiKey => success.link(
            DeleteApiKey.function_name(),
            LinkBuilder::new()
                .operation_id(DeleteApiKey.function_name())
                .parameter("path.id", "$response.body#/id")
                .parameter(format!("header.{API_KEY_HEADER}"), format!("$request.header.{API_KEY_HEADER}"))
                .description("Revoke the key just made")
                .build(),
        ),
        _ => success,
    };
    let mut op = op.response(spec.success.0.to_string(), success.build());
    let keyed = spec.key;
    if keyed {
        op = op.security(SecurityRequirement::new(MASTER_KEY, Vec::<String>::new()));
    }
    if endpoint == Verify {
        op = op.security(SecurityRequirement::new(SERVICE_KEY, Vec::<String>::new()));
    }
    let mut errors: Vec<(u16, Vec<(ErrorCode, &str)>)> = Vec::new();
    let mut add =
        |status: u16, code: ErrorCode, message: &'static str| match errors.iter_mut().find(|(s, _)| *s == status) {
            Some((_, codes)) => codes.push((code, message)),
            None => errors.push((status, vec![(code, message)])),
        };
    if has_body {
        add(400, ErrorCode::InvalidJson, "Invalid JSON format");
        add(400, ErrorCode::InvalidBody, "Request body must be a JSON object");
        add(400, ErrorCode::UnsupportedContentType, "Content-Type must be application/json");
    }
    for (status, code, message) in spec.errors {
        add(*status, *code, message);
    }
    if keyed {
        add(401, ErrorCode::ApiKeyRequired, "API key is required");
        add(401, ErrorCode::InvalidApiKey, "Invalid API key");
        if endpoint == CreateApiKey {
            add(
                403,
                ErrorCode::MasterKeyRequired,
                "Scoped keys cannot create other scoped keys. Use your master API key.",
            );
        } else {
            add(403, ErrorCode::MasterKeyRequired, "Use your master API key to manage scoped keys.");
        }
    }
    if has_body {
        add(413, ErrorCode::PayloadTooLarge, "Request body is too large");
    }
    for message in spec.throttles {
        add(429, ErrorCode::RateLimited, message);
    }
    add(503, ErrorCode::ServiceUnavailable, "Service temporarily unavailable");
    errors.sort_by_key(|(status, _)| *status);
    for (status, codes) in errors {
        op = op.response(status.to_string(), error_response(status, &codes));
    }
    op.build()
}

fn header(description: &str, ty: Type) -> utoipa::openapi::header::Header {
    let schema = match ty {
        Type::Integer => ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build(),
        _ => ObjectBuilder::new().schema_type(ty).build(),
    };
    utoipa::openapi::header::HeaderBuilder::new().schema(schema).description(Some(description)).build()
}

fn error_response(status: u16, codes: &[(ErrorCode, &str)]) -> utoipa::openapi::Response {
    let description = match status {
        400 => "The request is not acceptable",
        401 => "Not authenticated",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        413 => "The body is over 16 KiB",
        429 => "Throttled: try again after `retry-after` seconds",
        _ => "A dependency is busy or failing: try again after `retry-after` seconds",
    };
    let examples = codes.iter().enumerate().map(|(i, (code, message))| {
        let name = if codes[..i].iter().any(|(c, _)| c == code) {
            format!("{}_{i}", code.as_str())
        } else {
            code.as_str().to_owned()
        };
        (
            name,
            ExampleBuilder::new()
                .summary(*message)
                .value(Some(json!({"error": message, "code": code.as_str()})))
                .build(),
        )
    });
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).examples_from_iter(examples).build(),
    );
    if status == 429 {
        response = response
            .header("retry-after", header("Seconds until a retry may succeed", Type::Integer))
            .header("ratelimit-limit", header("The limit that was reached", Type::Integer))
            .header("ratelimit-remaining", header("Always `0` on a 429", Type::Integer))
            .header("ratelimit-reset", header("Seconds until the limit admits a request again", Type::Integer));
    }
    if status == 503 {
        response = response.header(
            "retry-after",
            header(
                &format!("Seconds to wait before sending the same request again ({UNAVAILABLE_RETRY_AFTER_SECONDS})"),
                Type::Integer,
            ),
        );
    }
    response.build()
}

/// What [`operation`] needs to know of one endpoint beyond the route table.
struct Spec {
    summary: &'static str,
    description: &'static str,
    tag: &'static str,
    /// Takes the master key in `x-api-key`.
    key: bool,
    /// The request body's schema name and an example.
    body: Option<(&'static str, Value)>,
    path_parameter: Option<(&'static str, &'static str, &'static str)>,
    /// Status, description, schema name and example of the success.
    success: (u16, &'static str, &'static str, Value),
    /// The endpoint's own errors (besides those of its body, its key and 503).
    errors: &'static [(u16, ErrorCode, &'static str)],
    /// The messages of the throttles that apply.
    throttles: &'static [&'static str],
}

const AUTH_PER_ADDRESS: &str = "Too many authentication attempts from this IP, please try again after 15 minutes";
const ACCOUNT_FAILURES: &str = "Too many failed attempts, please try again later";
const RESET_PER_ADDRESS: &str = "Too many password reset attempts from this IP, please try again later";
const ACCOUNT_MANAGEMENT: &str = "Too many account management requests, please try again later";
const SERVICE_KEY_FAILURES: &str = "Too many requests with a wrong service key from this IP, please try again later";

const PASSWORD_RULE: [(u16, ErrorCode, &str); 6] = [
    (400, ErrorCode::PasswordTooShort, "Password must be at least 8 characters long"),
    (400, ErrorCode::PasswordNoUppercase, "Password must contain at least one uppercase letter"),
    (400, ErrorCode::PasswordNoLowercase, "Password must contain at least one lowercase letter"),
    (400, ErrorCode::PasswordNoNumber, "Password must contain at least one number"),
    (400, ErrorCode::PasswordTooLong, "Password must be at most 128 characters long"),
    (400, ErrorCode::PasswordTooCommon, "Password is too common"),
];

fn spec(endpoint: Endpoint) -> Spec {
    use Endpoint::*;
    let credentials = json!({"email": EMAIL_EXAMPLE, "password": PASSWORD_EXAMPLE});
    let id = "71ea7eec-a986-4a81-85a4-195cc03e88da";
    let created = "2026-11-26T01:38:49Z";
    match endpoint {
        Register => Spec {
            summary: "Create an account",
            description: "Creates an account and its master key. Registration may be switched off by configuration (403).",
            tag: "account",
            key: false,
            body: Some(("NewAccount", credentials)),
            path_parameter: None,
            success: (201, "The account and its master key", "Registered", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "createdAt": created, "subscriptionStatus": "free"})),
            errors: &REGISTER_ERRORS,
            throttles: &[AUTH_PER_ADDRESS],
        },
        Login => Spec {
            summary: "Sign in",
            description: "Answers the account's current master key. An unknown email and a wrong password get the same 401, in the same time.",
            tag: "account",
            key: false,
            body: Some(("Credentials", credentials)),
            path_parameter: None,
            success: (200, "The account and its master key", "LoggedIn", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "requestsThisMonth": 0, "createdAt": created})),
            errors: &[
                (400, ErrorCode::MissingFields, "Email and password are required"),
                (401, ErrorCode::InvalidCredentials, "Invalid credentials"),
            ],
            throttles: &[AUTH_PER_ADDRESS, ACCOUNT_FAILURES],
        },
        RegenerateKey => Spec {
            summary: "Replace the master key",
            description: "A new master key; at that moment the old master key and every scoped key of the account stop working.",
            tag: "account",
            key: false,
            body: Some(("Credentials", credentials)),
            path_parameter: None,
            success: (200, "The new master key", "RegeneratedKey", json!({"apiKey": MASTER_KEY_EXAMPLE})),
            errors: &[
                (400, ErrorCode::MissingFields, "Email and password are required"),
                (401, ErrorCode::InvalidCredentials, "Invalid credentials"),
            ],
            throttles: &[AUTH_PER_ADDRESS, ACCOUNT_FAILURES],
        },
        UserData => Spec {
            summary: "The account, its usage and its limits",
            description: "`apiKey` is the key presented; `limits` come from configuration.",
            tag: "account",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The account", "UserData", json!({"id": id, "email": EMAIL_EXAMPLE, "apiKey": MASTER_KEY_EXAMPLE, "requestsThisMonth": 0, "requestsToday": 0, "subscriptionStatus": "free", "limits": {"dailyLimit": 1000, "monthlyLimit": 100, "unlimitedMonthly": false}})),
            errors: &[],
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
            })),
            errors: &[],
            throttles: &[ACCOUNT_MANAGEMENT],
        },
        DeleteAccount => Spec {
            summary: "Delete the account and everything of it",
            description: "User, email, master key, scoped keys, reset tokens, usage and stored Foundry credentials are gone; any key of the account answers 401 from then on.",
            tag: "account",
            key: true,
            body: Some(("AccountDeletion", json!({"confirmEmail": EMAIL_EXAMPLE, "password": PASSWORD_EXAMPLE}))),
            path_parameter: None,
            success: (200, "Deleted", "Deleted", json!({"success": true, "message": "Account successfully deleted"})),
            errors: &[
                (400, ErrorCode::EmailConfirmationRequired, "Email confirmation required"),
                (400, ErrorCode::MissingFields, "Password required"),
                (401, ErrorCode::InvalidPassword, "Invalid password"),
            ],
            throttles: &[ACCOUNT_MANAGEMENT, ACCOUNT_FAILURES],
        },
        ChangePassword => Spec {
            summary: "Change the password",
            description: "Checks, in this order: both fields given, the current password, the rule on the new one. Every outstanding reset token stops working and a notification email goes to the account.",
            tag: "account",
            key: true,
            body: Some(("PasswordChange", json!({"currentPassword": PASSWORD_EXAMPLE, "newPassword": "Fresh-Start-2027"}))),
            path_parameter: None,
            success: (200, "Changed", "Message", json!({"message": "Password changed successfully"})),
            errors: &CHANGE_PASSWORD_ERRORS,
            throttles: &[ACCOUNT_MANAGEMENT, ACCOUNT_FAILURES],
        },
        ForgotPassword => Spec {
            summary: "Email a password reset link",
            description: "The same 200 for known and unknown emails, in the same time. For a known account a new token (valid one hour) voids every earlier one; the link is the configured reset page with `?reset-token=`.",
            tag: "password reset",
            key: false,
            body: Some(("ResetRequest", json!({"email": EMAIL_EXAMPLE}))),
            path_parameter: None,
            success: (200, "Always the same answer", "Message", json!({"message": "If an account with that email exists, a password reset link has been sent."})),
            errors: &[(400, ErrorCode::MissingFields, "Email is required")],
            throttles: &[RESET_PER_ADDRESS],
        },
        ResetPassword => Spec {
            summary: "Set a new password with an emailed token",
            description: "The token is used up atomically and every other token of the account stops working; the API key is unchanged.",
            tag: "password reset",
            key: false,
            body: Some(("PasswordReset", json!({"token": "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e", "password": "Fresh-Start-2027"}))),
            path_parameter: None,
            success: (200, "Reset", "Message", json!({"message": "Password has been reset successfully"})),
            errors: &RESET_PASSWORD_ERRORS,
            throttles: &[RESET_PER_ADDRESS],
        },
        ValidateResetToken => Spec {
            summary: "Whether a reset token is still good",
            description: "Never consumes the token.",
            tag: "password reset",
            key: false,
            body: None,
            path_parameter: Some(("token", "The token of the emailed link", "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e")),
            success: (200, "`valid` is false for an unknown, used, superseded or expired token", "TokenValidity", json!({"valid": true})),
            errors: &[],
            throttles: &[RESET_PER_ADDRESS],
        },
        CreateApiKey => Spec {
            summary: "Make a scoped key",
            description: "The key is shown in this answer once and never again. `foundryPassword` is stored only encrypted, bound to the account and the key.",
            tag: "scoped keys",
            key: true,
            body: Some(("NewScopedKey", json!({"name": "Discord bot", "monthlyLimit": 500}))),
            path_parameter: None,
            success: (201, "The new key", "CreatedScopedKey", json!({"id": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede", "key": "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi", "name": "Discord bot", "scopedClientId": null, "scopedUserId": null, "monthlyLimit": 500, "dailyLimit": null, "expiresAt": null, "hasFoundryCredentials": false, "enabled": true, "createdAt": created})),
            errors: &[
                (400, ErrorCode::MissingFields, "Name is required"),
                (400, ErrorCode::InvalidName, "Name must be at most 100 characters"),
                (400, ErrorCode::InvalidMonthlyLimit, "monthlyLimit must be a positive whole number"),
                (400, ErrorCode::InvalidDailyLimit, "dailyLimit must be a positive whole number"),
                (400, ErrorCode::InvalidExpiresAt, "expiresAt must be an RFC 3339 timestamp in the future"),
                (400, ErrorCode::InvalidFoundryUrl, "foundryUrl must be an http(s) URL"),
                (400, ErrorCode::FieldTooLong, "scopedClientId must be at most 256 characters"),
                (400, ErrorCode::ScopedKeyLimitReached, "Scoped key limit reached (100)"),
            ],
            throttles: &[],
        },
        ListApiKeys => Spec {
            summary: "The account's scoped keys",
            description: "Oldest first; `key` is only the key's prefix followed by `...`.",
            tag: "scoped keys",
            key: true,
            body: None,
            path_parameter: None,
            success: (200, "The keys", "ScopedKeyList", json!({"keys": [{"id": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede", "key": "frs_mvPL...", "name": "Discord bot", "scopedClientId": null, "scopedUserId": null, "monthlyLimit": 500, "dailyLimit": null, "requestsThisMonth": 0, "expiresAt": null, "isExpired": false, "enabled": true, "hasFoundryCredentials": false, "foundryUrl": null, "foundryUsername": null, "createdAt": created, "updatedAt": created}]})),
            errors: &[],
            throttles: &[],
        },
        Verify => Spec {
            summary: "Decide and count one request of a key (for the relay)",
            description: "The relay's key check: the same decision as the gateway's authorizer \
(key, revocation, expiry, client and user binding, every cap), counted the same way (a refused \
request is never counted). A refusal is answered 200 `valid: false` with its `reason`, so that \
the relay can answer its own 401 / 429 as it always has. Costs two DynamoDB calls when admitted; \
a malformed key none.",
            tag: "relay",
            key: false,
            body: Some(("VerifyRequest", json!({"key": "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi", "clientId": "fvtt_a1b2c3"}))),
            path_parameter: None,
            success: (200, "The verdict", "Verification", json!({
                "valid": true, "userId": id, "keyType": "scoped", "scopedKeyId": "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede",
                "scopedClientId": "fvtt_a1b2c3", "scopedUserId": "", "requestsThisMonth": 12, "requestsToday": 3,
                "monthlyLimit": 500, "dailyLimit": "", "expiresAt": null, "subscriptionStatus": "free",
                "foundryUrl": null, "foundryUsername": null, "foundryPassword": null
            })),
            errors: &[
                (400, ErrorCode::MissingFields, "key is required"),
                (400, ErrorCode::InvalidCost, "cost must be a whole number from 1 to 1000"),
                (401, ErrorCode::ServiceKeyRequired, "A valid service key is required"),
                (404, ErrorCode::NotFound, "Not found"),
            ],
            throttles: &[SERVICE_KEY_FAILURES],
        },
        DeleteApiKey => Spec {
            summary: "Revoke a scoped key",
            description: "From that moment the key answers 401. An unknown id, a malformed id and another account's key are all 404.",
            tag: "scoped keys",
            key: true,
            body: None,
            path_parameter: Some(("id", "The scoped key's id", "ddc7d283-c05e-4c14-aa79-2bd3ce9e6ede")),
            success: (200, "Deleted", "Deleted", json!({"success": true, "message": "API key deleted"})),
            errors: &[(404, ErrorCode::ApiKeyNotFound, "API key not found")],
            throttles: &[],
        },
    }
}

const REGISTER_ERRORS: [(u16, ErrorCode, &str); 10] = [
    (400, ErrorCode::MissingFields, "Email and password are required"),
    (400, ErrorCode::InvalidEmail, "Invalid email address"),
    PASSWORD_RULE[0],
    PASSWORD_RULE[1],
    PASSWORD_RULE[2],
    PASSWORD_RULE[3],
    PASSWORD_RULE[4],
    PASSWORD_RULE[5],
    (403, ErrorCode::RegistrationDisabled, "Registration is disabled on this server"),
    (409, ErrorCode::UserExists, "User already exists"),
];

const CHANGE_PASSWORD_ERRORS: [(u16, ErrorCode, &str); 8] = [
    (400, ErrorCode::MissingFields, "Current password and new password are required"),
    PASSWORD_RULE[0],
    PASSWORD_RULE[1],
    PASSWORD_RULE[2],
    PASSWORD_RULE[3],
    PASSWORD_RULE[4],
    PASSWORD_RULE[5],
    (401, ErrorCode::CurrentPasswordIncorrect, "Current password is incorrect"),
];

const RESET_PASSWORD_ERRORS: [(u16, ErrorCode, &str); 8] = [
    (400, ErrorCode::MissingFields, "Token and password are required"),
    PASSWORD_RULE[0],
    PASSWORD_RULE[1],
    PASSWORD_RULE[2],
    PASSWORD_RULE[3],
    PASSWORD_RULE[4],
    PASSWORD_RULE[5],
    (400, ErrorCode::InvalidResetToken, "Invalid or expired reset token"),
];

/// Contains a character that trimming keeps: one outside Unicode's `White_Space`, which is
/// what `str::trim` removes.
const NOT_ONLY_WHITESPACE: &str =
    "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// The body of POST /auth/api-keys, written out because `monthlyLimit` and `dailyLimit`
/// take a number or a string of digits (`routes::positive`).
fn new_scoped_key_schema() -> utoipa::openapi::schema::Object {
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(MAX_TEXT_CHARS))
            .description(Some(description))
    };
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
            .description(Some(description))
            .into()
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A scoped key. Absent and `null` optional fields are the same; empty strings count as absent.",
        ))
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_NAME_CHARS))
                .pattern(Some(NOT_ONLY_WHITESPACE))
                .description(Some("1 to 100 characters after trimming"))
                .examples([json!("Discord bot")]),
        )
        .required("name")
        .property("scopedClientId", text("The Foundry client the key is for"))
        .property("scopedUserId", text("The Foundry user the key is for"))
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
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
                .description(Some("An RFC 3339 timestamp in the future"))
                .examples([json!("2030-01-01T00:00:00Z")]),
        )
        .property(
            "foundryUrl",
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(utoipa::openapi::SchemaFormat::Custom("http-url".into())))
                .max_length(Some(MAX_TEXT_CHARS * 8))
                .description(Some(
                    "An `http` or `https` URL with a host (format `http-url`), trimmed; empty counts as absent",
                ))
                .examples([json!("https://foundry.example.com")]),
        )
        .property("foundryUsername", text("The Foundry user name to sign in with"))
        .property("foundryPassword", text("The Foundry password; stored only encrypted and never shown again"))
        .build()
}

/// What utoipa cannot say by itself: every field of a response is always present (an unset
/// one is `null`), the throttling and availability headers are always sent, and links are
/// spelled as OpenAPI spells them.
fn finish(doc: &mut Value) {
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            if REQUEST_SCHEMAS.contains(&name.as_str()) {
                continue;
            }
            require_all_properties(schema);
        }
    }
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                for response in responses.values_mut() {
                    // utoipa 5.5 writes a link's fields in snake case; OpenAPI spells them in camel case.
                    if let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) {
                        for link in links.values_mut().filter_map(Value::as_object_mut) {
                            for (from, to) in [
                                ("operation_id", "operationId"),
                                ("operation_ref", "operationRef"),
                                ("request_body", "requestBody"),
                            ] {
                                if let Some(value) = link.remove(from) {
                                    link.insert(to.into(), value);
                                }
                            }
                        }
                    }
                    if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
                        for header in headers.values_mut().filter_map(Value::as_object_mut) {
                            header.insert("required".into(), Value::Bool(true));
                        }
                    }
                }
            }
        }
    }
}

fn require_all_properties(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
        for property in properties.values_mut() {
            require_all_properties(property);
        }
        object.insert("required".into(), Value::Array(names));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::Endpoint;

    fn operation_of(doc: &Value, endpoint: Endpoint) -> &Value {
        &doc["paths"][endpoint.path()][endpoint.method().as_str().to_ascii_lowercase()]
    }

    #[test]
    fn every_endpoint_of_the_route_table_is_one_operation_named_after_its_function() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let count: usize = doc["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
        assert_eq!(count, Endpoint::ALL.len());
        for endpoint in Endpoint::ALL {
            let operation = operation_of(&doc, endpoint);
            assert_eq!(operation["operationId"], endpoint.function_name(), "{endpoint:?}");
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{endpoint:?}");
            assert!(responses["503"]["headers"]["retry-after"]["required"].as_bool().unwrap(), "{endpoint:?}");
        }
    }

    #[test]
    fn key_routes_require_the_master_key_and_document_its_refusals() {
        let doc = document();
        for endpoint in Endpoint::ALL {
            let operation = operation_of(&doc, endpoint);
            let keyed = operation.get("security").is_some();
            assert!(!keyed || operation["responses"].get("401").is_some(), "{endpoint:?}");
            if endpoint == Endpoint::Verify {
                assert_eq!(operation["security"], json!([{ SERVICE_KEY: [] }]));
                assert!(operation["responses"]["401"]["content"]["application/json"]["examples"]
                    ["service_key_required"]
                    .is_object());
                assert!(operation["responses"]["404"].is_object(), "closed unless a service key is configured");
            } else if keyed {
                assert_eq!(operation["security"], json!([{ MASTER_KEY: [] }]), "{endpoint:?}");
                assert!(operation["responses"]["403"]["content"]["application/json"]["examples"]
                    ["master_key_required"]
                    .is_object());
            }
        }
        assert_eq!(doc["components"]["securitySchemes"][MASTER_KEY]["name"], API_KEY_HEADER);
        assert_eq!(doc["components"]["securitySchemes"][SERVICE_KEY]["scheme"], "bearer");
        assert!(operation_of(&doc, Endpoint::Register).get("security").is_none());
        assert!(operation_of(&doc, Endpoint::UserData).get("security").is_some());
    }

    #[test]
    fn the_error_codes_are_the_enum_the_service_answers_with() {
        let doc = document();
        let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let answered: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, answered);
    }

    #[test]
    fn request_limits_are_the_ones_the_validation_uses() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let password = &schemas["NewAccount"]["properties"]["password"];
        assert_eq!(password["minLength"], crate::domain::password::MIN_CHARS);
        assert_eq!(password["maxLength"], crate::domain::password::MAX_CHARS);
        assert_eq!(
            schemas["PasswordChange"]["properties"]["newPassword"]["maxLength"],
            crate::domain::password::MAX_CHARS
        );
        assert_eq!(schemas["NewAccount"]["properties"]["email"]["maxLength"], 254);
        assert_eq!(schemas["NewScopedKey"]["properties"]["name"]["maxLength"], MAX_NAME_CHARS);
        assert_eq!(schemas["NewScopedKey"]["required"], json!(["name"]));
    }

    #[test]
    fn responses_always_carry_every_field_and_the_examples_match_the_answers() {
        let doc = document();
        let key = &doc["components"]["schemas"]["CreatedScopedKey"];
        assert!(key["required"].as_array().unwrap().contains(&json!("expiresAt")));
        let example =
            &operation_of(&doc, Endpoint::CreateApiKey)["responses"]["201"]["content"]["application/json"]["example"];
        let mut fields: Vec<&String> = example.as_object().unwrap().keys().collect();
        let mut required: Vec<String> =
            key["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        fields.sort();
        required.sort();
        assert_eq!(fields, required.iter().collect::<Vec<_>>());
    }

    #[test]
    fn links_are_spelled_as_openapi_spells_them() {
        let doc = document();
        let links = &operation_of(&doc, Endpoint::Register)["responses"]["201"]["links"];
        assert_eq!(links["user-data"]["operationId"], "user-data");
        assert_eq!(links["user-data"]["parameters"]["header.x-api-key"], "$response.body#/apiKey");
        assert!(links["user-data"].get("operation_id").is_none());
    }
}
