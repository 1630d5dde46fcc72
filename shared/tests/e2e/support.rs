//! The test harness: the real handlers, fed API Gateway HTTP API (payload 2.0) events
//! through `lambda_http`, over real adapters. Only the clock is replaced (so tests can move
//! time), the password hasher is wrapped to record which hashes it verified, and the mailer
//! to record what it sent.
//!
//! Two backends. Under `scripts/test.sh` (`AWS_ENDPOINT_URL` set): DynamoDB, SES v2 and KMS
//! in the local emulator the script starts. Under a plain `cargo test`: the local server's
//! adapters (redb, the outbox mailer, the AES-GCM cipher) in a temporary directory, so the
//! behaviours run with nothing but the Rust toolchain. Tests about the AWS adapters
//! themselves (faults, call counts, the stored items) are `#[ignore]`d with [`EMULATOR`]
//! as their reason; the test script runs them (`--run-ignored all`).

use chrono::Utc;
use lambda_http::Body;
use serde_json::{json, Value};
use shared::aws::{build_app_with, sdk_config};
use shared::config::{Config, Needs};
use shared::domain::app::App;
use shared::domain::clock::ManualClock;
use shared::domain::error::PortError;
use shared::domain::hasher::{Argon2Hasher, HashMemory, PasswordHasher, Work, RELAY_BCRYPT_COST};
use shared::domain::ports::{Mailer, OutgoingEmail, PortResult};
use shared::http::Endpoint;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use shared::domain::clock::Clock;

pub const PASSWORD: &str = "Tavern-Brawl-42";

/// Why a test is ignored under a plain `cargo test` (and run by `scripts/test.sh`).
pub const EMULATOR: &str = "needs the AWS emulator that scripts/test.sh starts";

pub struct Harness {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub hasher: Arc<RecordingHasher>,
    pub mailer: Arc<RecordingMailer>,
    pub config: Config,
    backend: Backend,
    /// The client address of this harness's requests (unless a call names its own): rate
    /// limits are shared through the store, and each test's clock is its own.
    address: String,
}

enum Backend {
    Emulator {
        dynamo: aws_sdk_dynamodb::Client,
        endpoint: String,
        /// The access key id this harness's service signs with: the emulator scopes
        /// injected faults and call counts to it, so tests in parallel never see each other's.
        access_key: String,
    },
    /// The data directory, removed when the harness is dropped.
    Embedded { _data: tempfile::TempDir },
}

impl Harness {
    pub async fn new() -> Self {
        Self::configured(|_| {}).await
    }

    pub async fn configured(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::build(adjust, false).await
    }

    /// With the SDK time-outs the functions run with. Other harnesses allow the emulator
    /// (one Python process serving every test at once) more time than DynamoDB needs.
    pub async fn with_production_time_outs() -> Self {
        Self::build(|_| {}, true).await
    }

    /// Whether this run has the emulator (`scripts/test.sh`) or the embedded adapters.
    pub fn on_emulator() -> bool {
        std::env::var_os("AWS_ENDPOINT_URL").is_some()
    }

    async fn build(adjust: impl FnOnce(&mut Config), production_time_outs: bool) -> Self {
        let mut config = if Self::on_emulator() {
            Config::from_env(Needs::ALL).unwrap_or_else(|e| panic!("{e}: run the tests through scripts/test.sh"))
        } else {
            Config::from_lookup(Needs::ALL, |name| {
                let value = match name {
                    "USERS_TABLE" => "users",
                    "SCOPED_KEYS_TABLE" => "scoped-keys",
                    "RESET_TOKENS_TABLE" => "reset-tokens",
                    "THROTTLE_TABLE" => "throttle",
                    "ACTIVITY_TABLE" => "activity",
                    "KMS_KEY_ID" => "alias/unused",
                    "EMAIL_FROM" => "no-reply@example.com",
                    "RESET_URL" => "https://relay.example.com/reset-password",
                    _ => return None,
                };
                Some(value.to_owned())
            })
            .expect("the embedded configuration is valid")
        };
        config.settings.reset_response_floor = Duration::ZERO;
        // Suites share the client address and the counters; the throttling suite turns
        // throttles on with limits of its own.
        config.settings.throttling = None;
        adjust(&mut config);
        // A /64 of its own: per-address budgets count an IPv6 client by its /64.
        let id = uuid::Uuid::new_v4().as_u128();
        let address = format!("2001:db8:{:x}:{:x}::1", (id >> 16) as u16, id as u16);
        let (mut app, backend) = if Self::on_emulator() {
            Self::emulator_app(&config, production_time_outs).await
        } else {
            let data = tempfile::tempdir().expect("a temporary directory");
            let app = shared::embedded::build_app(
                &data.path().join("data"),
                &data.path().join("outbox"),
                config.email_from.as_deref().expect("the embedded configuration has a sender"),
                config.settings.clone(),
            )
            .expect("the embedded adapters open");
            (app, Backend::Embedded { _data: data })
        };
        let clock = Arc::new(ManualClock::new(Utc::now()));
        app.clock = clock.clone();
        let hasher = Arc::new(RecordingHasher::new(Argon2Hasher::new()));
        app.hasher = hasher.clone();
        let mailer = Arc::new(RecordingMailer::new(app.mailer.clone()));
        app.mailer = mailer.clone();
        Self { app, clock, hasher, mailer, config, backend, address }
    }

