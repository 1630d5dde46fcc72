//! The request bodies of the routes, as types: what each route reads, read by
//! `request::body` (which answers every wrong field), and, with the `openapi` feature,
//! described by utoipa in the OpenAPI document from the very same types.
//!
//! `request::body` hands every declared field to serde, an absent one as `null`: `null`
//! and absent are the same, unknown fields are ignored, and which fields a route requires is the route's question (`http::error::Required`)
//! or the domain's. Fields are declared in the order they are checked.

use crate::domain::meter::MAX_COST;
use crate::domain::scoped::{NewScopedKey, ScopedKeyChange};
use crate::http::error::{RequestError, Required};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A password (or a token) as a request carries it: wiped when dropped, never printed.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(Zeroizing::new(s)))
    }
}

/// A string field that counts as given only when non-empty (as the relay's clients expect).
fn non_empty<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + AsRef<str>,
{
    Ok(Option::<T>::deserialize(deserializer)?.filter(|s| !s.as_ref().is_empty()))
}

/// `{email, password}`, both given, or `Email and password are required`.
fn email_and_password(email: Option<String>, password: Option<Secret>) -> Result<(String, Secret), RequestError> {
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(RequestError::Required(Required::EmailAndPassword)),
    }
}

/// `{email, password}` of register: a new account.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NewAccount {
    /// A syntactically valid address (trimmed; unique case-insensitively).
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = "email", max_length = 254, example = "gm@example.com"))]
    email: Option<String>,
    /// 8 to 128 characters with an uppercase letter, a lowercase letter and a digit, and
    /// not one of the 10,000 most common passwords. Never trimmed.
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::openapi::fields::new_account_password, required = true))]
    password: Option<Secret>,
}

impl NewAccount {
    pub fn required(self) -> Result<(String, Secret), RequestError> {
        email_and_password(self.email, self.password)
    }
}

/// `{email, password}` of login and regenerate-key.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Credentials {
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, example = "gm@example.com"))]
    email: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Password, min_length = 1, example = "Dragon-Hoard-2026"))]
    password: Option<Secret>,
}

impl Credentials {
    pub fn required(self) -> Result<(String, Secret), RequestError> {
        email_and_password(self.email, self.password)
    }
}

/// DELETE /auth/account
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AccountDeletion {
    /// The account's email (compared trimmed, case-insensitively).
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, example = "gm@example.com"))]
    pub confirm_email: Option<String>,
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Password, min_length = 1, example = "Dragon-Hoard-2026"))]
    pub password: Option<Secret>,
}

/// POST /auth/change-password
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordChange {
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Password, min_length = 1, example = "Dragon-Hoard-2026"))]
    current_password: Option<Secret>,
    /// The password rule of register applies.
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::openapi::fields::changed_password, required = true))]
    new_password: Option<Secret>,
}

impl PasswordChange {
    /// The current and the new password, or `Current password and new password are required`.
    pub fn required(self) -> Result<(Secret, Secret), RequestError> {
        match (self.current_password, self.new_password) {
            (Some(current), Some(new)) => Ok((current, new)),
            _ => Err(RequestError::Required(Required::CurrentAndNewPassword)),
        }
    }
}

/// POST /auth/forgot-password
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ResetRequest {
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, example = "gm@example.com"))]
    email: Option<String>,
    /// `true` when the owner thinks a key leaked: the emailed link opens the reset page
    /// with "replace every key" (`revokeKeys`) ticked. Absent, `null` and `false` alike.
    #[serde(rename = "keyLeaked", default)]
    #[cfg_attr(feature = "openapi", schema(nullable, example = false))]
    key_leaked: Option<bool>,
}

impl ResetRequest {
    /// The email and whether a key leaked, or `Email is required`.
    pub fn required(self) -> Result<(String, bool), RequestError> {
        let email = self.email.ok_or(RequestError::Required(Required::Email))?;
        Ok((email, self.key_leaked.unwrap_or(false)))
    }
}

/// POST /auth/reset-password
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordReset {
    /// The token of the emailed link (`reset-token`).
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, example = "5b4f2615572b1d4abe3e20582f055ebfb2840a366a91c08699ec61c2369d9f6e"))]
    token: Option<Secret>,
    /// The password rule of register applies (checked before the token).
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::openapi::fields::reset_password, required = true))]
    password: Option<Secret>,
    /// `true` when a key may have leaked: the same write also replaces the master key, so
    /// that it and every scoped key stop working, and the answer carries the new master
    /// key. Absent, `null` and `false` leave the keys as they are.
    #[serde(rename = "revokeKeys", default)]
    #[cfg_attr(feature = "openapi", schema(nullable, example = false))]
    revoke_keys: Option<bool>,
}

