//! The schemas of request fields that utoipa's derive cannot state alone (the request
//! bodies of `http::bodies` name them with `schema_with`): the password rule, verify's
//! cost and the scopes, from the constants and the catalogue the service checks with.

use crate::domain::meter::MAX_COST;
use crate::domain::password::{MAX_CHARS, MIN_CHARS, PATTERN};
use crate::domain::scopes::Scope;
use serde_json::json;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType};
use utoipa::openapi::{KnownFormat, SchemaFormat, Type};

/// A new password (register, change-password, reset-password): the rules a schema can state,
/// from the constants the service checks with.
// `example`, as utoipa's derive writes it for every other field of the request bodies.
#[allow(deprecated)]
fn new_password(description: &str, example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(MIN_CHARS))
        .max_length(Some(MAX_CHARS))
        .pattern(Some(PATTERN))
        .description(Some(description))
        .example(Some(json!(example)))
        .build()
}

/// register's `password`.
pub fn new_account_password() -> Object {
    new_password(
        &format!(
            "{MIN_CHARS} to {MAX_CHARS} characters with an uppercase letter, a lowercase letter and a digit, and\n\
             not one of the 10,000 most common passwords. Never trimmed."
        ),
        "Dragon-Hoard-2026",
    )
}

/// change-password's `newPassword`.
pub fn changed_password() -> Object {
    new_password("The password rule of register applies.", "Fresh-Start-2027")
}

/// reset-password's `password`.
pub fn reset_password() -> Object {
    new_password("The password rule of register applies (checked before the token).", "Fresh-Start-2027")
}

/// A scope of the catalogue (verify's `scope`).
#[allow(deprecated)]
pub fn scope() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(Scope::ALL.map(Scope::name).into_iter().map(Some).chain([None])))
        .description(Some(
            "The scope the request needs: a key without it is refused with reason `scope`. \
             Instead, `method` and `path` name the relay request, and the route table says. \
             Neither: no scope is checked.",
        ))
        .example(Some(json!("roll:execute")))
        .build()
}

/// A key's scopes: catalogue names, none twice (`null`: as absent).
#[allow(deprecated)]
pub fn scopes(description: &'static str) -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(Scope::ALL.map(Scope::name))))
        .unique_items(true)
        .max_items(Some(Scope::COUNT))
        .description(Some(description))
        .example(Some(json!(["roll:read", "chat:read"])))
        .build()
}

/// verify's `cost`.
pub fn cost() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_COST))
        .default(Some(json!(1)))
        .description(Some("How many requests this one counts as; admitted only when every cap has room for all of it."))
        .build()
}
