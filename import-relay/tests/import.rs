//! The import end to end: relay databases (the Node relay's 2.x and the relay 3.x's) built
//! with the relay's own SQL (SQLite, and PostgreSQL on the server `scripts/test.sh`
//! starts), imported by the `import-relay` binary into the embedded store and into
//! DynamoDB/KMS (the emulator), then used the way the relay's users use them: log in,
//! authenticate with the old keys, list the keys.
// Test code unwraps: a failure there is the test failing (the workspace denies it elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The relay rows are dated at the real time, as the relay writes them.
#![allow(clippy::disallowed_methods)]

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use shared::config::{parse_reset_url, Config, Needs};
use shared::domain::app::App;
use shared::domain::audit::Activity;
use shared::domain::keys::{KeyDigest, KeyKind};
use shared::domain::ports::EncryptionContext;
use shared::domain::scopes::{Grant, Scope, ScopeSet};
use shared::domain::settings::Settings;
use shared::domain::{accounts, metering};
use shared::http::Endpoint;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const FOUNDRY_PASSWORD: &str = "Foundry-Secret-9";

/// The relay's tables exactly as its Sequelize models create them in SQLite.
const SQLITE_SCHEMA: &str = "
CREATE TABLE `Users` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `email` VARCHAR(255) NOT NULL UNIQUE, `password` VARCHAR(255) NOT NULL, `apiKey` VARCHAR(255) NOT NULL UNIQUE, `requestsThisMonth` INTEGER DEFAULT 0, `requestsToday` INTEGER DEFAULT 0, `lastRequestDate` DATE, `stripeCustomerId` VARCHAR(255), `subscriptionStatus` VARCHAR(255) DEFAULT 'free', `subscriptionId` VARCHAR(255), `subscriptionEndsAt` DATETIME, `maxHeadlessSessions` INTEGER, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL);
CREATE TABLE `ApiKeys` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `userId` INTEGER NOT NULL, `key` VARCHAR(64) NOT NULL UNIQUE, `name` VARCHAR(255) NOT NULL, `scopedClientId` VARCHAR(255), `scopedUserId` VARCHAR(255), `dailyLimit` INTEGER, `requestsToday` INTEGER DEFAULT 0, `lastRequestDate` DATE, `foundryUrl` VARCHAR(255), `foundryUsername` VARCHAR(255), `encryptedFoundryPassword` TEXT, `passwordIv` VARCHAR(255), `passwordAuthTag` VARCHAR(255), `expiresAt` DATETIME, `enabled` TINYINT(1) DEFAULT 1, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL);
CREATE TABLE `PasswordResetTokens` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `userId` INTEGER NOT NULL, `tokenHash` VARCHAR(255) NOT NULL UNIQUE, `expiresAt` DATETIME NOT NULL, `used` TINYINT(1) NOT NULL DEFAULT 0, `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL);
";

/// The same tables as Sequelize creates them in PostgreSQL.
const POSTGRES_SCHEMA: &str = r#"
CREATE TABLE "Users" ("id" SERIAL PRIMARY KEY, "email" VARCHAR(255) NOT NULL UNIQUE, "password" VARCHAR(255) NOT NULL, "apiKey" VARCHAR(255) NOT NULL UNIQUE, "requestsThisMonth" INTEGER DEFAULT 0, "requestsToday" INTEGER DEFAULT 0, "lastRequestDate" DATE, "stripeCustomerId" VARCHAR(255), "subscriptionStatus" VARCHAR(255) DEFAULT 'free', "subscriptionId" VARCHAR(255), "subscriptionEndsAt" TIMESTAMP WITH TIME ZONE, "maxHeadlessSessions" INTEGER, "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL, "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL);
CREATE TABLE "ApiKeys" ("id" SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "key" VARCHAR(64) NOT NULL UNIQUE, "name" VARCHAR(255) NOT NULL, "scopedClientId" VARCHAR(255), "scopedUserId" VARCHAR(255), "dailyLimit" INTEGER, "requestsToday" INTEGER DEFAULT 0, "lastRequestDate" DATE, "foundryUrl" VARCHAR(255), "foundryUsername" VARCHAR(255), "encryptedFoundryPassword" TEXT, "passwordIv" VARCHAR(255), "passwordAuthTag" VARCHAR(255), "expiresAt" TIMESTAMP WITH TIME ZONE, "enabled" BOOLEAN DEFAULT true, "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL, "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL);
CREATE TABLE "PasswordResetTokens" ("id" SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "tokenHash" VARCHAR(255) NOT NULL UNIQUE, "expiresAt" TIMESTAMP WITH TIME ZONE NOT NULL, "used" BOOLEAN NOT NULL DEFAULT false, "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL, "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL);
"#;

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// A date as the relay writes it in SQLite (PostgreSQL reads the same text).
fn relay_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f +00:00").to_string()
}

/// A relay with two good accounts (one with three scoped keys: live, expired, disabled),
/// an invalid email, and an account whose Foundry password was sealed with another key.
struct Fixture {
    run: String,
    credentials_key: [u8; 32],
    alice: (String, String, String),
    bob: (String, String, String),
    live_key: String,
    expired_key: String,
    disabled_key: String,
    broken_user_key: String,
    /// Every secret that must never be written anywhere in plain text.
    secrets: Vec<String>,
}

impl Fixture {
    fn new() -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut credentials_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut credentials_key);
        let alice = (format!("Alice.{run}@Example.com"), "Alice-Pass-1".to_owned(), random_hex());
        let bob = (format!("bob.{run}@example.com"), "Bob-Pass-22".to_owned(), random_hex());
        let (live_key, expired_key, disabled_key, broken_user_key) =
            (random_hex(), random_hex(), random_hex(), random_hex());
        let secrets = vec![
            alice.1.clone(),
            alice.2.clone(),
            bob.1.clone(),
            bob.2.clone(),
            live_key.clone(),
            expired_key.clone(),
            disabled_key.clone(),
            broken_user_key.clone(),
            FOUNDRY_PASSWORD.to_owned(),
            hex::encode(credentials_key),
        ];
        Self { run, credentials_key, alice, bob, live_key, expired_key, disabled_key, broken_user_key, secrets }
    }

    /// The relay's sealing of a Foundry password: AES-256-GCM, hex ciphertext, IV and tag.
    fn seal(key: &[u8; 32], password: &str) -> (String, String, String) {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
        let iv = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher.encrypt(&iv, password.as_bytes()).unwrap();
        let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
        (hex::encode(ciphertext), hex::encode(iv), hex::encode(tag))
    }

    /// INSERT statements for either database (`true`/`false` spelled per dialect).
    fn inserts(&self, postgres: bool) -> String {
        let now = Utc::now();
        let today = now.format("%Y-%m-%d").to_string();
        let (t, f) = if postgres { ("true", "false") } else { ("1", "0") };
        let created = relay_time(now - Duration::days(400));
        let alice_hash = bcrypt::hash(&self.alice.1, 10).unwrap();
        // bcryptjs writes $2a$ and $2b$; the Go rewrite $2a$.
        let bob_hash = bcrypt::hash_with_result(&self.bob.1, 4).unwrap().format_for_version(bcrypt::Version::TwoA);
        let (ciphertext, iv, tag) = Self::seal(&self.credentials_key, FOUNDRY_PASSWORD);
        let (wrong_ciphertext, wrong_iv, wrong_tag) = Self::seal(&[1u8; 32], FOUNDRY_PASSWORD);
        let future = relay_time(now + Duration::days(30));
        let past = relay_time(now - Duration::days(1));
        let run = &self.run;
        format!(
            r#"
INSERT INTO "Users" ("id", "email", "password", "apiKey", "requestsThisMonth", "requestsToday", "lastRequestDate", "stripeCustomerId", "subscriptionStatus", "subscriptionId", "createdAt", "updatedAt") VALUES
 (1, '{alice}', '{alice_hash}', '{alice_key}', 40, 5, '{today}', 'cus_{run}', 'active', 'sub_{run}', '{created}', '{created}'),
 (2, '{bob}', '{bob_hash}', '{bob_key}', 7, 3, '2024-01-15', NULL, 'free', NULL, '{created}', '{created}'),
 (3, 'not an email', '{bob_hash}', '{invalid_key}', 0, 0, NULL, NULL, 'free', NULL, '{created}', '{created}'),
 (4, 'carol.{run}@example.com', '{bob_hash}', '{carol_key}', 0, 0, NULL, NULL, 'free', NULL, '{created}', '{created}');
INSERT INTO "ApiKeys" ("id", "userId", "key", "name", "scopedClientId", "scopedUserId", "dailyLimit", "requestsToday", "lastRequestDate", "foundryUrl", "foundryUsername", "encryptedFoundryPassword", "passwordIv", "passwordAuthTag", "expiresAt", "enabled", "createdAt", "updatedAt") VALUES
 (1, 1, '{live}', 'Discord bot', 'client-1', 'user-1', 2, 1, '{today}', 'https://foundry.example.com', 'gm', '{ciphertext}', '{iv}', '{tag}', '{future}', {t}, '{created}', '{created}'),
 (2, 1, '{expired}', 'Old key', NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, '{past}', {t}, '{created}', '{created}'),
 (3, 1, '{disabled}', 'Switched off', NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {f}, '{created}', '{created}'),
 (4, 4, '{broken}', 'Sealed elsewhere', NULL, NULL, NULL, 0, NULL, NULL, 'gm', '{wrong_ciphertext}', '{wrong_iv}', '{wrong_tag}', NULL, {t}, '{created}', '{created}');
INSERT INTO "PasswordResetTokens" ("userId", "tokenHash", "expiresAt", "used", "createdAt", "updatedAt") VALUES
 (1, '{token}', '{future}', {f}, '{created}', '{created}');
"#,
            alice = self.alice.0,
            alice_key = self.alice.2,
            bob = self.bob.0,
            bob_key = self.bob.2,
            invalid_key = random_hex(),
            carol_key = random_hex(),
            live = self.live_key,
            expired = self.expired_key,
            disabled = self.disabled_key,
            broken = self.broken_user_key,
            token = random_hex(),
        )
    }

    fn sqlite(&self, dir: &Path) -> PathBuf {
        let path = dir.join("relay.sqlite");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch(SQLITE_SCHEMA).unwrap();
        connection.execute_batch(&self.inserts(false)).unwrap();
        path
    }

    /// A database of its own on the test script's PostgreSQL server, or `None` (with a
    /// message) when the tests run without it.
    async fn postgres(&self) -> Option<String> {
        let Ok(server) = std::env::var("IMPORT_RELAY_POSTGRES_URL") else {
            skip("IMPORT_RELAY_POSTGRES_URL", "a PostgreSQL server");
            return None;
        };
        Some(self.postgres_on(&server, None).await)
    }

    /// The same on the test script's server that takes TLS only, with the CA file its
    /// certificate chains to; `None` (with a message) without it.
    async fn postgres_over_tls(&self) -> Option<(String, PathBuf)> {
        let (Ok(server), Ok(ca_file)) =
            (std::env::var("IMPORT_RELAY_POSTGRES_TLS_URL"), std::env::var("IMPORT_RELAY_POSTGRES_CA_FILE"))
        else {
            skip("IMPORT_RELAY_POSTGRES_TLS_URL", "a PostgreSQL server with TLS");
            return None;
        };
        let ca_file = PathBuf::from(ca_file);
        Some((self.postgres_on(&server, Some(&ca_file)).await, ca_file))
    }

    async fn postgres_on(&self, server: &str, ca_file: Option<&Path>) -> String {
        let database = format!("relay_{}", self.run);
        execute_postgres_with(server, &format!("CREATE DATABASE {database}"), ca_file).await;
        let mut url = url::Url::parse(server).unwrap();
        url.set_path(&database);
        let url = url.to_string();
        execute_postgres_with(&url, POSTGRES_SCHEMA, ca_file).await;
        execute_postgres_with(&url, &self.inserts(true), ca_file).await;
        url
    }
}

/// Outside `scripts/test.sh` a test whose service is not there says so and skips; inside
/// it (`FOUNDRY_AUTH_TEST_SCRIPT` set), it fails.
fn skip(variable: &str, service: &str) {
    assert!(
        std::env::var_os("FOUNDRY_AUTH_TEST_SCRIPT").is_none(),
        "{variable} is not set although scripts/test.sh runs the tests"
    );
    eprintln!("SKIPPED: {variable} is not set; scripts/test.sh starts {service} and sets it");
}

async fn execute_postgres(url: &str, sql: &str) {
    execute_postgres_with(url, sql, None).await;
}

/// Runs `sql` on `url`, over TLS trusting `ca_file` when one is given.
async fn execute_postgres_with(url: &str, sql: &str, ca_file: Option<&Path>) {
    let Some(ca_file) = ca_file else {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        return driver.await.unwrap().unwrap();
    };
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let (client, connection) = tokio_postgres::connect(&format!("{url}?sslmode=require"), tls).await.unwrap();
    let driver = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    driver.await.unwrap().unwrap();
}

/// Where the import writes, and an app over the same store to check the result with.
enum Target {
    Embedded(tempfile::TempDir),
    Aws,
}

impl Target {
    fn embedded() -> Self {
        Target::Embedded(tempfile::tempdir().unwrap())
    }

    /// DynamoDB and KMS in the emulator, or `None` (with a message) without it.
    fn aws() -> Option<Self> {
        if std::env::var("AWS_ENDPOINT_URL").is_err() {
            skip("AWS_ENDPOINT_URL", "the AWS emulator");
            return None;
        }
        Some(Target::Aws)
    }

    fn args(&self) -> Vec<String> {
        match self {
            Target::Embedded(dir) => vec!["--data".into(), dir.path().join("data").display().to_string()],
            Target::Aws => vec!["--aws".into()],
        }
    }

    async fn app(&self) -> App {
        let reset_url = parse_reset_url("http://localhost:3000/reset-password").unwrap();
        match self {
            Target::Embedded(dir) => {
                let mut settings = Settings::from_lookup(reset_url, &|_| None).unwrap();
                settings.throttling = None;
                let data = dir.path().join("data");
                shared::embedded::build_app(&data, &data.join("outbox"), "no-reply@localhost", settings).unwrap()
            }
            Target::Aws => {
                let mut config = Config::from_env(Needs::ALL).unwrap();
                config.settings.throttling = None;
                shared::aws::build_app(&config).await
            }
        }
    }

    /// Everything the store keeps, as text: every file of the data directory, or every
    /// item of every table.
    async fn everything_stored(&self) -> String {
        match self {
            Target::Embedded(dir) => {
                let mut all = String::new();
                for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
                    let path = entry.unwrap().path();
                    if path.is_file() {
                        all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                    }
                }
                all
            }
            Target::Aws => {
                let config = Config::from_env(Needs::ALL).unwrap();
                let client = aws_sdk_dynamodb::Client::new(&shared::aws::sdk_config().load().await);
                let mut all = String::new();
                for table in [config.tables.users(), config.tables.scoped_keys(), config.tables.reset_tokens()] {
                    let table = table.unwrap();
                    let items = client.scan().table_name(table).into_paginator().items().send();
                    let items: Vec<_> = items.collect::<Result<_, _>>().await.unwrap();
                    all.push_str(&format!("{items:?}"));
                }
                all
            }
        }
    }
}

struct Run {
    code: Option<i32>,
    output: String,
}

fn import(source: &[String], target: &Target, extra: &[&str], credentials_key: Option<&[u8; 32]>) -> Run {
    let key = credentials_key.map(hex::encode);
    let env: Vec<(&str, &str)> = key.iter().map(|key| ("CREDENTIALS_ENCRYPTION_KEY", key.as_str())).collect();
    import_with(source, target, extra, &env)
}

/// The variables the import reads its source and secrets from: none is inherited.
const IMPORT_VARIABLES: [&str; 5] = [
    "CREDENTIALS_ENCRYPTION_KEY",
    "CREDENTIALS_ENCRYPTION_KEY_FILE",
    "IMPORT_RELAY_POSTGRES_URL",
    "IMPORT_RELAY_POSTGRES_URL_FILE",
    "PGSSLROOTCERT",
];

/// An import with `env` as its only variables of [`IMPORT_VARIABLES`].
fn import_with(source: &[String], target: &Target, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_import-relay"));
    command.args(source).args(target.args()).args(extra);
    for variable in IMPORT_VARIABLES {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let out = command.output().unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Run { code: out.status.code(), output }
}

/// What the `authorizer` function answers API Gateway for a request with `key`
/// (`events/authorizer.json`, the event it is sent).
/// The authorizer's answer to a relay request of `method` on `path` with `key`.
async fn authorizer(app: &App, key: &str, method: &str, path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/authorizer.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    event["headers"]["x-api-key"] = json!(key);
    event["identitySource"] = json!([key]);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    serde_json::to_value(shared::http::authorizer::respond(app, &serde_json::from_value(event).unwrap()).await).unwrap()
}

/// A GET of `endpoint` with `key`, through the route's handler: its status and body.
async fn get(app: &App, endpoint: Endpoint, key: &str) -> (u16, Value) {
    let request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(endpoint.path())
        .header("x-api-key", key)
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = endpoint.handle(app, request).await;
    (response.status().as_u16(), serde_json::from_slice(response.body().as_ref()).unwrap())
}

async fn list_keys(app: &App, master: &str) -> Vec<Value> {
    let (status, body) = get(app, Endpoint::ListApiKeys, master).await;
    assert_eq!(status, 200, "{body}");
    body["keys"].as_array().unwrap().clone()
}

/// Imports the fixture from `source` into `target` and checks everything the relay's users
/// rely on, then that a second run imports nothing.
async fn import_and_use(fixture: &Fixture, source: Vec<String>, target: Target) {
    let first = import(&source, &target, &[], Some(&fixture.credentials_key));
    assert_eq!(first.code, Some(1), "bad rows fail the run:\n{}", first.output);
    assert!(first.output.contains("failed Users id=3: invalid email"), "{}", first.output);
    assert!(
        first.output.contains("failed Users id=4: Foundry password does not decrypt (ApiKeys id=4)"),
        "{}",
        first.output
    );
    assert!(first.output.contains("imported 2, skipped 0, failed 2"), "{}", first.output);
    for secret in &fixture.secrets {
        assert!(!first.output.contains(secret.as_str()), "a secret in the output:\n{}", first.output);
    }

    let app = target.app().await;
    for (email, password, key) in [&fixture.alice, &fixture.bob] {
        let before = app.store.user_by_email(&email.to_lowercase()).await.unwrap().unwrap();
        assert!(before.password_hash.expose().starts_with("$2"), "the bcrypt hash is kept as it is");
        let logged_in = accounts::login(&app, email, password, None).await.unwrap();
        assert_eq!(logged_in.key.unwrap().expose(), key, "login answers the relay's key");
        let after = app.store.user(&before.id).await.unwrap().unwrap();
        assert!(after.password_hash.expose().starts_with("$argon2id$"), "upgraded at login");
        assert!(accounts::login(&app, email, password, None).await.is_ok(), "and the new hash verifies");
        assert!(accounts::login(&app, email, "Wrong-Pass-1", None).await.is_err());
    }
    let carol = format!("carol.{}@example.com", fixture.run);
    assert!(app.store.user_by_email(&carol).await.unwrap().is_none(), "a failed account is not written at all");

    let alice = app.store.user_by_email(&fixture.alice.0.to_lowercase()).await.unwrap().unwrap();
    assert_eq!(alice.email, fixture.alice.0);
    assert_eq!(alice.subscription_status, shared::domain::model::Subscription::Active);
    assert_eq!(alice.stripe_customer_id.as_deref(), Some(format!("cus_{}", fixture.run).as_str()));
    assert_eq!(alice.scoped_key_count, 3);
    let events = app.store.activity(&alice.id, 50, Utc::now()).await.unwrap();
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(Activity::AccountImported),
        "the import is the account's first event"
    );
    let master = metering::authorize(&app, metering::Ask::key(Some(&fixture.alice.2)))
        .await
        .unwrap()
        .expect("the relay's master key");
    assert_eq!(master.kind, KeyKind::Master);
    assert_eq!(master.requests_this_month, 41, "this month's 40 relay requests are carried over");
    let bob = metering::authorize(&app, metering::Ask::key(Some(&fixture.bob.2)))
        .await
        .unwrap()
        .expect("the relay's master key");
    assert_eq!(bob.requests_this_month, 1, "an old month's requests are not");

    let scoped = authorizer(&app, &fixture.live_key, "GET", "/clients").await;
    assert_eq!(scoped["isAuthorized"], true, "the live scoped key: {scoped}");
    let context = &scoped["context"];
    assert_eq!((context["keyType"].as_str(), context["userId"].as_str()), (Some("scoped"), Some(alice.id.as_str())));
    assert_eq!(
        (context["scopedClientId"].as_str(), context["scopedUserId"].as_str()),
        (Some("client-1"), Some("user-1"))
    );
    assert_eq!(context["dailyLimit"], 2);
    assert_eq!(
        authorizer(&app, &fixture.live_key, "GET", "/clients").await,
        json!({"isAuthorized": false, "context": {}}),
        "today's relay request and this one make the daily limit of 2"
    );
    for refused in [&fixture.expired_key, &fixture.disabled_key] {
        assert_eq!(authorizer(&app, refused, "GET", "/clients").await, json!({"isAuthorized": false, "context": {}}));
    }

    let listed = list_keys(&app, &fixture.alice.2).await;
    let names: Vec<&str> = listed.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3);
    for name in ["Discord bot", "Old key", "Switched off"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let live = listed.iter().find(|k| k["name"] == "Discord bot").unwrap();
    assert_eq!(live["hasFoundryCredentials"], true);
    assert_eq!(live["dailyLimit"], 2);
    assert_eq!(live["foundryUrl"], "https://foundry.example.com");
    assert_eq!(live["foundryUsername"], "gm");
    assert_eq!(live["key"], format!("{}...", &fixture.live_key[..12]));
    let disabled = listed.iter().find(|k| k["name"] == "Switched off").unwrap();
    assert_eq!(disabled["enabled"], false);
    let expired = listed.iter().find(|k| k["name"] == "Old key").unwrap();
    assert_eq!(expired["isExpired"], true);

    let (status, data) = get(&app, Endpoint::UserData, &fixture.alice.2).await;
    assert_eq!((status, data["email"].as_str()), (200, Some(fixture.alice.0.as_str())), "{data}");
    let (status, exported) = get(&app, Endpoint::ExportData, &fixture.alice.2).await;
    assert_eq!((status, exported["apiAccess"]["keyPrefix"].as_str()), (200, Some(&fixture.alice.2[..12])));
    let (status, _) = get(&app, Endpoint::ListApiKeys, &fixture.live_key).await;
    assert_eq!(status, 403, "a relay scoped key is a scoped key: it manages no keys");

    let stored = app.store.scoped_keys(&alice.id).await.unwrap();
    let sealed = stored.iter().find(|k| k.name == "Discord bot").unwrap();
    let context = EncryptionContext::foundry_password(&alice.id, &sealed.id);
    let opened = app.cipher.decrypt(sealed.foundry_password_ciphertext.as_ref().unwrap(), &context).await.unwrap();
    assert_eq!(opened.as_slice(), FOUNDRY_PASSWORD.as_bytes(), "sealed again with this service's cipher");

    // The embedded store's file is the import's again.
    drop(app);
    let everything = target.everything_stored().await;
    assert!(everything.contains(&alice.id), "the dump holds the data");
    for secret in &fixture.secrets {
        assert!(!everything.contains(secret.as_str()), "a secret stored in plain text");
    }

    let second = import(&source, &target, &[], Some(&fixture.credentials_key));
    assert_eq!(second.code, Some(1), "{}", second.output);
    assert!(second.output.contains("imported 0, skipped 2, failed 2"), "{}", second.output);
    assert!(second.output.contains("skipped: already imported: 2"), "{}", second.output);
}

#[tokio::test]
async fn a_sqlite_relay_moves_into_the_embedded_store() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    import_and_use(&fixture, source, Target::embedded()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and the AWS emulator that scripts/test.sh starts"]
async fn a_postgres_relay_moves_into_dynamodb_and_kms() {
    let fixture = Fixture::new();
    let (Some(url), Some(target)) = (fixture.postgres().await, Target::aws()) else {
        return;
    };
    import_and_use(&fixture, vec!["--postgres".into(), url], target).await;
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_sqlite_relay_moves_into_dynamodb_and_kms() {
    let fixture = Fixture::new();
    let Some(target) = Target::aws() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    import_and_use(&fixture, source, target).await;
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server that scripts/test.sh starts"]
async fn a_postgres_relay_moves_into_the_embedded_store() {
    let fixture = Fixture::new();
    let Some(url) = fixture.postgres().await else {
        return;
    };
    import_and_use(&fixture, vec!["--postgres".into(), url], Target::embedded()).await;
}

/// A file in `dir` holding `text` and a line end, as `echo` writes it; its path.
fn file_holding(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_credentials_key_is_read_from_a_file_named_by_an_option_or_a_variable() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let key_file = file_holding(dir.path(), "credentials-key", &hex::encode(fixture.credentials_key));
    let target = Target::embedded();
    let by_option = import_with(&source, &target, &["--dry-run", "--credentials-key-file", &key_file], &[]);
    let by_variable = import_with(&source, &target, &["--dry-run"], &[("CREDENTIALS_ENCRYPTION_KEY_FILE", &key_file)]);
    for run in [by_option, by_variable] {
        // The Foundry passwords open: only the two broken accounts fail.
        assert!(run.output.contains("Users: would import 2, skipped 0, failed 2"), "{}", run.output);
        assert!(!run.output.contains("no credentials key given"), "{}", run.output);
    }
}

#[tokio::test]
async fn a_credentials_key_given_both_as_a_value_and_as_a_file_is_refused() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let key = hex::encode(fixture.credentials_key);
    let key_file = file_holding(dir.path(), "credentials-key", &key);
    let run = import_with(
        &source,
        &Target::embedded(),
        &["--dry-run", "--credentials-key-file", &key_file],
        &[("CREDENTIALS_ENCRYPTION_KEY", &key)],
    );
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.output.contains("are both given: give one"), "{}", run.output);
    assert!(!run.output.contains(&key), "{}", run.output);
    assert!(!run.output.contains("would import"), "nothing read: {}", run.output);
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server that scripts/test.sh starts"]
async fn the_postgres_url_is_read_from_a_variable_or_a_file_off_the_command_line() {
    let fixture = Fixture::new();
    let Some(url) = fixture.postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url_file = file_holding(dir.path(), "postgres-url", &url);
    let target = Target::embedded();
    let key = hex::encode(fixture.credentials_key);
    let key = ("CREDENTIALS_ENCRYPTION_KEY", key.as_str());
    let runs = [
        import_with(&["--postgres-url-file".into(), url_file.clone()], &target, &["--dry-run"], &[key]),
        import_with(&[], &target, &["--dry-run"], &[key, ("IMPORT_RELAY_POSTGRES_URL", &url)]),
        import_with(&[], &target, &["--dry-run"], &[key, ("IMPORT_RELAY_POSTGRES_URL_FILE", &url_file)]),
    ];
    for run in runs {
        assert_eq!(run.code, Some(1), "{}", run.output);
        assert!(run.output.contains("Users: would import 2, skipped 0, failed 2"), "{}", run.output);
    }
    let twice = import_with(
        &[],
        &target,
        &["--dry-run"],
        &[("IMPORT_RELAY_POSTGRES_URL", &url), ("IMPORT_RELAY_POSTGRES_URL_FILE", &url_file)],
    );
    assert_eq!(twice.code, Some(2), "{}", twice.output);
    assert!(twice.output.contains("are both given: give one"), "{}", twice.output);
    let none = import_with(&[], &target, &["--dry-run"], &[]);
    assert_eq!(none.code, Some(2), "{}", none.output);
    assert!(none.output.contains("no relay database"), "{}", none.output);
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server that scripts/test.sh starts"]
async fn sslmode_require_against_a_server_without_tls_fails_naming_tls() {
    let fixture = Fixture::new();
    let Some(url) = fixture.postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url_file = file_holding(dir.path(), "postgres-url", &format!("{url}?sslmode=require"));
    let run = import_with(&["--postgres-url-file".into(), url_file], &Target::embedded(), &["--dry-run"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.output.contains("server does not support TLS"), "{}", run.output);
    assert!(!run.output.contains("would import"), "no rows read in plain text: {}", run.output);
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server with TLS that scripts/test.sh starts"]
async fn sslmode_require_imports_over_tls_from_a_server_whose_certificate_chains_to_the_ca_file() {
    let fixture = Fixture::new();
    let Some((url, ca_file)) = fixture.postgres_over_tls().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url_file = file_holding(dir.path(), "postgres-url", &format!("{url}?sslmode=require"));
    // The server takes TLS only: the import reads it, and uses it as from any other.
    let source =
        vec!["--postgres-url-file".into(), url_file, "--postgres-ca-file".into(), ca_file.display().to_string()];
    import_and_use(&fixture, source, Target::embedded()).await;
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server with TLS that scripts/test.sh starts"]
async fn sslmode_require_refuses_a_server_whose_certificate_it_cannot_check() {
    let fixture = Fixture::new();
    let Some((url, ca_file)) = fixture.postgres_over_tls().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let require = file_holding(dir.path(), "require", &format!("{url}?sslmode=require"));
    // The system's roots do not know the test CA.
    let unknown = import_with(&["--postgres-url-file".into(), require], &Target::embedded(), &["--dry-run"], &[]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.output);
    assert!(unknown.output.contains("TLS") && unknown.output.contains("certificate"), "{}", unknown.output);
    assert!(!unknown.output.contains("would import"), "{}", unknown.output);
    // A CA file with a URL that does not ask for TLS: refused rather than read in plain text.
    let plain = file_holding(dir.path(), "plain", &url);
    let ca = ca_file.display().to_string();
    let run = import_with(
        &["--postgres-url-file".into(), plain],
        &Target::embedded(),
        &["--dry-run", "--postgres-ca-file", &ca],
        &[],
    );
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.output.contains("does not say sslmode=require"), "{}", run.output);
}

#[tokio::test]
async fn a_dry_run_reports_the_same_and_writes_nothing() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let target = Target::embedded();
    let dry = import(&source, &target, &["--dry-run"], Some(&fixture.credentials_key));
    assert_eq!(dry.code, Some(1), "{}", dry.output);
    assert!(dry.output.contains("would import 2, skipped 0, failed 2"), "{}", dry.output);
    assert!(dry.output.contains("failed Users id=3: invalid email"), "{}", dry.output);
    let Target::Embedded(dir) = &target else { unreachable!() };
    assert!(!dir.path().join("data").exists(), "not even the data directory is created");
    // Into an existing store, the same.
    drop(target.app().await);
    let again = import(&source, &target, &["--dry-run"], Some(&fixture.credentials_key));
    assert!(again.output.contains("would import 2, skipped 0, failed 2"), "{}", again.output);
    let app = target.app().await;
    for (email, _, key) in [&fixture.alice, &fixture.bob] {
        assert!(app.store.user_by_email(&email.to_lowercase()).await.unwrap().is_none(), "no account written");
        assert!(metering::authorize(&app, metering::Ask::key(Some(key))).await.unwrap().is_none(), "no key written");
    }
}

#[tokio::test]
async fn without_the_credentials_key_only_accounts_with_foundry_passwords_fail() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let target = Target::embedded();
    let run = import(&source, &target, &[], None);
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(
        run.output.contains("failed Users id=1: Foundry password but no credentials key given (ApiKeys id=1)"),
        "{}",
        run.output
    );
    assert!(run.output.contains("imported 1, skipped 0, failed 3"), "{}", run.output);
    let app = target.app().await;
    assert!(accounts::login(&app, &fixture.bob.0, &fixture.bob.1, None).await.is_ok(), "the rest goes on");
}

#[tokio::test]
async fn an_email_that_belongs_to_another_account_here_is_reported_and_skipped() {
    let fixture = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let target = Target::embedded();
    {
        let app = target.app().await;
        accounts::register(&app, &fixture.bob.0.to_uppercase(), "Someone-Else-7", None).await.unwrap();
    }
    let run = import(&source, &target, &[], Some(&fixture.credentials_key));
    assert!(run.output.contains("skipped Users id=2: email belongs to another account"), "{}", run.output);
    assert!(run.output.contains("imported 1, skipped 1, failed 2"), "{}", run.output);
    let app = target.app().await;
    assert!(accounts::login(&app, &fixture.bob.0, "Someone-Else-7", None).await.is_ok(), "the account here stays");
    assert!(
        metering::authorize(&app, metering::Ask::key(Some(&fixture.bob.2))).await.unwrap().is_none(),
        "the relay's key is not added"
    );
}

// ---------------------------------------------------------------------------------------
// The relay 3.x (relay-v3-schema.md): keys kept only as SHA-256 digests, scopes, client
// lists, and Foundry logins in a Credentials table that KnownClients point at.

/// The relay 3.x's account and key tables, and KnownClients, in SQLite, with the columns
/// of relay-v3-schema.md.
const SQLITE_V3_SCHEMA: &str = "
CREATE TABLE `Users` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `email` TEXT NOT NULL UNIQUE, `password` TEXT NOT NULL, `apiKeyHash` TEXT UNIQUE, `requestsThisMonth` INTEGER DEFAULT 0, `requestsToday` INTEGER DEFAULT 0, `lastRequestDate` TEXT, `stripeCustomerId` TEXT, `subscriptionId` TEXT, `subscriptionStatus` TEXT DEFAULT 'free', `subscriptionEndsAt` TEXT, `maxHeadlessSessions` INTEGER, `role` TEXT DEFAULT 'user', `disabled` INTEGER DEFAULT 0, `emailVerified` INTEGER DEFAULT 1, `verificationTokenHash` TEXT, `verificationTokenExpiresAt` TEXT, `apiKeyRotationRequired` INTEGER DEFAULT 0, `createdAt` TEXT, `updatedAt` TEXT);
CREATE TABLE `ApiKeys` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `userId` INTEGER NOT NULL, `key` TEXT NOT NULL UNIQUE, `keyHash` TEXT, `name` TEXT, `scopedClientId` TEXT, `scopedClientIds` TEXT, `scopedUserId` TEXT, `scopedUserIds` TEXT, `scopes` TEXT, `monthlyLimit` INTEGER, `requestsThisMonth` INTEGER DEFAULT 0, `lastResetDate` TEXT, `expiresAt` TEXT, `enabled` INTEGER DEFAULT 1, `createdAt` TEXT, `updatedAt` TEXT);
CREATE TABLE `Credentials` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `userId` INTEGER NOT NULL, `name` TEXT, `foundryUrl` TEXT, `foundryUsername` TEXT, `encryptedFoundryPassword` TEXT, `passwordIv` TEXT, `passwordAuthTag` TEXT, `world` TEXT);
CREATE TABLE `KnownClients` (`id` INTEGER PRIMARY KEY AUTOINCREMENT, `userId` INTEGER NOT NULL, `clientId` TEXT NOT NULL, `worldId` TEXT, `worldTitle` TEXT, `credentialId` INTEGER, `autoStartOnRemoteRequest` INTEGER DEFAULT 0);
";

/// The same in PostgreSQL, every camelCase identifier quoted, times with their zone.
const POSTGRES_V3_SCHEMA: &str = r#"
CREATE TABLE "Users" ("id" SERIAL PRIMARY KEY, "email" TEXT NOT NULL UNIQUE, "password" TEXT NOT NULL, "apiKeyHash" TEXT UNIQUE, "requestsThisMonth" INTEGER DEFAULT 0, "requestsToday" INTEGER DEFAULT 0, "lastRequestDate" TEXT, "stripeCustomerId" TEXT, "subscriptionId" TEXT, "subscriptionStatus" TEXT DEFAULT 'free', "subscriptionEndsAt" TEXT, "maxHeadlessSessions" INTEGER, "role" TEXT DEFAULT 'user', "disabled" INTEGER DEFAULT 0, "emailVerified" INTEGER DEFAULT 1, "verificationTokenHash" TEXT, "verificationTokenExpiresAt" TEXT, "apiKeyRotationRequired" INTEGER DEFAULT 0, "createdAt" TIMESTAMP WITH TIME ZONE, "updatedAt" TIMESTAMP WITH TIME ZONE);
CREATE TABLE "ApiKeys" ("id" SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "key" TEXT NOT NULL UNIQUE, "keyHash" TEXT, "name" TEXT, "scopedClientId" TEXT, "scopedClientIds" TEXT, "scopedUserId" TEXT, "scopedUserIds" TEXT, "scopes" TEXT, "monthlyLimit" INTEGER, "requestsThisMonth" INTEGER DEFAULT 0, "lastResetDate" TEXT, "expiresAt" TIMESTAMP WITH TIME ZONE, "enabled" INTEGER DEFAULT 1, "createdAt" TIMESTAMP WITH TIME ZONE, "updatedAt" TIMESTAMP WITH TIME ZONE);
CREATE TABLE "Credentials" ("id" SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "name" TEXT, "foundryUrl" TEXT, "foundryUsername" TEXT, "encryptedFoundryPassword" TEXT, "passwordIv" TEXT, "passwordAuthTag" TEXT, "world" TEXT);
CREATE TABLE "KnownClients" ("id" SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "clientId" TEXT NOT NULL, "worldId" TEXT, "worldTitle" TEXT, "credentialId" INTEGER, "autoStartOnRemoteRequest" INTEGER DEFAULT 0);
"#;

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A relay 3.x with: Dana (six keys: scoped with clients and a user map, no scopes, null
/// scopes and no keyHash, an unknown scope, a malformed digest, an overlong name; three
/// credentials: one serving a key's client, one serving nothing, one sealed with another
/// key), Erin (key rotation required), Frank (disabled, one key) and Gus (bcrypt cost 15).
struct FixtureV3 {
    run: String,
    credentials_key: [u8; 32],
    dana: (String, String, String),
    erin: (String, String, String),
    frank: (String, String, String),
    /// Dana's keys: [scoped, no scopes, null scopes].
    keys: [String; 3],
    secrets: Vec<String>,
}

impl FixtureV3 {
    fn new() -> Self {
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut credentials_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut credentials_key);
        let dana = (format!("Dana.{run}@Example.com"), "Dana-Pass-1".to_owned(), random_hex());
        let erin = (format!("erin.{run}@example.com"), "Erin-Pass-22".to_owned(), random_hex());
        let frank = (format!("frank.{run}@example.com"), "Frank-Pass-3".to_owned(), random_hex());
        let keys = [random_hex(), random_hex(), random_hex()];
        let mut secrets = vec![
            dana.1.clone(),
            dana.2.clone(),
            erin.1.clone(),
            erin.2.clone(),
            frank.1.clone(),
            frank.2.clone(),
            FOUNDRY_PASSWORD.to_owned(),
            hex::encode(credentials_key),
        ];
        secrets.extend(keys.iter().cloned());
        Self { run, credentials_key, dana, erin, frank, keys, secrets }
    }

    fn inserts(&self) -> String {
        let now = Utc::now();
        let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let created = time(now - Duration::days(400));
        let future = time(now + Duration::days(30));
        let today = now.format("%Y-%m-%d").to_string();
        let hash =
            |password: &str| bcrypt::hash_with_result(password, 4).unwrap().format_for_version(bcrypt::Version::TwoA);
        // A cost the import refuses, written without spending the seconds cost 15 takes.
        let too_costly = format!("$2a$15${}", &hash("Gus-Pass-44")[7..]);
        let (ciphertext, iv, tag) = Fixture::seal(&self.credentials_key, FOUNDRY_PASSWORD);
        let (wrong_ciphertext, wrong_iv, wrong_tag) = Fixture::seal(&[1u8; 32], FOUNDRY_PASSWORD);
        let [scoped, unscoped, null_scopes] = &self.keys;
        let run = &self.run;
        format!(
            r#"
INSERT INTO "Users" ("id", "email", "password", "apiKeyHash", "requestsThisMonth", "requestsToday", "lastRequestDate", "stripeCustomerId", "subscriptionId", "subscriptionStatus", "role", "disabled", "emailVerified", "apiKeyRotationRequired", "createdAt", "updatedAt") VALUES
 (1, '{dana}', '{dana_hash}', '{dana_digest}', 12, 2, '{today}', 'cus_{run}', 'sub_{run}', 'active', 'user', 0, 1, 0, '{created}', '{created}'),
 (2, '{erin}', '{erin_hash}', '{erin_digest}', 0, 0, NULL, NULL, NULL, 'free', 'user', 0, 1, 1, '{created}', '{created}'),
 (3, '{frank}', '{frank_hash}', '{frank_digest}', 0, 0, NULL, NULL, NULL, 'free', 'admin', 1, 1, 0, '{created}', '{created}'),
 (4, 'gus.{run}@example.com', '{too_costly}', '{gus_digest}', 0, 0, NULL, NULL, NULL, 'free', 'user', 0, 1, 0, '{created}', '{created}');
INSERT INTO "ApiKeys" ("id", "userId", "key", "keyHash", "name", "scopedClientId", "scopedClientIds", "scopedUserId", "scopedUserIds", "scopes", "monthlyLimit", "requestsThisMonth", "lastResetDate", "expiresAt", "enabled", "createdAt", "updatedAt") VALUES
 (1, 1, '{scoped}', '{scoped_digest}', 'Discord bot', 'client-z', 'client-a, client-b', 'user-z', '{{"client-a": "user-a", "client-b": "user-b"}}', 'entity:read,roll:execute', 100, 7, '{today}', '{future}', 1, '{created}', '{created}'),
 (2, 1, 'dropped-{run}-2', '{unscoped_digest}', 'No scopes', 'client-c', '', NULL, '', '', NULL, 3, NULL, NULL, 1, '{created}', '{created}'),
 (3, 1, '{null_scopes}', '', 'Null scopes', NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, '{created}', '{created}'),
 (4, 1, 'dropped-{run}-4', '{other_digest}', 'Teleporter', NULL, NULL, NULL, NULL, 'entity:read,teleport', NULL, 0, NULL, NULL, 1, '{created}', '{created}'),
 (5, 1, 'dropped-{run}-5', '{upper_digest}', 'Shouting', NULL, NULL, NULL, NULL, 'entity:read', NULL, 0, NULL, NULL, 1, '{created}', '{created}'),
 (6, 1, 'dropped-{run}-6', '{long_digest}', '{long_name}', NULL, NULL, NULL, NULL, 'entity:read', NULL, 0, NULL, NULL, 1, '{created}', '{created}'),
 (7, 3, 'dropped-{run}-7', '{frank_key_digest}', 'Admin tool', NULL, NULL, NULL, NULL, 'entity:read', NULL, 0, NULL, NULL, 1, '{created}', '{created}');
INSERT INTO "Credentials" ("id", "userId", "name", "foundryUrl", "foundryUsername", "encryptedFoundryPassword", "passwordIv", "passwordAuthTag", "world") VALUES
 (1, 1, 'Main world', 'https://dana.example.com', 'gamemaster', '{ciphertext}', '{iv}', '{tag}', 'main'),
 (2, 1, 'Spare', 'https://spare.example.com', 'gm', '{ciphertext}', '{iv}', '{tag}', 'spare'),
 (3, 1, 'Elsewhere', 'https://else.example.com', 'gm', '{wrong_ciphertext}', '{wrong_iv}', '{wrong_tag}', 'else');
INSERT INTO "KnownClients" ("userId", "clientId", "worldId", "worldTitle", "credentialId", "autoStartOnRemoteRequest") VALUES
 (1, 'client-b', 'main', 'Main', 1, 1),
 (1, 'client-c', 'else', 'Else', 3, 1),
 (1, 'client-x', 'idle', 'Idle', NULL, 0),
 (3, 'client-b', 'main', 'Main', 1, 1);
"#,
            dana = self.dana.0,
            dana_hash = hash(&self.dana.1),
            dana_digest = sha256_hex(&self.dana.2),
            erin = self.erin.0,
            erin_hash = hash(&self.erin.1),
            erin_digest = sha256_hex(&self.erin.2),
            frank = self.frank.0,
            frank_hash = hash(&self.frank.1),
            frank_digest = sha256_hex(&self.frank.2),
            gus_digest = sha256_hex(&random_hex()),
            scoped_digest = sha256_hex(scoped),
            unscoped_digest = sha256_hex(unscoped),
            other_digest = sha256_hex(&random_hex()),
            upper_digest = sha256_hex(&random_hex()).to_uppercase(),
            long_digest = sha256_hex(&random_hex()),
            long_name = "n".repeat(shared::domain::scoped::MAX_NAME_CHARS + 1),
            frank_key_digest = sha256_hex(&random_hex()),
        )
    }

    fn sqlite(&self, dir: &Path) -> PathBuf {
        let path = dir.join("relay-v3.sqlite");
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch(SQLITE_V3_SCHEMA).unwrap();
        connection.execute_batch(&self.inserts()).unwrap();
        path
    }

    async fn postgres(&self) -> Option<String> {
        let Ok(server) = std::env::var("IMPORT_RELAY_POSTGRES_URL") else {
            skip("IMPORT_RELAY_POSTGRES_URL", "a PostgreSQL server");
            return None;
        };
        let database = format!("relay_v3_{}", self.run);
        execute_postgres(&server, &format!("CREATE DATABASE {database}")).await;
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&database);
        let url = url.to_string();
        execute_postgres(&url, POSTGRES_V3_SCHEMA).await;
        execute_postgres(&url, &self.inserts()).await;
        Some(url)
    }
}

/// A POST of `body` to `endpoint`, through the route's handler: its status and body.
async fn post(app: &App, endpoint: Endpoint, body: Value) -> (u16, Value) {
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri(endpoint.path())
        .header("content-type", "application/json")
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap();
    let response = endpoint.handle(app, request).await;
    (response.status().as_u16(), serde_json::from_slice(response.body().as_ref()).unwrap())
}

async fn entry(app: &App, key: &str) -> shared::domain::model::KeyEntry {
    let digest = KeyDigest(sha256_hex(key));
    app.store.key_entries(&[digest]).await.unwrap().pop().flatten().expect("the key's index entry")
}

/// Imports the 3.x fixture from `source` into `target` and checks what its users rely on.
async fn import_v3_and_use(fixture: &FixtureV3, source: Vec<String>, target: Target) {
    let first = import(&source, &target, &[], Some(&fixture.credentials_key));
    let out = &first.output;
    assert_eq!(first.code, Some(1), "refused rows fail the run:\n{out}");
    for line in [
        "Users: imported 2, skipped 1, failed 1",
        "ApiKeys: imported 3, skipped 1, failed 3",
        "Credentials: imported 1, skipped 1, failed 1",
        "skipped Users id=3: disabled",
        "failed Users id=4: bcrypt cost above 14",
        "failed ApiKeys id=4: unknown scope (scopes: \"teleport\")",
        "failed ApiKeys id=5: key digest is not 64 lowercase hex characters (keyHash)",
        "failed ApiKeys id=6: unreadable value (name)",
        "skipped ApiKeys id=7: disabled",
        "failed Credentials id=3: Foundry password does not decrypt",
        "skipped Credentials id=2: serves no scoped key's client",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
    for secret in &fixture.secrets {
        assert!(!out.contains(secret.as_str()), "a secret in the output:\n{out}");
    }

    let app = target.app().await;
    // Dana's key, never seen here, works from its digest alone.
    let dana = app.store.user_by_email(&fixture.dana.0.to_lowercase()).await.unwrap().unwrap();
    assert_eq!(dana.email, fixture.dana.0);
    assert_eq!(dana.subscription_status, shared::domain::model::Subscription::Active);
    assert_eq!(dana.scoped_key_count, 3);
    assert!(!dana.master_key.is_available());
    let master = metering::authorize(&app, metering::Ask::key(Some(&fixture.dana.2)))
        .await
        .unwrap()
        .expect("the relay's master key, from its digest");
    assert_eq!(master.kind, KeyKind::Master);
    assert_eq!(master.requests_this_month, 13, "this month's 12 relay requests are carried over");

    // Login answers the account, and no key: the service never saw it.
    let (status, login) =
        post(&app, Endpoint::Login, json!({"email": fixture.dana.0, "password": fixture.dana.1})).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!((&login["apiKey"], &login["apiKeyAvailable"]), (&Value::Null, &json!(false)), "{login}");
    assert_eq!(login["id"], dana.id.as_str());

    // The scoped key: its digest, scopes, clients, user map, limit and this month's count.
    let scoped = entry(&app, &fixture.keys[0]).await;
    assert_eq!((scoped.kind, scoped.user_id.as_str()), (KeyKind::Scoped, dana.id.as_str()));
    assert_eq!(scoped.grant, Grant::Only(ScopeSet::of([Scope::EntityRead, Scope::RollExecute])));
    assert_eq!(scoped.scoped_client_ids, ["client-a", "client-b"]);
    assert_eq!(scoped.scoped_client_id.as_deref(), Some("client-z"));
    assert_eq!(
        scoped.scoped_user_ids,
        BTreeMap::from([("client-a".to_owned(), "user-a".to_owned()), ("client-b".to_owned(), "user-b".to_owned())])
    );
    assert_eq!(scoped.monthly_limit, Some(100));
    assert_eq!(scoped.usage.this_month(Utc::now()), 7);
    assert!(scoped.enabled && scoped.expires_at.is_some());
    // It passes the authorizer with exactly its scopes, counted only when admitted.
    for (method, path, admitted) in [
        ("GET", "/get", true),
        ("POST", "/roll", true),
        ("GET", "/rolls", false),
        ("GET", "/clients", false),
        ("POST", "/execute-js", false),
    ] {
        let answer = authorizer(&app, &fixture.keys[0], method, path).await;
        assert_eq!(answer["isAuthorized"], admitted, "{method} {path}: {answer}");
        if admitted {
            assert_eq!(answer["context"]["scopes"], "entity:read roll:execute", "{answer}");
        }
    }
    assert_eq!(entry(&app, &fixture.keys[0]).await.usage.this_month(Utc::now()), 9, "7 carried over, 2 admitted");
    // An empty scope list, and a null one, grant nothing; a key row with no keyHash is
    // indexed by the SHA-256 of its key.
    let unscoped = entry(&app, &fixture.keys[1]).await;
    assert_eq!(unscoped.grant, Grant::Only(ScopeSet::EMPTY));
    assert_eq!(unscoped.scoped_client_id.as_deref(), Some("client-c"));
    assert!(unscoped.scoped_client_ids.is_empty() && unscoped.scoped_user_ids.is_empty());
    assert_eq!(unscoped.usage.this_month(Utc::now()), 0, "counted in a month no one knows: not carried over");
    let null_scopes = entry(&app, &fixture.keys[2]).await;
    assert_eq!((null_scopes.grant, null_scopes.enabled), (Grant::Only(ScopeSet::EMPTY), false));

    // The credential of client-b is on the key that serves client-b, sealed again here;
    // the one that does not decrypt is on no key.
    let stored = app.store.scoped_keys(&dana.id).await.unwrap();
    let bot = stored.iter().find(|k| k.name == "Discord bot").unwrap();
    assert_eq!(bot.foundry_url.as_deref(), Some("https://dana.example.com"));
    assert_eq!(bot.foundry_username.as_deref(), Some("gamemaster"));
    assert_eq!(bot.prefix, fixture.keys[0][..12], "the old row's plain key gives its prefix");
    let context = EncryptionContext::foundry_password(&dana.id, &bot.id);
    let opened = app.cipher.decrypt(bot.foundry_password_ciphertext.as_ref().unwrap(), &context).await.unwrap();
    assert_eq!(opened.as_slice(), FOUNDRY_PASSWORD.as_bytes());
    let unscoped_key = stored.iter().find(|k| k.name == "No scopes").unwrap();
    assert!(unscoped_key.foundry_password_ciphertext.is_none() && unscoped_key.foundry_url.is_none());
    assert_eq!(unscoped_key.prefix, "", "a key known by its digest alone shows no prefix");
    let mut names: Vec<&str> = stored.iter().map(|k| k.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Discord bot", "No scopes", "Null scopes"], "the refused keys are not imported");

    // Erin's key must be rotated: it does not work here, login shows none, and
    // regenerate-key gives her one that works and that login shows.
    assert!(metering::authorize(&app, metering::Ask::key(Some(&fixture.erin.2))).await.unwrap().is_none());
    let (status, login) =
        post(&app, Endpoint::Login, json!({"email": fixture.erin.0, "password": fixture.erin.1})).await;
    assert_eq!((status, &login["apiKey"], &login["apiKeyAvailable"]), (200, &Value::Null, &json!(false)), "{login}");
    let (status, regenerated) =
        post(&app, Endpoint::RegenerateKey, json!({"email": fixture.erin.0, "password": fixture.erin.1})).await;
    assert_eq!(status, 200, "{regenerated}");
    let new_key = regenerated["apiKey"].as_str().unwrap().to_owned();
    assert!(metering::authorize(&app, metering::Ask::key(Some(&new_key))).await.unwrap().is_some());
    let (_, login) = post(&app, Endpoint::Login, json!({"email": fixture.erin.0, "password": fixture.erin.1})).await;
    assert_eq!((login["apiKey"].as_str(), &login["apiKeyAvailable"]), (Some(new_key.as_str()), &json!(true)));

    // Frank is disabled: not imported, his key works nowhere here.
    assert!(app.store.user_by_email(&fixture.frank.0).await.unwrap().is_none());
    assert!(metering::authorize(&app, metering::Ask::key(Some(&fixture.frank.2))).await.unwrap().is_none());
    let gus = format!("gus.{}@example.com", fixture.run);
    assert!(app.store.user_by_email(&gus).await.unwrap().is_none(), "a refused account is not written");

    drop(app);
    let everything = target.everything_stored().await;
    assert!(everything.contains(&dana.id));
    for secret in &fixture.secrets {
        assert!(!everything.contains(secret.as_str()), "a secret stored in plain text");
    }

    // A second run finds Dana's account here; Erin's now has a key of its own (regenerated
    // above), so her relay row meets an account of another key.
    let second = import(&source, &target, &[], Some(&fixture.credentials_key));
    let out = &second.output;
    assert!(out.contains("Users: imported 0, skipped 3, failed 1"), "{out}");
    assert!(out.contains("skipped Users id=1: already imported"), "{out}");
    assert!(out.contains("skipped Users id=2: email belongs to another account"), "{out}");
}

#[tokio::test]
async fn a_sqlite_relay_v3_moves_into_the_embedded_store() {
    let fixture = FixtureV3::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    import_v3_and_use(&fixture, source, Target::embedded()).await;
}

#[tokio::test]
#[ignore = "needs the PostgreSQL server that scripts/test.sh starts"]
async fn a_postgres_relay_v3_moves_into_the_embedded_store() {
    let fixture = FixtureV3::new();
    let Some(url) = fixture.postgres().await else {
        return;
    };
    import_v3_and_use(&fixture, vec!["--postgres".into(), url], Target::embedded()).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL and the AWS emulator that scripts/test.sh starts"]
async fn a_postgres_relay_v3_moves_into_dynamodb_and_kms() {
    let fixture = FixtureV3::new();
    let (Some(url), Some(target)) = (fixture.postgres().await, Target::aws()) else {
        return;
    };
    import_v3_and_use(&fixture, vec!["--postgres".into(), url], target).await;
}

#[tokio::test]
async fn without_the_credentials_key_a_relay_v3_imports_its_accounts_and_reports_the_credentials() {
    let fixture = FixtureV3::new();
    let dir = tempfile::tempdir().unwrap();
    let source = vec!["--sqlite".into(), fixture.sqlite(dir.path()).display().to_string()];
    let target = Target::embedded();
    let run = import(&source, &target, &[], None);
    let out = &run.output;
    assert!(out.contains("Users: imported 2, skipped 1, failed 1"), "{out}");
    assert!(out.contains("Credentials: imported 0, skipped 0, failed 3"), "{out}");
    assert!(out.contains("failed Credentials id=1: Foundry password but no credentials key given"), "{out}");
    let app = target.app().await;
    let dana = app.store.user_by_email(&fixture.dana.0.to_lowercase()).await.unwrap().unwrap();
    let stored = app.store.scoped_keys(&dana.id).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|k| k.foundry_password_ciphertext.is_none() && k.foundry_url.is_none()));
}

#[tokio::test]
async fn a_database_of_neither_relay_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE `Users` (`id` INTEGER, `email` TEXT); CREATE TABLE `ApiKeys` (`id` INTEGER);")
        .unwrap();
    let run = import(&["--sqlite".into(), path.display().to_string()], &Target::embedded(), &[], None);
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.output.contains("not a relay database"), "{}", run.output);
}