    async fn emulator_app(config: &Config, production_time_outs: bool) -> (App, Backend) {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL is set");
        let access_key = format!("test-{}", uuid::Uuid::new_v4().simple());
        let credentials = aws_sdk_dynamodb::config::Credentials::new(&access_key, "test", None, None, "tests");
        let mut sdk = sdk_config().credentials_provider(credentials);
        if !production_time_outs {
            sdk = sdk.timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .operation_timeout(Duration::from_secs(60))
                    .build(),
            );
        }
        let app = build_app_with(config, &sdk.load().await);
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        (app, Backend::Emulator { dynamo: aws_sdk_dynamodb::Client::new(&sdk), endpoint, access_key })
    }

    fn emulator(&self) -> (&aws_sdk_dynamodb::Client, &str, &str) {
        match &self.backend {
            Backend::Emulator { dynamo, endpoint, access_key } => (dynamo, endpoint, access_key),
            Backend::Embedded { .. } => panic!("this test {EMULATOR}: mark it #[ignore = EMULATOR]"),
        }
    }

    /// A DynamoDB client of the emulator, for tests that read the stored items.
    pub fn dynamo(&self) -> &aws_sdk_dynamodb::Client {
        self.emulator().0
    }

    /// Makes the emulator fail this harness's requests to `operation` (`dynamodb:PutItem`,
    /// `kms:Encrypt`, `sesv2:SendEmail`, ...); see `scripts/emulator_server.py`.
    pub async fn inject(&self, operation: &str, fault: Value) {
        let (_, endpoint, access_key) = self.emulator();
        let mut fault = fault;
        fault["accessKey"] = json!(access_key);
        fault["operation"] = json!(operation);
        let answer = reqwest::Client::new()
            .post(format!("{endpoint}/__emulator/faults"))
            .json(&fault)
            .send()
            .await
            .expect("the emulator answers");
        assert!(answer.status().is_success(), "the emulator took the fault");
    }

    /// Lifts every fault injected for this harness.
    pub async fn heal(&self) {
        let (_, endpoint, access_key) = self.emulator();
        reqwest::Client::new()
            .delete(format!("{endpoint}/__emulator/faults?accessKey={access_key}"))
            .send()
            .await
            .expect("the emulator answers");
    }

    /// The requests this harness's service made so far, by operation.
    pub async fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        let (_, endpoint, access_key) = self.emulator();
        let url = format!("{endpoint}/__emulator/calls?accessKey={access_key}");
        reqwest::get(url).await.expect("the emulator answers").json().await.expect("JSON")
    }

    /// The emulator's counters (conflicts, faults, transactions), over every test.
    pub async fn emulator_stats(&self) -> Value {
        let (_, endpoint, _) = self.emulator();
        let url = format!("{endpoint}/__emulator/stats");
        reqwest::get(url).await.expect("the emulator answers").json().await.expect("JSON")
    }

    /// Answers one request through the endpoint's handler, as its Lambda function would.
    pub async fn send(&self, mut call: Call) -> Reply {
        call.source_ip.get_or_insert_with(|| self.address.clone());
        let request = call.request();
        Reply::from(call.endpoint.handle(&self.app, request).await)
    }

    pub async fn register(&self) -> Account {
        self.register_as(&unique_email(), PASSWORD).await
    }

    pub async fn register_as(&self, email: &str, password: &str) -> Account {
        let reply = self.send(call(Endpoint::Register).json(json!({"email": email, "password": password}))).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        Account { id: reply.str("id"), email: email.trim().to_owned(), key: reply.str("apiKey") }
    }

    /// An account as imported from the Node relay and not yet upgraded: its password
    /// stored as the relay's bcrypt hash (of [`RELAY_BCRYPT_COST`]).
    pub async fn register_relay_account(&self) -> Account {
        let account = self.register().await;
        let user = self.app.store.user(&account.id).await.unwrap().unwrap();
        let relay_hash = bcrypt::hash(PASSWORD, RELAY_BCRYPT_COST).unwrap();
        self.app.store.set_password(&user, &relay_hash, self.clock.now()).await.unwrap();
        account
    }

    /// Creates a scoped key with the master key; answers (id, key).
    pub async fn scoped_key(&self, master: &str, body: Value) -> (String, String) {
        let reply = self.send(call(Endpoint::CreateApiKey).key(master).json(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        (reply.str("id"), reply.str("key"))
    }

    /// Emails the service sent to `to` (through SES or the outbox), oldest first, as
    /// `{"to", "subject", "body"}` (the text part).
    pub async fn mails_to(&self, to: &str) -> Vec<Value> {
        self.mailer
            .sent()
            .into_iter()
            .filter(|mail| mail.to == to)
            .map(|mail| json!({"to": mail.to, "subject": mail.subject, "body": mail.text}))
            .collect()
    }

    /// Asks for a reset link and reads the token out of the email that carried it.
    pub async fn forgot_and_read_token(&self, email: &str) -> String {
        let before = self.mails_to(email).await.len();
        let reply = self.send(call(Endpoint::ForgotPassword).json(json!({"email": email}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let mails = self.mails_to(email).await;
        assert_eq!(mails.len(), before + 1, "one reset email was sent");
        reset_token_in(&mails[before])
    }

    /// Every item of every table, as JSON text.
    pub async fn dump_tables(&self) -> Vec<String> {
        let mut items = Vec::new();
        let tables = &self.config.tables;
        for table in [tables.users(), tables.scoped_keys(), tables.reset_tokens(), tables.activity()] {
            let table = table.unwrap();
            let mut start = None;
            loop {
                let out = self
                    .dynamo()
                    .scan()
                    .table_name(table)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .expect("scan");
                items.extend(out.items().iter().map(|item| format!("{item:?}")));
                match out.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
        }
        items
    }
}

pub fn reset_token_in(mail: &Value) -> String {
    let body = mail["body"].as_str().expect("the email has a body");
    let start = body.find("reset-token=").expect("the email carries the reset link") + "reset-token=".len();
    body[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect()
}

/// The scopes of a new key, as the authorizer's context writes them.
pub fn default_scopes() -> String {
    shared::domain::scopes::Scope::DEFAULT.map(shared::domain::scopes::Scope::name).join(" ")
}

/// Every scope, as the context of a master key or a key made before scopes writes them.
pub fn every_scope() -> String {
    shared::domain::scopes::Scope::ALL.map(shared::domain::scopes::Scope::name).join(" ")
}

pub fn unique_email() -> String {
    format!("player-{}@example.io", uuid::Uuid::new_v4().simple())
}

pub struct Account {
    pub id: String,
    pub email: String,
    pub key: String,
}

/// A request to one endpoint, turned into a payload 2.0 event.
#[derive(Clone)]
pub struct Call {
    pub endpoint: Endpoint,
    /// `None`: the harness's own address (or a fixed one outside a harness).
    source_ip: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    params: Vec<(String, String)>,
}

pub fn call(endpoint: Endpoint) -> Call {
    Call {
        endpoint,
        source_ip: None,
        headers: vec![("user-agent".into(), "foundry-auth-tests".into())],
        body: None,
        params: Vec::new(),
    }
}

impl Call {
    pub fn key(self, key: &str) -> Self {
        self.header("x-api-key", key)
    }

    /// The client address API Gateway reports (`requestContext.http.sourceIp`).
    pub fn sent_from(mut self, address: &str) -> Self {
        self.source_ip = Some(address.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, body: Value) -> Self {
        self.raw("application/json", &body.to_string())
    }

    pub fn raw(mut self, content_type: &str, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self.header("content-type", content_type)
    }

    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_owned(), value.to_owned()));
        self
    }

    fn path(&self) -> String {
        let mut path = self.endpoint.path().to_owned();
        for (name, value) in &self.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        path
    }

    /// The API Gateway HTTP API (payload format 2.0) event of this request.
    pub fn event(&self) -> Value {
        let method = self.endpoint.method().to_string();
        let path = self.path();
        let headers: serde_json::Map<String, Value> =
            self.headers.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
        let route_key = format!("{method} {}", self.endpoint.path());
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "a1b2c3d4e5",
                "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "a1b2c3d4e5",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip.as_deref().unwrap_or("203.0.113.7"),
                    "userAgent": "foundry-auth-tests"
                },
                "requestId": uuid::Uuid::new_v4().to_string(),
                "routeKey": route_key,
                "stage": "$default",
                "time": "26/Nov/2026:01:00:00 +0000",
                "timeEpoch": 1_795_654_800_000u64
            },
            "isBase64Encoded": false
        });
        if let Some(body) = &self.body {
            event["body"] = Value::from(body.clone());
        }
        if !self.params.is_empty() {
            let params: serde_json::Map<String, Value> =
                self.params.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
            event["pathParameters"] = Value::Object(params);
        }
        event
    }

    pub fn request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.event().to_string()).expect("lambda_http parses the event")
    }
}

