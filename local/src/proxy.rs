//! Stands in front of a relay (`--relay-origin`), as API Gateway and the `authorizer`
//! function do when deployed: every request for one of the relay's routes is decided by
//! the authorizer's own logic (and counted when admitted), then forwarded with the
//! authorizer's context as `x-foundry-auth-*` headers and the gateway secret, so a relay
//! runs behind `local` exactly as it runs behind the HTTP API. Refusals are answered here,
//! as API Gateway answers them, and never reach the relay.
//!
//! Bodies are streamed both ways (a relay's event streams reach the client event by
//! event), and a WebSocket upgrade is passed through undecided and unmetered, since the
//! relay authenticates a socket in its first message, then spliced both ways.

use axum::body::Body;
use axum::http::header::{self, HeaderName};
use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use shared::domain::app::App;
use shared::domain::error::Chain;
use shared::domain::metering::{authorize, Ask, Authorization};
use shared::http::gateway::{context_headers, GATEWAY_SECRET_HEADER, HEADER_PREFIX};
use shared::http::request::API_KEY_HEADER;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection to the relay may take before the client is told it is
/// unavailable. Only the connection: a response (an event stream) may last for hours.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Headers that describe one connection, not the message (RFC 9110, 7.6.1), so a proxy
/// never passes them on; `proxy-connection` and `keep-alive` are the legacy ones.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const UNAUTHORIZED: &str = r#"{"message":"Unauthorized"}"#;
const FORBIDDEN: &str = r#"{"message":"Forbidden"}"#;
const UNAVAILABLE: &str = r#"{"error":"Relay unavailable","code":"bad_gateway"}"#;

/// Whether `method path` belongs to the relay: anything that is not the Auth API
/// (`/auth`, `/auth/*`), its description (`/openapi.json`), a page, or a CORS preflight.
/// Preflights stay here because API Gateway answers them itself (the API's CORS
/// configuration) before any authorizer runs.
pub fn forwards(method: &Method, path: &str) -> bool {
    let auth = path == "/auth" || path.starts_with("/auth/");
    let page = matches!(*method, Method::GET | Method::HEAD) && pages::serves(path);
    !auth && !page && path != "/openapi.json" && *method != Method::OPTIONS
}

/// `--relay-origin`: the scheme and authority of the relay, with no path or query.
#[derive(Debug, Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// The `Host` the relay receives.
    host: HeaderValue,
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const EXAMPLE: &str = "e.g. http://127.0.0.1:3010";
        let uri: Uri = text.parse().map_err(|_| format!("not a URL ({EXAMPLE})"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(format!("the scheme must be http or https ({EXAMPLE})")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| format!("a host is required ({EXAMPLE})"))?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!("an origin has no path or query ({EXAMPLE})"));
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| format!("not a host ({EXAMPLE})"))?;
        Ok(Self { scheme, authority, host })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// `--gateway-secret`: kept out of `Debug` (and so out of any log of the arguments).
/// Taken as it is by clap, which would otherwise repeat a refused value in its error.
#[derive(Clone)]
pub struct GatewaySecret(String);

impl From<String> for GatewaySecret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Debug for GatewaySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewaySecret(..)")
    }
}