impl PasswordReset {
    /// The token, the password and whether to revoke every key, or `Token and password are
    /// required`.
    pub fn required(self) -> Result<(Secret, Secret, bool), RequestError> {
        match (self.token, self.password) {
            (Some(token), Some(password)) => Ok((token, password, self.revoke_keys.unwrap_or(false))),
            _ => Err(RequestError::Required(Required::TokenAndPassword)),
        }
    }
}

/// POST /auth/verify-email
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EmailVerification {
    /// The token of the emailed link (`verify-token`).
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, example = "9d0c1e6a4b7f3a2e8c5d1f0b6a9e7c3d2b8f4a1e6c0d9b7a5f3e2c1d0b9a8f7e"))]
    token: Option<Secret>,
}

impl EmailVerification {
    /// The token, or `Token is required`.
    pub fn required(self) -> Result<Secret, RequestError> {
        self.token.ok_or(RequestError::Required(Required::Token))
    }
}

/// POST /auth/api-keys (its schema is written out in `http::openapi`: `monthlyLimit` and
/// `dailyLimit` take a number or a string of digits).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopedKeyRequest {
    name: Option<String>,
    scoped_client_id: Option<String>,
    scoped_user_id: Option<String>,
    monthly_limit: Option<Positive>,
    daily_limit: Option<Positive>,
    expires_at: Option<Rfc3339>,
    foundry_url: Option<String>,
    foundry_username: Option<String>,
    foundry_password: Option<String>,
    scopes: Option<Vec<String>>,
    scoped_client_ids: Option<Vec<String>>,
    scoped_user_ids: Option<BTreeMap<String, String>>,
}

impl From<ScopedKeyRequest> for NewScopedKey {
    fn from(body: ScopedKeyRequest) -> Self {
        NewScopedKey {
            name: body.name,
            scoped_client_id: body.scoped_client_id,
            scoped_user_id: body.scoped_user_id,
            monthly_limit: body.monthly_limit.map(|Positive(n)| n),
            daily_limit: body.daily_limit.map(|Positive(n)| n),
            expires_at: body.expires_at.map(|Rfc3339(t)| t),
            foundry_url: body.foundry_url,
            foundry_username: body.foundry_username,
            foundry_password: body.foundry_password.map(SecretString::from),
            scopes: body.scopes,
            scoped_client_ids: body.scoped_client_ids,
            scoped_user_ids: body.scoped_user_ids,
        }
    }
}

/// PATCH /auth/api-keys/{id} (its schema is written out in `http::openapi` with
/// create's): absent fields stay as they are; `null` removes a cap or the expiry, and
/// is absent for the others.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopedKeyPatch {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    monthly_limit: Option<Option<Positive>>,
    #[serde(default, deserialize_with = "nullable")]
    daily_limit: Option<Option<Positive>>,
    #[serde(default, deserialize_with = "nullable")]
    expires_at: Option<Option<Rfc3339>>,
    enabled: Option<bool>,
    scoped_client_ids: Option<Vec<String>>,
    scoped_user_ids: Option<BTreeMap<String, String>>,
}

impl From<ScopedKeyPatch> for ScopedKeyChange {
    fn from(body: ScopedKeyPatch) -> Self {
        ScopedKeyChange {
            name: body.name,
            scopes: body.scopes,
            monthly_limit: body.monthly_limit.map(|cap| cap.map(|Positive(n)| n)),
            daily_limit: body.daily_limit.map(|cap| cap.map(|Positive(n)| n)),
            expires_at: body.expires_at.map(|at| at.map(|Rfc3339(t)| t)),
            enabled: body.enabled,
            scoped_client_ids: body.scoped_client_ids,
            scoped_user_ids: body.scoped_user_ids,
        }
    }
}

/// A field where `null` means something (remove) and absence another (keep): `None` when
/// absent, `Some(None)` for `null`. The request body's reader tells them apart (absent is
/// `visit_none`, `null` `visit_unit`; see `http::request`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    struct Nullable<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Nullable<T> {
        type Value = Option<Option<T>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a value or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(None))
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            T::deserialize(deserializer).map(|value| Some(Some(value)))
        }
    }

    deserializer.deserialize_option(Nullable(std::marker::PhantomData))
}

