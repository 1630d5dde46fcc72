//! Serves the route table over HTTP, passing each request to the handlers the way API
//! Gateway passes it to the Lambda functions: the same routing (404/405), the body size
//! limit, the client address as `sourceIp`, and CORS for browser clients. The account
//! holders' web pages are served beside the API, as the `web` function serves them, and
//! so is the API's OpenAPI description, at `/openapi.json`. With a relay behind it
//! (`--relay-origin`), every other request goes to the relay through [`crate::proxy`].

use crate::proxy::{self, Relay};
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use axum::Router;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use shared::domain::app::App;
use shared::http::error::RequestError;
use shared::http::request::MAX_BODY_BYTES;
use std::net::SocketAddr;
use std::sync::Arc;

/// What every request is served with: the app, and the relay behind this server, if any.
#[derive(Clone)]
struct Served {
    app: Arc<App>,
    relay: Option<Arc<Relay>>,
}

pub fn router(app: Arc<App>, relay: Option<Relay>) -> Router {
    Router::new().fallback(serve).with_state(Served { app, relay: relay.map(Arc::new) })
}

async fn serve(
    State(Served { app, relay }): State<Served>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    if let Some(relay) = relay.filter(|_| proxy::forwards(request.method(), request.uri().path())) {
        return relay.forward(&app, peer, request).await;
    }
    let page = matches!(*request.method(), Method::GET | Method::HEAD) && pages::serves(request.uri().path());
    if page {
        return pages::respond(request.method(), request.uri().path()).map(Body::from);
    }
    if request.method() == Method::GET && request.uri().path() == "/openapi.json" {
        let mut response = Response::new(Body::from(shared::http::openapi::document_json()));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        allow_any_origin(response.headers_mut());
        return response;
    }
    let mut response = if request.method() == Method::OPTIONS {
        preflight()
    } else {
        match to_lambda(request, peer).await {
            Ok(request) => from_lambda(shared::http::dispatch(&app, request).await),
            Err(refusal) => refusal,
        }
    };
    allow_any_origin(response.headers_mut());
    response
}

/// The request as the functions receive it from API Gateway (payload format 2.0).
async fn to_lambda(request: Request<Body>, peer: SocketAddr) -> Result<lambda_http::Request, Response<Body>> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| from_lambda(shared::http::response::error_response(&RequestError::PayloadTooLarge.into())))?;
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(Vec::from(bytes)) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(binary) => lambda_http::Body::Binary(binary.into_bytes()),
        }
    };
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(parts.uri.path().to_owned());
    http.protocol = Some(protocol(parts.version).to_owned());
    http.source_ip = Some(peer.ip().to_string());
    http.user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http = http;
    context.stage = Some("$default".into());
    Ok(lambda_http::Request::from_parts(parts, body).with_request_context(RequestContext::ApiGatewayV2(context)))
}

/// The protocol as API Gateway names it (`HTTP/1.1`).
fn protocol(version: axum::http::Version) -> &'static str {
    match version {
        axum::http::Version::HTTP_09 => "HTTP/0.9",
        axum::http::Version::HTTP_10 => "HTTP/1.0",
        axum::http::Version::HTTP_2 => "HTTP/2.0",
        axum::http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let body = match body {
        lambda_http::Body::Empty => Body::empty(),
        lambda_http::Body::Text(text) => Body::from(text),
        lambda_http::Body::Binary(bytes) => Body::from(bytes),
        _ => Body::empty(),
    };
    Response::from_parts(parts, body)
}

/// A CORS preflight, answered without authentication.
fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, x-api-key"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

pub(crate) fn allow_any_origin(headers: &mut HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}
