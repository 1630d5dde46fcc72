//! Answers: JSON bodies that are never cached, and the one rendering of a failure.

use crate::http::error::{Failure, PublicError};
use crate::http::schema::{ErrorBody, ErrorCode};
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

/// A JSON answer. Nothing this service answers may be cached: it is all about one account.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // The bodies are plain structs of strings, numbers and booleans: writing one cannot fail.
    let text = serde_json::to_string(body).unwrap_or_else(|_| String::from("{}"));
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, lambda_http::http::HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, lambda_http::http::HeaderValue::from_static("no-store"));
    response
}

/// How long a client is asked to wait before retrying a 503 (shed load, a busy or failing
/// dependency; nothing was half-written, so the same request may simply be sent again).
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

pub fn error_response(failure: &Failure) -> Response<Body> {
    let public = PublicError::from(failure);
    let mut response = json_response(public.status, &ErrorBody { error: public.message, code: public.code });
    if public.status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", lambda_http::http::HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS));
    }
    if let Some((limit, retry_after)) = public.rate_limit {
        let headers = response.headers_mut();
        for (name, value) in [
            ("retry-after", retry_after.to_string()),
            ("ratelimit-limit", limit.to_string()),
            ("ratelimit-remaining", "0".to_owned()),
            ("ratelimit-reset", retry_after.to_string()),
        ] {
            if let Ok(value) = lambda_http::http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// What a handler returns: its answer, or the failure that `error_response` answers.
pub type Answer = Result<Response<Body>, Failure>;

/// The message of a 404: an unknown path, or verify without a service key configured.
pub const NOT_FOUND: &str = "Not found";

pub fn not_found() -> Response<Body> {
    json_response(StatusCode::NOT_FOUND, &ErrorBody { error: NOT_FOUND.into(), code: ErrorCode::NotFound })
}