/// Why the relay's client could not be set up (never containing the secret).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("--gateway-secret / GATEWAY_SECRET must be visible ASCII characters (a header value)")]
    Secret,
    #[error("no root certificates for the https relay origin could be loaded: {0}")]
    Roots(#[source] std::io::Error),
    #[error("TLS setup for the relay origin failed: {0}")]
    Tls(#[source] rustls::Error),
}

/// The relay behind this server and the client that reaches it.
pub struct Relay {
    origin: Origin,
    secret: Option<HeaderValue>,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

impl Relay {
    pub fn new(origin: Origin, secret: Option<GatewaySecret>) -> Result<Self, SetupError> {
        let secret = secret.map(|GatewaySecret(text)| header_secret(&text)).transpose()?;
        let client = client(&origin)?;
        Ok(Self { origin, secret, client })
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Decides, then forwards: the response is the relay's, streamed, or a refusal.
    pub async fn forward(&self, app: &App, peer: SocketAddr, request: Request<Body>) -> Response<Body> {
        if is_websocket(request.headers()) {
            return self.tunnel(peer, request).await;
        }
        let authorization = match decide(app, request.method(), request.uri(), request.headers()).await {
            Ok(authorization) => authorization,
            Err(refusal) => return refusal.answer(),
        };
        let mut outbound = self.outbound(peer, request);
        if let Err(refusal) = add_context(outbound.headers_mut(), &authorization) {
            return refusal.answer();
        }
        match self.client.request(outbound).await {
            Ok(response) => inbound(response),
            Err(error) => unavailable(&error),
        }
    }

    /// A WebSocket handshake, passed to the relay as it is (the relay authenticates the
    /// socket in its first message); on `101 Switching Protocols` both upgraded
    /// connections are spliced together until either side closes.
    async fn tunnel(&self, peer: SocketAddr, mut request: Request<Body>) -> Response<Body> {
        let client_side = hyper::upgrade::on(&mut request);
        let upgrade = request.headers().get(header::UPGRADE).cloned();
        let mut outbound = self.outbound(peer, request);
        if let Some(upgrade) = upgrade {
            outbound.headers_mut().insert(header::UPGRADE, upgrade);
            outbound.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        let mut response = match self.client.request(outbound).await {
            Ok(response) => response,
            Err(error) => return unavailable(&error),
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return inbound(response);
        }
        let relay_side = hyper::upgrade::on(&mut response);
        tokio::spawn(splice(client_side, relay_side));
        switched(response)
    }

    /// The client's request as the relay receives it: at the relay's origin, with the
    /// path and query kept, the body streamed, no hop-by-hop headers, none of the client's
    /// own `x-foundry-auth-*` headers (which only this server may write), the client's
    /// address in `x-forwarded-for`, and the gateway secret.
    fn outbound(&self, peer: SocketAddr, request: Request<Body>) -> Request<Body> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("{}{path}", self.origin);
        parts.uri = uri.parse().unwrap_or_else(|_| Uri::from_static("/"));
        parts.version = Version::HTTP_11;
        let headers = &mut parts.headers;
        remove_hop_by_hop(headers);
        remove_gateway_headers(headers);
        forwarded_for(headers, peer);
        if let Some(host) = headers.remove(header::HOST) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), host);
        }
        headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("http"));
        headers.insert(header::HOST, self.origin.host.clone());
        if let Some(secret) = &self.secret {
            headers.insert(HeaderName::from_static(GATEWAY_SECRET_HEADER), secret.clone());
        }
        Request::from_parts(parts, body)
    }
}

/// The secret as a header value, marked sensitive (redacted in `Debug`, never indexed).
fn header_secret(text: &str) -> Result<HeaderValue, SetupError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SetupError::Secret);
    }
    let mut value = HeaderValue::from_str(text).map_err(|_| SetupError::Secret)?;
    value.set_sensitive(true);
    Ok(value)
}

/// hyper's pooled HTTP/1.1 client; for an https origin with rustls over ring and the
/// system's roots (read once, here, so a missing store fails at start, not per request).
fn client(origin: &Origin) -> Result<Client<HttpsConnector<HttpConnector>, Body>, SetupError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = HttpsConnectorBuilder::new();
    let connector = if origin.scheme == Scheme::HTTPS {
        builder.with_provider_and_native_roots(provider).map_err(SetupError::Roots)?.https_only()
    } else {
        // Never used for an http origin, but the connector wants a configuration.
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(SetupError::Tls)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(tls).https_or_http()
    };
    Ok(Client::builder(TokioExecutor::new()).build(connector.enable_http1().wrap_connector(http)))
}

/// API Gateway's two answers to a request its authorizer did not admit.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// No key presented: 401 `{"message":"Unauthorized"}`.
    Unauthorized,
    /// Any other refusal: 403 `{"message":"Forbidden"}`.
    Forbidden,
}

impl Refusal {
    fn answer(self) -> Response<Body> {
        match self {
            Self::Unauthorized => answer(StatusCode::UNAUTHORIZED, UNAUTHORIZED),
            Self::Forbidden => answer(StatusCode::FORBIDDEN, FORBIDDEN),
        }
    }
}

