//! The `local` binary, driven over real HTTP through every route of the contract, with
//! the reset token read from the outbox. No emulator and no AWS account are involved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The server in front of a relay (`--relay-origin`), against an origin of the test's own.
#[path = "local/relay.rs"]
mod relay;

/// `POST /auth/verify` over HTTP.
#[path = "local/verify.rs"]
mod verify;

const PASSWORD: &str = "Tavern-Brawl-42";

/// A running `local` server over a data directory; stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    fn start_with(data: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_args(data, env, &[])
    }

    fn start_with_args(data: &Path, env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0", "--reset-url", "https://relay.example.io/reset", "--data"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the server prints where it listens").unwrap();
        let base = first.strip_prefix("foundry-auth listening on ").unwrap_or_else(|| panic!("{first}")).to_owned();
        let second = lines.next().unwrap().unwrap();
        assert!(second.contains(&data.display().to_string()), "{second}");
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, base, http: reqwest::Client::new() }
    }

    /// Stops the server as Ctrl-C would and waits until it has exited.
    fn stop(mut self) {
        terminate(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a clean shutdown: {status}");
    }

    async fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn email() -> String {
    format!("player-{}@example.io", uuid::Uuid::new_v4().simple())
}

/// Reads the reset token from the newest email in the outbox addressed to `to`.
fn token_from_outbox(outbox: &Path, to: &str) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let raw = files
        .iter()
        .rev()
        .map(|p| std::fs::read(p).unwrap())
        .find(|raw| String::from_utf8_lossy(raw).contains(&format!("To: {to}")))
        .expect("an email to the account is in the outbox");
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(message.subject().unwrap().contains("Reset"));
    let text = message.body_text(0).unwrap();
    let start = text.find("reset-token=").unwrap() + "reset-token=".len();
    text[start..].chars().take_while(char::is_ascii_alphanumeric).collect()
}

/// The permission bits of a file or directory.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_and_every_email_are_readable_by_their_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("auth-data");
    let server = Server::start(&data);
    let account = email();
    let (status, _) =
        server.send("POST", "/auth/register", None, Some(json!({"email": account, "password": PASSWORD}))).await;
    assert_eq!(status, 201);
    let (status, _) = server.send("POST", "/auth/forgot-password", None, Some(json!({"email": account}))).await;
    assert_eq!(status, 200);
    token_from_outbox(&data.join("outbox"), &account);
    server.stop();
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("outbox")), 0o700, "the outbox");
    for file in std::fs::read_dir(&data).unwrap().chain(std::fs::read_dir(data.join("outbox")).unwrap()) {
        let path = file.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn a_data_directory_open_to_other_users_is_warned_about_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stderr.take().unwrap()).lines().next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("WARN") && first.contains("chmod 700") && first.contains("755"), "{first}");
}

