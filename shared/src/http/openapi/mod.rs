//! The OpenAPI 3.1 description of the routes, generated from the code: the paths,
//! methods and operation ids come from the route table ([`Endpoint`]), the response bodies
//! from the types the handlers answer with (`http::schema`), the error codes from
//! [`ErrorCode`], the limits from the constants the validation uses. Served by the local
//! server at `GET /openapi.json` and committed as `openapi.json` at the repository root
//! (a test compares the two; `cargo run -q -p local -- --print-openapi > openapi.json` rewrites it).
//! The request bodies are the types the routes read (`http::bodies`); what utoipa cannot
//! derive, and the words of every operation, are in [`spec`].
//!
//! Built only with the `openapi` feature, which the local server enables: the Lambda
//! functions link none of it.

pub mod fields;
mod spec;

use crate::domain::error::{AuthError, PortError};
use crate::http::bodies::{
    AccountDeletion, Credentials, EmailVerification, NewAccount, PasswordChange, PasswordReset, ResetRequest,
    VerifyRequest,
};
use crate::http::error::{Failure, RequestError};
use crate::http::request::{API_KEY_HEADER, MAX_BODY_BYTES, NOT_AN_OBJECT};
use crate::http::response::UNAVAILABLE_RETRY_AFTER_SECONDS;
use crate::http::routes::Endpoint;
use crate::http::schema::{
    CreatedScopedKey, DataExport, Deleted, ErrorBody, ErrorCode, LoggedIn, Message, PasswordResetDone, RegeneratedKey,
    Registered, ScopedKeyList, TokenValidity, UserData,
};
use serde_json::{json, Value};
use spec::{
    description, public, scoped_key_schema, spec, Documented, MASTER_KEY, MASTER_KEY_WORDS, SERVICE_KEY,
    SERVICE_KEY_WORDS, TAGS,
};
use std::borrow::Cow;
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
use utoipa::OpenApi as _;

/// The document: see the module's comment.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    ErrorBody,
    ErrorCode,
    Registered,
    LoggedIn,
    RegeneratedKey,
    UserData,
    crate::http::schema::ActivityList,
    crate::http::schema::ActivityEntry,
    DataExport,
    Message,
    PasswordResetDone,
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
    EmailVerification,
    crate::http::schema::AuthorizerContext,
    crate::http::schema::Verification,
    crate::http::schema::VerifiedKey,
    crate::http::schema::RefusedKey,
    crate::http::schema::Reason,
    VerifyRequest,
)))]
struct Components;