/// The authorizer's decision, with API Gateway's answers to a refusal: 401 when no key
/// is presented (the gateway answers that without calling the authorizer, so neither do
/// we), 403 for any other refusal, and 403 too when the decision could not be made (fails
/// closed; logged with its causes, never with the key). As the authorizer, it holds a
/// scoped key to the Foundry client and user the query names (`clientId`, `userId`) and
/// to the scope the route needs.
async fn decide(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<Authorization, Refusal> {
    let Some(presented) = headers.get(API_KEY_HEADER).filter(|v| !v.is_empty()) else {
        return Err(Refusal::Unauthorized);
    };
    let presented = String::from_utf8_lossy(presented.as_bytes());
    let (client_id, user_id) = (query(uri, "clientId"), query(uri, "userId"));
    let ask = Ask {
        client_id: client_id.as_deref(),
        user_id: user_id.as_deref(),
        ..Ask::route(app, Some(&presented), method.as_str(), uri.path())
    };
    match authorize(app, ask).await {
        Ok(Some(authorization)) => Ok(authorization),
        Ok(None) => Err(Refusal::Forbidden),
        Err(error) => {
            tracing::error!(error = %Chain(&error), "refused a relay request that could not be checked");
            Err(Refusal::Forbidden)
        }
    }
}

/// The first value of a query parameter, decoded, as API Gateway hands it to the authorizer.
fn query(uri: &Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// Writes the authorizer's context as the gateway does. A value that cannot be a header
/// refuses the request rather than forwarding it without its scope.
fn add_context(headers: &mut HeaderMap, authorization: &Authorization) -> Result<(), Refusal> {
    let context = shared::http::authorizer::context(authorization);
    for (name, value) in context_headers(&context) {
        let Ok(value) = HeaderValue::from_str(&value) else {
            tracing::error!(header = name, "an authorizer context value is not a valid header value");
            return Err(Refusal::Forbidden);
        };
        headers.insert(HeaderName::from_static(name), value);
    }
    Ok(())
}

/// Whether this is a WebSocket handshake (`Connection: upgrade`, `Upgrade: websocket`).
fn is_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok());
    upgrade.is_some_and(|u| u.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
        && connection_tokens(headers).iter().any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// The names a `Connection` header lists (all of them hop-by-hop too).
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_tokens(headers) {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every `x-foundry-auth-*` header: a relay trusts them, so only we write them.
fn remove_gateway_headers(headers: &mut HeaderMap) {
    let forged: Vec<HeaderName> = headers.keys().filter(|n| n.as_str().starts_with(HEADER_PREFIX)).cloned().collect();
    for name in forged {
        headers.remove(name);
    }
}

/// Appends the client's address to `x-forwarded-for`, as API Gateway does.
fn forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let earlier = headers.get(&name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let list = match earlier {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&list) {
        headers.insert(name, value);
    }
}

/// The relay's response as the client receives it: status and headers kept (CORS
/// included), hop-by-hop headers dropped, the body streamed frame by frame.
fn inbound(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// The relay's `101 Switching Protocols`, with the upgrade it agreed to.
fn switched(response: Response<Incoming>) -> Response<Body> {
    let upgrade = response.headers().get(header::UPGRADE).cloned();
    let mut switched = inbound(response);
    if let Some(upgrade) = upgrade {
        switched.headers_mut().insert(header::UPGRADE, upgrade);
        switched.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    switched
}

/// Copies bytes both ways between the client's and the relay's upgraded connections.
async fn splice(client: OnUpgrade, relay: OnUpgrade) {
    let (client, relay) = match tokio::try_join!(client, relay) {
        Ok(both) => both,
        Err(error) => {
            tracing::warn!(error = %Chain(&error), "a WebSocket to the relay could not be upgraded");
            return;
        }
    };
    let (mut client, mut relay) = (TokioIo::new(client), TokioIo::new(relay));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut relay).await {
        tracing::debug!(error = %Chain(&error), "a WebSocket to the relay ended");
    }
}

/// 502 for a relay that could not be reached or failed mid-answer (logged with causes).
fn unavailable(error: &hyper_util::client::legacy::Error) -> Response<Body> {
    tracing::warn!(error = %Chain(error), "the relay could not be reached");
    answer(StatusCode::BAD_GATEWAY, UNAVAILABLE)
}

/// An answer of this server's own (not the relay's): JSON, readable by any origin, as
/// the other answers of the API.
fn answer(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    crate::server::allow_any_origin(response.headers_mut());
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_relays_routes_are_forwarded() {
        for (method, path) in
            [(Method::GET, "/clients"), (Method::POST, "/"), (Method::GET, "/authx"), (Method::GET, "/relay")]
        {
            assert!(forwards(&method, path), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/auth"),
            (Method::POST, "/auth/login"),
            (Method::GET, "/openapi.json"),
            (Method::GET, "/"),
            (Method::HEAD, "/signup"),
            (Method::OPTIONS, "/clients"),
        ] {
            assert!(!forwards(&method, path), "{method} {path}");
        }
    }

    #[test]
    fn an_origin_is_a_scheme_and_a_host_only() {
        assert_eq!(Origin::from_str("http://127.0.0.1:3010").unwrap().to_string(), "http://127.0.0.1:3010");
        assert_eq!(Origin::from_str("https://relay.example.io/").unwrap().to_string(), "https://relay.example.io");
        for bad in ["ftp://relay", "relay.example.io", "http://relay/api", "http://relay?x=1", "http://u:p@relay"] {
            assert!(Origin::from_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_and_forged_gateway_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert("x-foundry-auth-user-id", HeaderValue::from_static("forged"));
        headers.insert("X-Foundry-Auth-Gateway", HeaderValue::from_static("forged"));
        headers.insert("x-api-key", HeaderValue::from_static("frm_x"));
        remove_hop_by_hop(&mut headers);
        remove_gateway_headers(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-api-key"]);
    }

    #[test]
    fn the_secret_is_never_shown() {
        let secret = GatewaySecret::from("s3cret-value".to_owned());
        assert!(!format!("{secret:?}").contains("s3cret"));
        let value = header_secret("s3cret-value").unwrap();
        assert!(value.is_sensitive() && !format!("{value:?}").contains("s3cret"));
        assert!(header_secret("").is_err() && header_secret("two words").is_err());
    }
}