#[tokio::test]
async fn every_route_over_http_with_the_reset_token_from_the_outbox() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let email = email();
    let credentials = json!({"email": email, "password": PASSWORD});

    let (status, registered) = server.send("POST", "/auth/register", None, Some(credentials.clone())).await;
    assert_eq!(status, 201, "{registered}");
    let mut key = registered["apiKey"].as_str().unwrap().to_owned();
    let (status, login) = server.send("POST", "/auth/login", None, Some(credentials.clone())).await;
    assert_eq!((status, login["apiKey"].as_str()), (200, Some(key.as_str())));
    let (status, regenerated) = server.send("POST", "/auth/regenerate-key", None, Some(credentials.clone())).await;
    assert_eq!(status, 200);
    let old = std::mem::replace(&mut key, regenerated["apiKey"].as_str().unwrap().to_owned());
    assert_eq!(server.send("GET", "/auth/user-data", Some(&old), None).await.0, 401);
    let (status, user) = server.send("GET", "/auth/user-data", Some(&key), None).await;
    assert_eq!((status, user["email"].as_str()), (200, Some(email.as_str())));
    assert_eq!(server.send("GET", "/auth/export-data", Some(&key), None).await.0, 200);

    let (status, created) = server
        .send("POST", "/auth/api-keys", Some(&key), Some(json!({"name": "bot", "foundryPassword": "Foundry-Pass-1"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let scoped = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, listed) = server.send("GET", "/auth/api-keys", Some(&key), None).await;
    assert_eq!((status, listed["keys"][0]["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(server.send("GET", "/auth/user-data", Some(&scoped), None).await.0, 403);
    assert_eq!(server.send("DELETE", &format!("/auth/api-keys/{id}"), Some(&key), None).await.0, 200);
    assert_eq!(server.send("GET", "/auth/user-data", Some(&scoped), None).await.0, 401);

    let (status, _) = server.send("POST", "/auth/forgot-password", None, Some(json!({"email": email}))).await;
    assert_eq!(status, 200);
    let token = token_from_outbox(&data.path().join("outbox"), &email);
    let (status, valid) = server.send("GET", &format!("/auth/validate-reset-token/{token}"), None, None).await;
    assert_eq!((status, valid), (200, json!({"valid": true})));
    let reset = json!({"token": token, "password": "New-Adventure-8"});
    assert_eq!(server.send("POST", "/auth/reset-password", None, Some(reset.clone())).await.0, 200);
    assert_eq!(server.send("POST", "/auth/reset-password", None, Some(reset)).await.0, 400);
    let new_credentials = json!({"email": email, "password": "New-Adventure-8"});
    assert_eq!(server.send("POST", "/auth/login", None, Some(new_credentials)).await.0, 200);

    let change = json!({"currentPassword": "New-Adventure-8", "newPassword": "Third-Time-9"});
    assert_eq!(server.send("POST", "/auth/change-password", Some(&key), Some(change)).await.0, 200);
    let delete = json!({"confirmEmail": email, "password": "Third-Time-9"});
    assert_eq!(server.send("DELETE", "/auth/account", Some(&key), Some(delete)).await.0, 200);
    assert_eq!(server.send("GET", "/auth/user-data", Some(&key), None).await.0, 401);
    server.stop();
}

#[tokio::test]
async fn requests_are_answered_as_api_gateway_would_pass_them() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (status, body) = server.send("GET", "/auth/nowhere", None, None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = server.send("GET", "/auth/register", None, None).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));
    let wrong_method = server.http.put(format!("{}/auth/api-keys", server.base)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST, GET");
    let big = json!({"email": email(), "password": "x".repeat(20_000)});
    let (status, body) = server.send("POST", "/auth/login", None, Some(big)).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));

    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/auth/user-data", server.base))
        .header("origin", "https://foundry.example.io")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let allowed = |name: &str| preflight.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(allowed("access-control-allow-origin"), "*");
    assert!(allowed("access-control-allow-headers").contains("x-api-key"));
    assert!(allowed("access-control-allow-methods").contains("DELETE"));
    let plain = server.http.get(format!("{}/auth/user-data", server.base)).send().await.unwrap();
    assert_eq!(plain.headers()["access-control-allow-origin"], "*");
    assert_eq!(plain.status(), 401);
    server.stop();
}

#[tokio::test]
async fn accounts_and_keys_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let credentials = json!({"email": email(), "password": PASSWORD});
    let (_, registered) = server.send("POST", "/auth/register", None, Some(credentials.clone())).await;
    let key = registered["apiKey"].as_str().unwrap().to_owned();
    let (_, created) = server.send("POST", "/auth/api-keys", Some(&key), Some(json!({"name": "kept"}))).await;
    server.stop();

    let server = Server::start(data.path());
    let (status, login) = server.send("POST", "/auth/login", None, Some(credentials)).await;
    assert_eq!((status, login["apiKey"].as_str()), (200, Some(key.as_str())), "the master key decrypts after restart");
    let (_, listed) = server.send("GET", "/auth/api-keys", Some(&key), None).await;
    assert_eq!(listed["keys"][0]["id"], created["id"]);
    server.stop();
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_one_account() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let email = email();
    let attempts = (0..8).map(|i| {
        let spelled = if i % 2 == 0 { email.clone() } else { email.to_uppercase() };
        server.send("POST", "/auth/register", None, Some(json!({"email": spelled, "password": PASSWORD})))
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    server.stop();
}

#[tokio::test]
async fn the_embedded_store_keeps_the_throttles() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(data.path(), &[("THROTTLE_ACCOUNT_FAILURES", "2/900")]);
    let credentials = json!({"email": email(), "password": PASSWORD});
    server.send("POST", "/auth/register", None, Some(credentials.clone())).await;
    let wrong = json!({"email": credentials["email"], "password": "Wrong-Pass-1"});
    for _ in 0..2 {
        assert_eq!(server.send("POST", "/auth/login", None, Some(wrong.clone())).await.0, 401);
    }
    let response = server
        .http
        .post(format!("{}/auth/login", server.base))
        .header("content-type", "application/json")
        .body(credentials.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "900");
    assert_eq!(response.headers()["ratelimit-limit"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "Too many failed attempts, please try again later");
    server.stop();

    // The lock outlives a restart.
    let server = Server::start_with(data.path(), &[("THROTTLE_ACCOUNT_FAILURES", "2/900")]);
    assert_eq!(server.send("POST", "/auth/login", None, Some(credentials)).await.0, 429);
    server.stop();
}

#[tokio::test]
async fn the_web_pages_are_served_beside_the_api_with_their_security_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    for path in ["/", "/signup", "/forgot-password", "/reset-password", "/account", "/assets/account.js"] {
        let response = server.http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.get("access-control-allow-origin").is_none(), "pages are not for other origins");
    }
    let (status, body) = server.send("GET", "/auth/validate-reset-token/abc", None, None).await;
    assert_eq!((status, body["valid"].as_bool()), (200, Some(false)), "the API beside them is unchanged");
    server.stop();
}

#[tokio::test]
async fn the_openapi_description_is_served_and_is_the_committed_file() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let response = server.http.get(format!("{}/openapi.json", server.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = response.text().await.unwrap();
    let committed = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json")).unwrap();
    assert!(
        served == committed,
        "openapi.json differs from the document the code generates; regenerate it with\n\
         cargo run -q -p local -- --print-openapi > openapi.json"
    );
    let document: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let operations: usize =
        document["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(operations, shared::http::Endpoint::ALL.len());
    server.stop();
}
