//! HTTP: reading requests, the one error mapping, responses, and the route table.

pub mod authorizer;
pub mod bodies;
pub mod error;
pub mod gateway;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod request;
pub mod routes;
pub mod schema;

pub use routes::{dispatch, Endpoint};

use error::{Failure, PublicError};
use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use schema::ErrorBody;
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
