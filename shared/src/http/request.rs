//! Reading requests deliberately: size, content type, JSON shape and field types.

use crate::http::error::RequestError;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Request, RequestExt};
use serde_json::{Map, Value};

pub const MAX_BODY_BYTES: usize = 16 * 1024;

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
            Ok(_) => Err(RequestError::InvalidBody("Request body must be a JSON object".into())),
            Err(_) => Err(RequestError::InvalidJson),
        }
    }

    /// A string field: absent or `null` is `None`; any other type is a 400 naming it.
    pub fn string(&self, field: &str) -> Result<Option<&str>, RequestError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RequestError::InvalidBody(format!("{field} must be a string"))),
        }
    }

    /// A string field that counts as given only when non-empty (as the relay's clients expect).
    pub fn non_empty(&self, field: &str) -> Result<Option<&str>, RequestError> {
        Ok(self.string(field)?.filter(|s| !s.is_empty()))
    }

    /// A boolean field: absent or `null` is `None`; any other type is a 400 naming it.
    pub fn boolean(&self, field: &str) -> Result<Option<bool>, RequestError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(RequestError::InvalidBody(format!("{field} must be a boolean"))),
        }
    }

    pub fn value(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The `x-api-key` header (names are case-insensitive). Never from the query string.
pub fn api_key(req: &Request) -> Option<&str> {
    req.headers().get("x-api-key").and_then(|v| v.to_str().ok())
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

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = lambda_http::http::Request::builder().method("POST").uri("/auth/login");
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        builder.body(Body::from(body)).unwrap()
    }

    #[test]
    fn json_objects_are_read_with_typed_fields() {
        let body = JsonBody::from_request(&request(
            Some("application/json; charset=utf-8"),
            r#"{"email":"a@b.io","n":1,"z":null,"e":""}"#,
        ))
        .unwrap();
        assert_eq!(body.string("email").unwrap(), Some("a@b.io"));
        assert_eq!(body.string("missing").unwrap(), None);
        assert_eq!(body.string("z").unwrap(), None);
        assert_eq!(body.non_empty("e").unwrap(), None);
        assert_eq!(body.string("n"), Err(RequestError::InvalidBody("n must be a string".into())));
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