/// A response, with its body parsed.
pub struct Reply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_else(|| panic!("{field} is a string in {}", self.body)).to_owned()
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }

    /// Asserts an error answer: status, message, and that a code comes with it.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!((self.status, self.error()), (status, message), "{}", self.text);
        assert!(self.body["code"].as_str().is_some_and(|c| !c.is_empty()), "{}", self.text);
        assert_eq!(self.header("content-type"), "application/json");
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

impl From<lambda_http::Response<Body>> for Reply {
    fn from(response: lambda_http::Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let text = String::from_utf8(body.as_ref().to_vec()).expect("UTF-8 body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status: parts.status.as_u16(), headers: parts.headers, body, text }
    }
}

/// Argon2 as in production, recording every stored hash it was asked to verify against.
pub struct RecordingHasher {
    inner: Argon2Hasher,
    pub verified: Mutex<Vec<String>>,
}

impl RecordingHasher {
    pub fn new(inner: Argon2Hasher) -> Self {
        Self { inner, verified: Mutex::new(Vec::new()) }
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.verified.lock().unwrap())
    }

    /// The hashing work of the verifications since the last take, as kinds and costs in
    /// a fixed order (the order they ran in is not the point).
    pub fn take_work(&self) -> Vec<Option<Work>> {
        let mut work: Vec<_> = self.take().iter().map(|phc| Work::of(phc)).collect();
        work.sort_by_key(|w| format!("{w:?}"));
        work
    }