/// POST /auth/verify
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VerifyRequest {
    /// The key the relay's client presented in `x-api-key`, as it was; `""` when it
    /// presented none (answered `valid: false`, reason `missing`).
    #[serde(deserialize_with = "required")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, example = "frs_mvPL5OTAgbuMTlzHrFNtJZAvXoy27EMWLNUx25Mppi"))]
    pub key: String,
    /// The Foundry client the request targets (the relay's `clientId`): a key bound to
    /// another client is refused with reason `client`.
    #[serde(deserialize_with = "non_empty")]
    #[cfg_attr(feature = "openapi", schema(example = "fvtt_a1b2c3"))]
    pub client_id: Option<String>,
    /// The Foundry user the request acts as: a key bound to another is refused (`user`).
    #[serde(deserialize_with = "non_empty")]
    pub user_id: Option<String>,
    /// The scope the request needs: a key without it is refused with reason `scope`.
    /// Instead, `method` and `path` name the relay request, and the route table says.
    /// Neither: no scope is checked.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::openapi::fields::scope))]
    pub scope: Option<String>,
    /// The relay request's method (with `path`: one given without the other is refused).
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "POST"))]
    pub method: Option<Option<String>>,
    /// The relay request's path (with `method`), as the relay received it; a query string
    /// is ignored. A route in no entry of the route table (and `null`) is refused to keys
    /// that hold scopes.
    #[serde(default, deserialize_with = "nullable")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "/roll"))]
    pub path: Option<Option<String>>,
    /// How many requests this one counts as; admitted only when every cap has room for all of it.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::openapi::fields::cost))]
    pub cost: Option<Cost>,
    /// `false`: decide without counting (for a relay that caches the answer and reports
    /// its usage later with `cost`).
    #[cfg_attr(feature = "openapi", schema(default = true))]
    pub count: Option<bool>,
    /// `true`: a valid scoped key's answer carries its Foundry login, the password decrypted.
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub credentials: Option<bool>,
}

/// A string that must be given (`null` counts as absent): verify's `key`.
fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(deserializer)?.ok_or_else(|| de::Error::missing_field(""))
}

/// verify's `cost`: a whole number from 1 to [`MAX_COST`] (written with a zero fraction,
/// `365.0`, it is a whole number too, as JSON Schema counts it).
pub struct Cost(pub u64);

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let whole = deserializer.deserialize_any(WholeNumber { digits: false })?;
        whole.filter(|c| (1..=MAX_COST).contains(c)).map(Cost).ok_or_else(|| de::Error::custom("out of range"))
    }
}

/// `monthlyLimit` and `dailyLimit`: a positive whole number, as a JSON number or a string of
/// digits.
pub struct Positive(pub u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let whole = deserializer.deserialize_any(WholeNumber { digits: true })?;
        whole.filter(|n| *n > 0).map(Positive).ok_or_else(|| de::Error::custom("not positive"))
    }
}

/// The largest whole number a double holds exactly (2^53).
const MAX_EXACT_DOUBLE: f64 = 9_007_199_254_740_992.0;

/// A whole number (`None` when it is not one); with `digits`, a string of digits too.
struct WholeNumber {
    digits: bool,
}

impl Visitor<'_> for WholeNumber {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<u64>, E> {
        Ok(Some(n))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Option<u64>, E> {
        let upper = if self.digits { MAX_EXACT_DOUBLE } else { f64::MAX };
        Ok((f.fract() == 0.0 && f >= 0.0 && f <= upper).then_some(f as u64))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<u64>, E> {
        if self.digits && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s.parse().ok())
        } else {
            Err(E::invalid_type(de::Unexpected::Str(s), &self))
        }
    }
}

