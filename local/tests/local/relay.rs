//! `local --relay-origin` against a small relay of the test's own (axum on 127.0.0.1:0)
//! that records every request it receives: the decision and the metering happen before
//! the relay is reached, the gateway's headers arrive and the client's forged ones do not,
//! event streams are not buffered, WebSockets are spliced, and a relay that is down is a
//! 502. Timeouts are failure guards only.

use super::{email, Server, PASSWORD};
use axum::body::{to_bytes, Body};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "gateway-secret-for-tests-0123456789";

/// A request as the relay received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

#[derive(Clone, Default)]
struct Relay {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The event stream sends its second event only once this is notified.
    next_event: Arc<Notify>,
}

/// The relay, serving on a free port until the test's runtime ends.
struct Origin {
    address: SocketAddr,
    relay: Relay,
}

impl Origin {
    async fn start() -> Self {
        let relay = Relay::default();
        let app = Router::new()
            .route("/events", get(events))
            .route("/relay", get(socket))
            .fallback(record)
            .with_state(relay.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { address, relay }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> Vec<Seen> {
        self.relay.seen.lock().unwrap().clone()
    }
}

impl Relay {
    fn keep(&self, method: &str, uri: String, headers: HeaderMap, body: String) {
        self.seen.lock().unwrap().push(Seen { method: method.to_owned(), uri, headers, body });
    }
}

/// Any other route: recorded, and answered with what was received.
async fn record(State(relay): State<Relay>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = String::from_utf8(to_bytes(body, 1 << 20).await.unwrap().to_vec()).unwrap();
    relay.keep(parts.method.as_str(), parts.uri.to_string(), parts.headers, body.clone());
    let answer = json!({"path": parts.uri.path(), "body": body});
    ([("x-relay", "yes"), ("content-type", "application/json")], answer.to_string()).into_response()
}

/// An event stream: event one, then event two only once the test has received event one.
async fn events(State(relay): State<Relay>, headers: HeaderMap) -> Response {
    relay.keep("GET", "/events".into(), headers, String::new());
    let (events, stream) = futures::channel::mpsc::unbounded::<Result<&'static str, Infallible>>();
    let next = relay.next_event.clone();
    tokio::spawn(async move {
        let _ = events.unbounded_send(Ok("event: tick\ndata: one\n\n"));
        next.notified().await;
        let _ = events.unbounded_send(Ok("event: tick\ndata: two\n\n"));
    });
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(stream))
        .into_response()
}

/// A WebSocket that echoes every text and binary message.
async fn socket(State(relay): State<Relay>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    relay.keep("GET", "/relay".into(), headers, String::new());
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Text(_) | Message::Binary(_)) && socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Fails the test instead of hanging it.
async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// `local` in front of `origin`, the secret from the environment as a service would set it.
fn in_front_of(data: &Path, origin: &str) -> Server {
    Server::start_with_args(data, &[("GATEWAY_SECRET", SECRET)], &["--relay-origin", origin])
}

/// A fresh account's master key and id.
async fn account(server: &Server) -> (String, String) {
    let (status, registered) =
        server.send("POST", "/auth/register", None, Some(json!({"email": email(), "password": PASSWORD}))).await;
    assert_eq!(status, 201, "{registered}");
    (registered["apiKey"].as_str().unwrap().to_owned(), registered["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn an_admitted_request_reaches_the_relay_with_the_gateways_headers_and_is_counted() {
    let origin = Origin::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = in_front_of(data.path(), &origin.url());
    let (key, user_id) = account(&server).await;

    let response = server
        .http
        .get(format!("{}/api/clients?limit=5&q=a%20b", server.base))
        .header("x-api-key", &key)
        .header("x-foundry-auth-user-id", "forged")
        .header("x-foundry-auth-gateway", "forged")
        .header("x-foundry-auth-invented", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-relay"], "yes", "the relay's headers come back");
    assert!(response.headers().get("access-control-allow-origin").is_none(), "the relay's CORS, untouched");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["path"], "/api/clients");

    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let request = &seen[0];
    assert_eq!((request.method.as_str(), request.uri.as_str()), ("GET", "/api/clients?limit=5&q=a%20b"));
    assert_eq!(request.header("x-foundry-auth-user-id"), Some(user_id.as_str()));
    assert_eq!(request.header("x-foundry-auth-key-type"), Some("master"));
    assert_eq!(request.header("x-foundry-auth-scoped-key-id"), Some(""));
    assert_eq!(request.header("x-foundry-auth-requests-this-month"), Some("1"));
    assert_eq!(request.header("x-foundry-auth-requests-today"), Some("1"));
    assert_eq!(request.header("x-foundry-auth-gateway"), Some(SECRET));
    assert!(request.header("x-foundry-auth-invented").is_none());
    assert_eq!(request.headers.get_all("x-foundry-auth-user-id").iter().count(), 1, "no forged value beside ours");
    assert_eq!(request.header("x-api-key"), Some(key.as_str()));
    assert_eq!(request.header("host"), Some(origin.address.to_string().as_str()));
    assert_eq!(request.header("x-forwarded-for"), Some("127.0.0.1"));

    let posted = server
        .http
        .post(format!("{}/api/roll", server.base))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(r#"{"formula":"1d20"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let posted: Value = posted.json().await.unwrap();
    assert_eq!(posted["body"], r#"{"formula":"1d20"}"#, "the body is forwarded");
    let seen = origin.seen();
    assert_eq!((seen[1].method.as_str(), seen[1].body.as_str()), ("POST", r#"{"formula":"1d20"}"#));

    let (status, user) = server.send("GET", "/auth/user-data", Some(&key), None).await;
    assert_eq!((status, user["requestsThisMonth"].as_u64()), (200, Some(2)), "{user}");
    server.stop();
}

#[tokio::test]
async fn a_refused_request_is_answered_as_api_gateway_does_and_never_reaches_the_relay() {
    let origin = Origin::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = in_front_of(data.path(), &origin.url());
    let credentials = json!({"email": email(), "password": PASSWORD});
    let (_, registered) = server.send("POST", "/auth/register", None, Some(credentials.clone())).await;
    let (_, regenerated) = server.send("POST", "/auth/regenerate-key", None, Some(credentials)).await;
    let replaced = registered["apiKey"].as_str().unwrap();
    assert_ne!(Some(replaced), regenerated["apiKey"].as_str());

    for (key, status, message) in [
        (None, 401, "Unauthorized"),
        (Some(""), 401, "Unauthorized"),
        (Some("not-a-key"), 403, "Forbidden"),
        (Some("frm_IFAn33AjJyE6832Q4SH6bZs9OFVPpdCai87q0bJ792"), 403, "Forbidden"),
        (Some(replaced), 403, "Forbidden"),
    ] {
        let mut request = server.http.get(format!("{}/api/clients", server.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{key:?}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"message": message}), "{key:?}");
    }
    assert!(origin.seen().is_empty(), "{:?}", origin.seen());

    let (status, body) = server.send("GET", "/auth/nowhere", None, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "the Auth API is still served here");
    server.stop();

    let server = Server::start(data.path());
    let (status, body) = server.send("GET", "/api/clients", None, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "without a relay, nothing is forwarded");
    server.stop();
}

#[tokio::test]
async fn an_event_stream_reaches_the_client_event_by_event() {
    let origin = Origin::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = in_front_of(data.path(), &origin.url());
    let (key, _) = account(&server).await;

    let mut response = guarded(
        "the stream's headers",
        server.http.get(format!("{}/events", server.base)).header("x-api-key", &key).send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut received = String::new();
    while !received.contains("data: one\n\n") {
        let chunk = guarded("event one, before event two is sent", response.chunk()).await.unwrap().unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!received.contains("two"), "{received}");
    origin.relay.next_event.notify_one();
    while !received.contains("data: two\n\n") {
        let chunk = guarded("event two", response.chunk()).await.unwrap().expect("event two arrives");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(received, "event: tick\ndata: one\n\nevent: tick\ndata: two\n\n");
    server.stop();
}

#[tokio::test]
async fn a_websocket_is_passed_through_undecided_and_echoed() {
    let origin = Origin::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = in_front_of(data.path(), &origin.url());
    let url = format!("{}/relay?id=table-1", server.base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("x-foundry-auth-user-id", "forged".parse().unwrap());

    let (mut socket, response) = guarded("the handshake", tokio_tungstenite::connect_async(request)).await.unwrap();
    assert_eq!(response.status(), 101);
    for text in ["hello", "the dragon wakes"] {
        guarded("a send", socket.send(tungstenite::Message::text(text))).await.unwrap();
        let echoed = guarded("the echo", socket.next()).await.unwrap().unwrap();
        assert_eq!(echoed, tungstenite::Message::text(text));
    }
    guarded("the close", socket.close(None)).await.unwrap();

    let seen = origin.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("x-foundry-auth-gateway"), Some(SECRET));
    assert!(seen[0].header("x-foundry-auth-user-id").is_none(), "forged headers are removed, none written");
    assert!(seen[0].header("x-api-key").is_none());
    server.stop();
}

#[tokio::test]
async fn a_relay_that_is_down_is_a_502() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let data = tempfile::tempdir().unwrap();
    let server = in_front_of(data.path(), &down);
    let (key, _) = account(&server).await;
    let response =
        guarded("the answer", server.http.get(format!("{}/api/clients", server.base)).header("x-api-key", &key).send())
            .await
            .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "Relay unavailable", "code": "bad_gateway"}));
    server.stop();
}

#[test]
fn a_new_service_key_is_printed_with_its_digest() {
    let output = Command::new(env!("CARGO_BIN_EXE_local")).arg("--new-service-key").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = |label: &str| {
        stdout.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_else(|| panic!("{label} in {stdout}")).trim()
    };
    let key = line("service key:");
    assert!(key.starts_with("fsv_") && key.len() == 46, "{key}");
    let digest = line("digest:");
    assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    assert!(stdout.contains("SERVICE_KEY_DIGESTS"), "{stdout}");
}

#[test]
fn a_bad_service_key_digest_is_refused_without_repeating_it() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--listen", "127.0.0.1:0", "--service-key-digest", "fsv_NotADigestButAKey", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--service-key-digest"), "{stderr}");
    assert!(!stderr.contains("NotADigestButAKey"), "{stderr}");
}