    /// The work one failed check does: one verification of each decoy.
    pub fn decoys_work(&self) -> Vec<Option<Work>> {
        let mut work: Vec<_> = self.decoys().iter().map(|phc| Work::of(phc)).collect();
        work.sort_by_key(|w| format!("{w:?}"));
        work
    }
}

impl PasswordHasher for RecordingHasher {
    fn hash_in(&self, password: &str, memory: &mut HashMemory) -> Result<String, PortError> {
        self.inner.hash_in(password, memory)
    }

    fn verify_in(&self, password: &str, phc: &str, memory: &mut HashMemory) -> bool {
        self.verified.lock().unwrap().push(phc.to_owned());
        self.inner.verify_in(password, phc, memory)
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        self.inner.needs_rehash(phc)
    }

    fn decoys(&self) -> &[String] {
        self.inner.decoys()
    }
}

/// The service's mailer, recording every email it was asked to send before passing it on.
pub struct RecordingMailer {
    inner: Arc<dyn Mailer>,
    sent: Mutex<Vec<OutgoingEmail>>,
}

impl RecordingMailer {
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self { inner, sent: Mutex::new(Vec::new()) }
    }

    /// What was sent successfully, oldest first.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: &OutgoingEmail) -> PortResult<()> {
        self.inner.send(email).await?;
        self.sent.lock().unwrap().push(email.clone());
        Ok(())
    }
}