/// `expiresAt`: an RFC 3339 timestamp, trimmed (whether it lies in the future is the
/// domain's question).
pub struct Rfc3339(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(text.trim()).map(|t| Rfc3339(t.with_timezone(&Utc))).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::iso;
    use crate::domain::error::{AuthError, Field};
    use crate::http::error::Failure;
    use crate::http::request::body;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};

    fn read<T: DeserializeOwned>(value: Value) -> Result<T, Failure> {
        let request = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/auth/api-keys")
            .body(lambda_http::Body::from(value.to_string()))
            .unwrap();
        body(&request)
    }

    fn invalid(field: Field) -> Failure {
        AuthError::InvalidField(field).into()
    }

    #[test]
    fn monthly_and_daily_limits_are_positive_whole_numbers_or_digit_strings() {
        for (name, field) in [("monthlyLimit", Field::MonthlyLimit), ("dailyLimit", Field::DailyLimit)] {
            let limit = |value: Value| {
                read::<ScopedKeyRequest>(json!({ name: value })).map(NewScopedKey::from).map(|new| match field {
                    Field::MonthlyLimit => new.monthly_limit,
                    _ => new.daily_limit,
                })
            };
            assert_eq!(limit(Value::Null).unwrap(), None);
            assert_eq!(limit(json!(5)).unwrap(), Some(5));
            assert_eq!(limit(json!(5.0)).unwrap(), Some(5));
            assert_eq!(limit(json!("250")).unwrap(), Some(250));
            for bad in [json!(0), json!(-3), json!(2.5), json!("12a"), json!(""), json!("0"), json!(true), json!([1])] {
                assert_eq!(limit(bad.clone()).unwrap_err(), invalid(field), "{bad}");
            }
        }
    }

    #[test]
    fn expiry_must_be_rfc_3339() {
        let expiry = |value: Value| read::<ScopedKeyRequest>(json!({ "expiresAt": value })).map(NewScopedKey::from);
        let t = expiry(json!(" 2030-01-02T03:04:05+02:00 ")).unwrap().expires_at.unwrap();
        assert_eq!(iso(t), "2030-01-02T01:04:05Z");
        for bad in [json!("tomorrow"), json!("2030-01-02"), json!(1234567890)] {
            assert_eq!(expiry(bad.clone()).err(), Some(invalid(Field::ExpiresAt)), "{bad}");
        }
    }

    #[test]
    fn a_scoped_key_body_is_checked_in_the_order_of_its_fields() {
        let first = |value: Value| read::<ScopedKeyRequest>(value).err();
        assert_eq!(
            first(json!({"foundryUrl": 5, "monthlyLimit": "x", "name": 1})),
            Some(RequestError::InvalidBody("name must be a string".into()).into())
        );
        assert_eq!(first(json!({"foundryUrl": 5, "monthlyLimit": "x"})), Some(invalid(Field::MonthlyLimit)));
        assert_eq!(
            first(json!({"foundryUrl": 5, "foundryPassword": 6})),
            Some(RequestError::InvalidBody("foundryUrl must be a string".into()).into())
        );
    }

    #[test]
    fn verify_needs_its_key_before_anything_else_and_a_cost_from_1_to_the_maximum() {
        let verify = |value: Value| read::<VerifyRequest>(value);
        let key_required = || Some(Failure::from(RequestError::Required(Required::Key)));
        assert_eq!(verify(json!({"clientId": 5})).err(), key_required());
        assert_eq!(verify(json!({"key": null})).err(), key_required());
        assert_eq!(
            verify(json!({"key": 5})).err(),
            Some(RequestError::InvalidBody("key must be a string".into()).into())
        );
        assert_eq!(
            verify(json!({"key": "", "count": "yes"})).err(),
            Some(RequestError::InvalidBody("count must be a boolean".into()).into())
        );
        let read = verify(json!({"key": "k", "clientId": "", "cost": 365.0, "credentials": true})).unwrap();
        assert_eq!((read.client_id, read.cost.map(|Cost(c)| c), read.credentials), (None, Some(365), Some(true)));
        assert!(verify(json!({"key": "k"})).unwrap().cost.is_none(), "counted as 1 by the route");
        for bad in [json!(0), json!(MAX_COST + 1), json!(1.5), json!("5"), json!(-1), json!(false)] {
            assert_eq!(verify(json!({"key": "k", "cost": bad})).err(), Some(invalid(Field::Cost)), "{bad}");
        }
    }

    #[test]
    fn empty_strings_count_as_absent_where_the_relay_ignored_them() {
        let required = || Some(Failure::from(RequestError::Required(Required::EmailAndPassword)));
        let credentials = |value: Value| read::<Credentials>(value).and_then(|c| Ok(c.required()?));
        assert_eq!(credentials(json!({"email": "", "password": "x"})).err(), required());
        assert_eq!(credentials(json!({"email": "a@b.io", "password": null})).err(), required());
        assert_eq!(
            credentials(json!({"email": 1, "password": 2})).err(),
            Some(RequestError::InvalidBody("email must be a string".into()).into())
        );
        let (email, password) = credentials(json!({"email": "a@b.io", "password": " p "})).unwrap();
        assert_eq!((email.as_str(), password.expose()), ("a@b.io", " p "));
    }
}
