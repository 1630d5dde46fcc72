//! Reading requests deliberately: size, content type, JSON shape, and the typed body of a
//! route (`http::bodies`) with the same answers for every wrong field.

use crate::domain::error::{AuthError, Field};
use crate::http::error::{Failure, RequestError, Required};
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Request, RequestExt};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The answer to a body that is JSON but not an object.
pub const NOT_AN_OBJECT: &str = "Request body must be a JSON object";

/// The header that carries an API key (names are case-insensitive). Never the query string.
pub const API_KEY_HEADER: &str = "x-api-key";

/// A request body that is a JSON object.
#[derive(Debug)]
pub struct JsonBody(Map<String, Value>);

impl JsonBody {
    /// An empty body reads as `{}`. A body with a content type other than JSON, over
    /// 16 KiB, not JSON, or JSON but not an object is refused with a 4xx. A missing content
    /// type is read as JSON (scripts often omit it).
    pub fn from_request(req: &Request) -> Result<Self, RequestError> {
        let bytes: &[u8] = req.body().as_ref();
        if bytes.len() > MAX_BODY_BYTES {
            return Err(RequestError::PayloadTooLarge);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            if !is_json(content_type.to_str().unwrap_or_default()) {
                return Err(RequestError::UnsupportedContentType);
            }
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(RequestError::InvalidBody(NOT_AN_OBJECT.into())),
            Err(_) => Err(RequestError::InvalidJson),
        }
    }

    /// The body as a route's typed body `T` (a struct whose fields all have defaults).
    /// Its fields are read in the order `T` declares them, an absent field as `null`, and
    /// the first wrong one is answered: `<field> must be a string` (or `a boolean`), or the
    /// field's own rule (see [`fault`]). Unknown fields are ignored.
    pub fn typed<T: DeserializeOwned>(self) -> Result<T, Failure> {
        T::deserialize(Fields(self.0)).map_err(|FieldError { field, kind }| fault(field, kind))
    }
}

/// Reads a request's typed body: [`JsonBody::from_request`], then [`JsonBody::typed`].
pub fn body<T: DeserializeOwned>(req: &Request) -> Result<T, Failure> {
    JsonBody::from_request(req)?.typed()
}

/// What a wrong field is answered with. `cost`, `monthlyLimit`, `dailyLimit` and
/// `expiresAt` have rules of their own, which a wrong type breaks too; verify's `key` is
/// the one field required on its own, before any other field is read.
fn fault(field: &'static str, kind: FaultKind) -> Failure {
    let own_rule = match field {
        "cost" => Some(Field::Cost),
        "monthlyLimit" => Some(Field::MonthlyLimit),
        "dailyLimit" => Some(Field::DailyLimit),
        "expiresAt" => Some(Field::ExpiresAt),
        _ => None,
    };
    match (own_rule, kind) {
        (Some(rule), _) => AuthError::InvalidField(rule).into(),
        (None, FaultKind::Absent) if field == "key" => RequestError::Required(Required::Key).into(),
        (None, FaultKind::Absent) => RequestError::InvalidBody(format!("{field} is required")).into(),
        (None, FaultKind::Expected(expected)) => {
            RequestError::InvalidBody(format!("{field} must be {expected}")).into()
        }
        (None, FaultKind::Other(message)) => RequestError::InvalidBody(format!("{field}: {message}")).into(),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The API key header. Never from the query string.
pub fn api_key(req: &Request) -> Option<&str> {
    req.headers().get(API_KEY_HEADER).and_then(|v| v.to_str().ok())
}

/// The client address as API Gateway saw it (`requestContext.http.sourceIp`); never a
/// header the client could set.
pub fn source_ip(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    }
}

/// A path parameter, as API Gateway (or the local router) extracted it.
pub fn path_parameter(req: &Request, name: &str) -> Option<String> {
    req.path_parameters().first(name).map(str::to_owned)
}

/// Why one field could not be read, and which.
#[derive(Debug)]
pub struct FieldError {
    field: &'static str,
    kind: FaultKind,
}

#[derive(Debug)]
pub enum FaultKind {
    /// `null` or absent where a value is required.
    Absent,
    /// Another JSON type than this one (`a string`, `a boolean`).
    Expected(String),
    Other(String),
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {:?}", self.field, self.kind)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Self { field: "", kind: FaultKind::Other(message.to_string()) }
    }

    fn invalid_type(_: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Self { field: "", kind: FaultKind::Expected(expected.to_string()) }
    }

    fn missing_field(field: &'static str) -> Self {
        Self { field, kind: FaultKind::Absent }
    }
}

/// The body object, read field by field in the order the struct declares its fields.
struct Fields(Map<String, Value>);