/// The schemas of request bodies: the only ones whose optional fields may be left out.
const REQUEST_SCHEMAS: [&str; 10] = [
    "NewAccount",
    "Credentials",
    "AccountDeletion",
    "PasswordChange",
    "ResetRequest",
    "PasswordReset",
    "EmailVerification",
    "NewScopedKey",
    "ScopedKeyChange",
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
        .description(Some(description()))
        .license(Some(LicenseBuilder::new().name("MIT").identifier(Some("MIT")).build()))
        .build();
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            MASTER_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(API_KEY_HEADER, MASTER_KEY_WORDS))),
        );
        components.add_security_scheme(
            SERVICE_KEY,
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(SERVICE_KEY_WORDS)).build(),
            ),
        );
        components.schemas.insert("NewScopedKey".into(), scoped_key_schema(false).into());
        components.schemas.insert("ScopedKeyChange".into(), scoped_key_schema(true).into());
    }
    doc.tags = Some(
        TAGS.into_iter()
            .map(|(name, description)| TagBuilder::new().name(name).description(Some(description)).build())
            .collect(),
    );
    let mut paths = Paths::new();
    for endpoint in Endpoint::ALL {
        let method = match endpoint.method().as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PATCH" => HttpMethod::Patch,
            "PUT" => HttpMethod::Put,
            "DELETE" => HttpMethod::Delete,
            // Not a method of this API: the test of the route table names the endpoint missing.
            _ => continue,
        };
        paths.add_path_operation(endpoint.path(), vec![method], operation(endpoint));
    }
    doc.paths = paths;
    doc
}

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
                // A change may be empty (it changes nothing), and so may be left out.
                .required(Some(if endpoint == UpdateApiKey { Required::False } else { Required::True }))
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
            [UserData, Activity, ExportData, CreateApiKey, ListApiKeys, ChangePassword, DeleteAccount].into_iter().fold(
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
        CreateApiKey => [(UpdateApiKey, "Change the key just made"), (DeleteApiKey, "Revoke the key just made")]
            .into_iter()
            .fold(success, |response, (target, description)| {
                response.link(
                    target.function_name(),
                    LinkBuilder::new()
                        .operation_id(target.function_name())
                        .parameter("path.id", "$response.body#/id")
                        .parameter(format!("header.{API_KEY_HEADER}"), format!("$request.header.{API_KEY_HEADER}"))
                        .description(description)
                        .build(),
                )
            }),
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
    let mut errors: Vec<(u16, Vec<Example>)> = Vec::new();
    let mut add = |(status, code, message): Documented| match errors.iter_mut().find(|(s, _)| *s == status) {
        Some((_, codes)) => codes.push((code, message)),
        None => errors.push((status, vec![(code, message)])),
    };
    if has_body {
        add(public(RequestError::InvalidJson));
        add(public(RequestError::InvalidBody(NOT_AN_OBJECT.into())));
        add(public(RequestError::UnsupportedContentType));
    }
    spec.errors.into_iter().for_each(&mut add);
    if keyed {
        add(public(AuthError::MissingApiKey));
        add(public(AuthError::InvalidApiKey));
        add(public(if endpoint == CreateApiKey {
            AuthError::ScopedKeyCannotCreateKeys
        } else {
            AuthError::MasterKeyRequired
        }));
    }
    if has_body {
        add(public(RequestError::PayloadTooLarge));
    }
    for &rule in spec.throttles {
        add(public(AuthError::RateLimited { rule, limit: 0, retry_after: 0 }));
    }
    add(public(Failure::from(AuthError::Unavailable(PortError::Conflict))));
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

/// One example of an error response: its code and message.
type Example = (ErrorCode, Cow<'static, str>);

fn error_response(status: u16, codes: &[Example]) -> utoipa::openapi::Response {
    let too_large = format!("The body is over {} KiB", MAX_BODY_BYTES / 1024);
    let description = match status {
        400 => "The request is not acceptable",
        401 => "Not authenticated",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        413 => &too_large,
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
                .summary(message.as_ref())
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
        // verify's `method` and `path` go together (utoipa's derive cannot say so).
        if let Some(verify) = schemas.get_mut("VerifyRequest").and_then(Value::as_object_mut) {
            verify.insert("dependentRequired".into(), json!({"method": ["path"], "path": ["method"]}));
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

    /// The fields of the two-field request bodies, in the order the routes read them.
    fn field_order(schema: &str) -> [&'static str; 2] {
        match schema {
            "PasswordChange" => ["currentPassword", "newPassword"],
            "PasswordReset" => ["token", "password"],
            _ => ["email", "password"],
        }
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
        for (schema, field) in
            [("NewAccount", "password"), ("PasswordChange", "newPassword"), ("PasswordReset", "password")]
        {
            let password = &schemas[schema]["properties"][field];
            assert_eq!(password["pattern"], crate::domain::password::PATTERN, "{schema}");
            assert_eq!(password["minLength"], crate::domain::password::MIN_CHARS, "{schema}");
            assert_eq!(schemas[schema]["required"], json!([field_order(schema)[0], field_order(schema)[1]]));
        }
        assert_eq!(schemas["VerifyRequest"]["properties"]["cost"]["maximum"], crate::domain::meter::MAX_COST);
        assert_eq!(schemas["NewAccount"]["properties"]["email"]["maxLength"], 254);
        assert_eq!(schemas["NewScopedKey"]["properties"]["name"]["maxLength"], crate::domain::scoped::MAX_NAME_CHARS);
        assert_eq!(schemas["NewScopedKey"]["required"], json!(["name"]));
    }

    #[test]
    fn the_foundry_url_pattern_takes_exactly_the_urls_the_service_takes() {
        let doc = document();
        let url = &doc["components"]["schemas"]["NewScopedKey"]["properties"]["foundryUrl"];
        assert_eq!(url["maxLength"], crate::domain::scoped::MAX_URL_CHARS);
        let pattern = regex_lite::Regex::new(url["pattern"].as_str().unwrap()).unwrap();
        let service = |sent: &str| {
            let trimmed = sent.trim();
            trimmed.is_empty() || crate::domain::scoped::is_http_url(trimmed)
        };
        for sent in [
            "https://foundry.example.com",
            " \u{3000}http://localhost:30000/game/\t\n",
            "https://7KpF.MZ.ZxXgohc.TF.R.T.aya1:76//0C/R1*",
            "https://7KpF.MZ.ZxXgohc.TF.R.T.aya1:76//0C/R1",
            "http://10.0.0.5:65535",
            "http://10.0.0.5:65536",
            "http://1.2.3.256",
            "http://foundry.123",
            "https://example.io/?q=1",
            "https://a b.io",
            "",
            " \u{85}",
            "\u{200b}https://example.io",
        ] {
            assert_eq!(pattern.is_match(sent), service(sent), "{sent:?}");
        }
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
