//! The schemas of request fields that utoipa's derive cannot state alone (the request
//! bodies of `http::bodies` name them with `schema_with`): the password rule and verify's
//! cost, from the constants the service checks with.

use crate::domain::meter::MAX_COST;
use crate::domain::password::{MAX_CHARS, MIN_CHARS, PATTERN};
use serde_json::json;
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType};
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