impl<'de> de::Deserializer<'de> for Fields {
    type Error = FieldError;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_map(InOrder { map: self.0, fields: fields.iter(), current: None })
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        self.deserialize_struct("", &[], visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

struct InOrder {
    map: Map<String, Value>,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<(&'static str, Value)>,
}

impl<'de> de::MapAccess<'de> for InOrder {
    type Error = FieldError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, FieldError> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some((field, self.map.remove(*field).unwrap_or(Value::Null)));
        seed.deserialize(field.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, FieldError> {
        let (field, value) = self.current.take().unwrap_or(("", Value::Null));
        seed.deserialize(FieldValue(value)).map_err(|error| FieldError { field, ..error })
    }
}

/// One field's JSON value. An array or an object (a key's `scopes`, `scopedUserIds`) is
/// read by `serde_json`, its first wrong element named in its words.
struct FieldValue(Value);

impl<'de> de::Deserializer<'de> for FieldValue {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                _ => Err(de::Error::invalid_type(de::Unexpected::Other("number"), &visitor)),
            },
            Value::String(s) => visitor.visit_string(s),
            nested @ (Value::Array(_) | Value::Object(_)) => {
                // What the field takes, in serde's words: a list is "a sequence", a map "a map".
                let expected = (&visitor as &dyn de::Expected).to_string();
                let (unexpected, fits) = match nested {
                    Value::Array(_) => (de::Unexpected::Seq, expected == "a sequence"),
                    _ => (de::Unexpected::Map, expected == "a map"),
                };
                if !fits {
                    return Err(de::Error::invalid_type(unexpected, &visitor));
                }
                nested
                    .deserialize_any(visitor)
                    .map_err(|error| FieldError { field: "", kind: FaultKind::Other(error.to_string()) })
            }
        }
    }

    /// `null` (and so an absent field) is `None`, as everywhere in this API.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;
    use serde::Deserialize;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder().method("POST").uri("/auth/login");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body)).unwrap()
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        email: Option<String>,
        flag: Option<bool>,
        n: Option<String>,
    }

    #[test]
    fn json_objects_are_read_into_typed_bodies() {
        let body: Sample =
            body(&request(Some("application/json; charset=utf-8"), r#"{"email":"a@b.io","flag":null,"unknown":[1]}"#))
                .unwrap();
        assert_eq!(body, Sample { email: Some("a@b.io".into()), ..Sample::default() });
    }

    #[test]
    fn the_first_wrong_field_in_declared_order_is_named() {
        let wrong = |text: &str| super::body::<Sample>(&request(None, text)).unwrap_err();
        assert_eq!(wrong(r#"{"n":1,"email":true}"#), RequestError::InvalidBody("email must be a string".into()).into());
        assert_eq!(wrong(r#"{"flag":"yes"}"#), RequestError::InvalidBody("flag must be a boolean".into()).into());
        assert_eq!(wrong(r#"{"n":{"a":1}}"#), RequestError::InvalidBody("n must be a string".into()).into());
        // Lists and maps are read when the field takes one, their first wrong element named.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code, reason = "read for its errors")]
        struct Lists {
            list: Option<Vec<String>>,
            map: Option<std::collections::BTreeMap<String, String>>,
        }
        let lists = |text: &str| body::<Lists>(&request(None, text));
        let read = lists(r#"{"list":["a","b"],"map":{"c":"d"}}"#).unwrap();
        assert_eq!((read.list.unwrap().len(), read.map.unwrap()["c"].as_str()), (2, "d"));
        let message = |text: &str| match lists(text) {
            Err(Failure::Request(RequestError::InvalidBody(message))) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(message(r#"{"list":{"a":"b"}}"#), "list must be a sequence");
        assert_eq!(message(r#"{"map":["a"]}"#), "map must be a map");
        assert!(message(r#"{"list":["a",1]}"#).starts_with("list: invalid type: integer `1`, expected a string"));
    }

    #[test]
    fn malformed_and_non_object_bodies_are_refused() {
        assert_eq!(JsonBody::from_request(&request(None, "{nope")).unwrap_err(), RequestError::InvalidJson);
        assert!(matches!(JsonBody::from_request(&request(None, "[1,2]")), Err(RequestError::InvalidBody(_))));
        assert!(JsonBody::from_request(&request(None, "")).is_ok());
    }

    #[test]
    fn other_content_types_and_large_bodies_are_refused() {
        let err = JsonBody::from_request(&request(Some("application/x-www-form-urlencoded"), "a=b")).unwrap_err();
        assert_eq!(err, RequestError::UnsupportedContentType);
        assert!(JsonBody::from_request(&request(Some("application/vnd.api+json"), "{}")).is_ok());
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
        assert_eq!(JsonBody::from_request(&request(None, &big)).unwrap_err(), RequestError::PayloadTooLarge);
    }
}
