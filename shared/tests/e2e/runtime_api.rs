//! The function binaries themselves, started as Lambda starts them: under a Lambda Runtime
//! API (`AWS_LAMBDA_RUNTIME_API`) that hands out one event and takes the answer back.
//! The Runtime API here is a small local stand-in (AWS's emulator is not available on
//! this machine); the binaries, their configuration and the emulator behind them are real.

use crate::support::*;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use shared::domain::service_key::NewServiceKey;
use shared::http::Endpoint;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Debug)]
enum Outcome {
    Response(Value),
    Error(String),
}

#[derive(Clone)]
struct Runtime {
    event: Arc<Mutex<Option<Value>>>,
    outcome: Arc<Mutex<Option<oneshot::Sender<Outcome>>>>,
}

impl Runtime {
    fn finish(&self, outcome: Outcome) {
        if let Some(tx) = self.outcome.lock().unwrap().take() {
            let _ = tx.send(outcome);
        }
    }
}

async fn next(State(rt): State<Runtime>) -> (HeaderMap, String) {
    let Some(event) = rt.event.lock().unwrap().take() else {
        // One invocation per test: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut headers = HeaderMap::new();
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("8476a536-e9f4-11e8-9739-2dfe598c3fcd"));
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:foundry-auth"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"),
    );
    (headers, event.to_string())
}

async fn response(State(rt): State<Runtime>, Path(_id): Path<String>, body: String) -> &'static str {
    rt.finish(Outcome::Response(serde_json::from_str(&body).unwrap_or(Value::String(body))));
    ""
}

async fn error(State(rt): State<Runtime>, body: String) -> &'static str {
    rt.finish(Outcome::Error(body));
    ""
}

async fn error_with_id(rt: State<Runtime>, Path(_id): Path<String>, body: String) -> &'static str {
    error(rt, body).await
}

fn binary(name: &str) -> PathBuf {
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(path.exists(), "{} is missing: build the functions first (cargo build --workspace)", path.display());
    path
}

/// Starts the function's binary under a Runtime API that serves `event`, and answers
/// what the function posted back.
async fn invoke(function: &str, event: Value, env: &[(&str, &str)]) -> Outcome {
    invoke_reading_stdout(function, event, env).await.0
}

/// As [`invoke`], with everything the function printed on stdout (where Lambda collects
/// its logs and its metrics) by the time it answered.
async fn invoke_reading_stdout(function: &str, event: Value, env: &[(&str, &str)]) -> (Outcome, String) {
    let (tx, rx) = oneshot::channel();
    let rt = Runtime { event: Arc::new(Mutex::new(Some(event))), outcome: Arc::new(Mutex::new(Some(tx))) };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error_with_id))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut command = tokio::process::Command::new(binary(function));
    command
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]test")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), rx).await;
    let _ = child.kill().await;
    server.abort();
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut stdout).await.unwrap();
    }
    (outcome.unwrap_or_else(|_| panic!("{function} answered nothing within a minute")).unwrap(), stdout)
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn every_function_binary_serves_its_route_under_the_lambda_runtime_api() {
    let h = Harness::new().await;
    let main = h.register().await;
    let (scoped_id, _) = h.scoped_key(&main.key, json!({"name": "to delete"})).await;
    let regenerating = h.register().await;
    let leaving = h.register().await;
    let changing = h.register().await;
    // Verify is closed (404) until a service key's digest is configured.
    let service = NewServiceKey::generate();

    let cases: Vec<(Endpoint, Call, u16)> = vec![
        (
            Endpoint::Register,
            call(Endpoint::Register).json(json!({"email": unique_email(), "password": PASSWORD})),
            201,
        ),
        (Endpoint::Login, call(Endpoint::Login).json(json!({"email": main.email, "password": PASSWORD})), 200),
        (
            Endpoint::RegenerateKey,
            call(Endpoint::RegenerateKey).json(json!({"email": regenerating.email, "password": PASSWORD})),
            200,
        ),
        (Endpoint::UserData, call(Endpoint::UserData).key(&main.key), 200),
        (Endpoint::Activity, call(Endpoint::Activity).key(&main.key), 200),
        (Endpoint::ExportData, call(Endpoint::ExportData).key(&main.key), 200),
        (
            Endpoint::DeleteAccount,
            call(Endpoint::DeleteAccount)
                .key(&leaving.key)
                .json(json!({"confirmEmail": leaving.email, "password": PASSWORD})),
            200,
        ),
        (
            Endpoint::ChangePassword,
            call(Endpoint::ChangePassword)
                .key(&changing.key)
                .json(json!({"currentPassword": PASSWORD, "newPassword": "Changed-Pass-1"})),
            200,
        ),
        (Endpoint::ForgotPassword, call(Endpoint::ForgotPassword).json(json!({"email": main.email})), 200),
        (
            Endpoint::ResetPassword,
            call(Endpoint::ResetPassword).json(json!({"token": "0".repeat(64), "password": "Strong-Pass-1"})),
            400,
        ),
        (Endpoint::ValidateResetToken, call(Endpoint::ValidateResetToken).param("token", "abc"), 200),
        (Endpoint::VerifyEmail, call(Endpoint::VerifyEmail).json(json!({"token": "0".repeat(64)})), 400),
        // Verification is not required: the account counts as verified.
        (Endpoint::ResendVerification, call(Endpoint::ResendVerification).key(&main.key), 409),
        (Endpoint::CreateApiKey, call(Endpoint::CreateApiKey).key(&main.key).json(json!({"name": "cli"})), 201),
        (Endpoint::ListApiKeys, call(Endpoint::ListApiKeys).key(&main.key), 200),
        (
            Endpoint::UpdateApiKey,
            call(Endpoint::UpdateApiKey).key(&main.key).param("id", &scoped_id).json(json!({"scopes": ["roll:read"]})),
            200,
        ),
        (Endpoint::DeleteApiKey, call(Endpoint::DeleteApiKey).key(&main.key).param("id", &scoped_id), 200),
        (
            Endpoint::Verify,
            call(Endpoint::Verify)
                .header("authorization", &format!("Bearer {}", service.key.as_str()))
                .json(json!({"key": main.key})),
            200,
        ),
    ];
    assert_eq!(cases.len(), Endpoint::ALL.len());
    let env = [("RESET_RESPONSE_FLOOR_MS", "0"), ("SERVICE_KEY_DIGESTS", service.digest.as_str())];
    for (endpoint, request, status) in cases {
        let name = endpoint.function_name();
        let outcome = invoke(name, request.event(), &env).await;
        let answer = match outcome {
            Outcome::Response(answer) => answer,
            Outcome::Error(error) => panic!("{name} reported an error: {error}"),
        };
        assert_eq!(answer["statusCode"], status, "{name}: {answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert!(body.is_object(), "{name}: {answer}");
    }
    // What the binaries did is visible through the in-process handlers too.
    let gone = h.send(call(Endpoint::UserData).key(&leaving.key)).await;
    gone.assert_error(401, "Invalid API key");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_function_without_its_configuration_stops_at_init_naming_the_variable() {
    let output = tokio::process::Command::new(binary("user-data"))
        .env_remove("USERS_TABLE")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("USERS_TABLE"), "{printed}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_authorizer_binary_answers_authorizer_events() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, scoped) = h.scoped_key(&account.key, json!({"name": "relay", "scopedClientId": "c-1"})).await;
    let admitted = invoke("authorizer", crate::authorizer::authorizer_event(Some(&scoped)), &[]).await;
    let Outcome::Response(answer) = admitted else { panic!("the authorizer failed: {admitted:?}") };
    assert_eq!(answer["isAuthorized"], true, "{answer}");
    assert_eq!(
        (answer["context"]["scopedKeyId"].as_str(), answer["context"]["userId"].as_str()),
        (Some(id.as_str()), Some(account.id.as_str()))
    );
    let refused = invoke("authorizer", crate::authorizer::authorizer_event(Some("frs_nope")), &[]).await;
    let Outcome::Response(answer) = refused else { panic!("the authorizer failed: {refused:?}") };
    assert_eq!(answer, json!({"isAuthorized": false, "context": {}}));
}

/// The EMF documents among the lines a function printed, each checked against the
/// format: `_aws.Timestamp`, and per directive a namespace, dimension sets whose keys
/// are string members of the document, and metrics that are number members of it.
/// Answers (metric, dimension values, count) for every metric.
fn emf_metrics(stdout: &str, namespace: &str) -> Vec<(String, BTreeMap<String, String>, u64)> {
    let mut found = Vec::new();
    for line in stdout.lines() {
        let Ok(doc) = serde_json::from_str::<Value>(line) else { continue };
        let Some(meta) = doc.get("_aws") else { continue };
        assert!(meta["Timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{line}");
        for directive in meta["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(directive["Namespace"], namespace, "{line}");
            let sets = directive["Dimensions"].as_array().unwrap();
            assert!(!sets.is_empty(), "{line}");
            for set in sets {
                for key in set.as_array().unwrap() {
                    assert!(doc[key.as_str().unwrap()].is_string(), "dimension {key} without a value: {line}");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert_eq!(metric["Unit"], "Count", "{line}");
                let value = doc[name].as_u64().unwrap_or_else(|| panic!("{name} has no count: {line}"));
                for set in sets {
                    let dimensions = set
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| {
                            (k.as_str().unwrap().to_owned(), doc[k.as_str().unwrap()].as_str().unwrap().to_owned())
                        })
                        .collect();
                    found.push((name.to_owned(), dimensions, value));
                }
            }
        }
    }
    found
}

fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The count of `metric` under exactly these dimensions, summed over the documents.
fn counted(found: &[(String, BTreeMap<String, String>, u64)], metric: &str, dimensions: &[(&str, &str)]) -> u64 {
    let dimensions = dims(dimensions);
    found.iter().filter(|(name, d, _)| name == metric && *d == dimensions).map(|(_, _, n)| n).sum()
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_functions_print_their_decisions_as_emf_metrics_without_secrets() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "relay"})).await;
    let namespace = "FoundryAuth/emf-test";
    let address = format!("198.51.100.{}", rand::random::<u8>());
    // A correct password gives its check back; one failed check spends the budget and
    // locks the account.
    let env =
        [("METRICS_NAMESPACE", namespace), ("THROTTLE_ACCOUNT_FAILURES", "1/900"), ("RESET_RESPONSE_FLOOR_MS", "0")];
    let wrong = "Wrong-Password-9";
    let mut printed = String::new();

    let login = |password: &str| {
        call(Endpoint::Login).sent_from(&address).json(json!({"email": account.email, "password": password})).event()
    };
    let (succeeded, out) = invoke_reading_stdout("login", login(PASSWORD), &env).await;
    assert!(matches!(&succeeded, Outcome::Response(answer) if answer["statusCode"] == 200), "{succeeded:?}");
    let found = emf_metrics(&out, namespace);
    assert_eq!(counted(&found, "LoginSucceeded", &[("Route", "login")]), 1, "{out}");
    assert_eq!(counted(&found, "ClientErrors", &[("Route", "login")]), 0, "{out}");
    printed.push_str(&out);

    let (failed, out) = invoke_reading_stdout("login", login(wrong), &env).await;
    let Outcome::Response(answer) = failed else { panic!("login failed: {failed:?}") };
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let found = emf_metrics(&out, namespace);
    for metric in ["Requests", "ClientErrors", "LoginFailed", "Lockouts"] {
        assert_eq!(counted(&found, metric, &[("Route", "login")]), 1, "{metric}: {out}");
        assert_eq!(counted(&found, metric, &[]), 1, "{metric} service-wide: {out}");
    }
    assert_eq!(counted(&found, "ServerErrors", &[("Route", "login")]), 0, "{out}");
    printed.push_str(&out);

    let (locked, out) = invoke_reading_stdout("login", login(PASSWORD), &env).await;
    let Outcome::Response(answer) = locked else { panic!("login failed: {locked:?}") };
    assert_eq!(answer["statusCode"], 429, "{answer}");
    let found = emf_metrics(&out, namespace);
    assert_eq!(counted(&found, "Throttled", &[("Rule", "account-failures")]), 1, "{out}");
    assert_eq!(counted(&found, "LoginSucceeded", &[("Route", "login")]), 0, "refused before any check: {out}");
    printed.push_str(&out);

    let forgot = call(Endpoint::ForgotPassword).sent_from(&address).json(json!({"email": account.email})).event();
    let (sent, out) = invoke_reading_stdout("forgot-password", forgot.clone(), &env).await;
    assert!(matches!(sent, Outcome::Response(_)), "{sent:?}");
    assert_eq!(counted(&emf_metrics(&out, namespace), "ResetEmailsSent", &[("Route", "forgot-password")]), 1, "{out}");
    printed.push_str(&out);
    let (_, out) = invoke_reading_stdout("forgot-password", forgot, &env).await;
    let found = emf_metrics(&out, namespace);
    assert_eq!(counted(&found, "ResetEmailsSuppressed", &[("Route", "forgot-password")]), 1, "one a minute: {out}");
    assert_eq!(counted(&found, "ResetEmailsSent", &[("Route", "forgot-password")]), 0, "{out}");
    printed.push_str(&out);

    // One character changed: the checksum no longer matches.
    let last = if scoped.ends_with('A') { 'B' } else { 'A' };
    let malformed = format!("{}{last}", &scoped[..scoped.len() - 1]);
    for (key, reason) in
        [(Some(scoped.as_str()), "admitted"), (Some(malformed.as_str()), "malformed"), (None, "missing")]
    {
        let (_, out) = invoke_reading_stdout("authorizer", crate::authorizer::authorizer_event(key), &env).await;
        let found = emf_metrics(&out, namespace);
        assert_eq!(counted(&found, "AuthorizerDecisions", &[("Reason", reason)]), 1, "{reason}: {out}");
        printed.push_str(&out);
    }

    // Nothing secret or personal in any line a function printed, metrics or logs; and
    // not even the account id in a metric.
    for secret in [PASSWORD, wrong, account.key.as_str(), scoped.as_str(), account.email.as_str()] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    let local_part = account.email.split('@').next().unwrap();
    assert!(!printed.contains(local_part), "the email's local part printed:\n{printed}");
    let metric_lines: Vec<&str> = printed.lines().filter(|l| l.contains("\"_aws\":")).collect();
    assert!(metric_lines.len() >= 8, "{printed}");
    assert!(!metric_lines.iter().any(|l| l.contains(&account.id) || l.contains(&address)), "{metric_lines:?}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_verify_binary_checks_the_service_key_decides_counts_and_prints_its_metrics() {
    let h = Harness::new().await;
    let account = h.register().await;
    let service = NewServiceKey::generate();
    let namespace = "FoundryAuth/verify-test";
    let env = [("METRICS_NAMESPACE", namespace), ("SERVICE_KEY_DIGESTS", service.digest.as_str())];
    // A wrong service key spends its address's budget: an address of this test's own.
    let address = format!("198.51.100.{}", rand::random::<u8>());
    let ask = |service_key: &str, body: Value| {
        call(Endpoint::Verify)
            .sent_from(&address)
            .header("authorization", &format!("Bearer {service_key}"))
            .json(body)
            .event()
    };
    // The answer's status and body, and the EMF metrics printed with it.
    let verify = |event: Value| async move {
        let (outcome, out) = invoke_reading_stdout("verify", event, &env).await;
        let Outcome::Response(answer) = outcome else { panic!("verify failed: {outcome:?}") };
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        (answer["statusCode"].as_u64().unwrap(), body, emf_metrics(&out, namespace), out)
    };
    let mut printed = String::new();

    let (status, body, found, out) = verify(ask(&service.key, json!({"key": account.key}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["valid"], &body["requestsThisMonth"]), (&json!(true), &json!(1)), "{body}");
    assert_eq!((&body["userId"], &body["keyType"]), (&json!(account.id), &json!("master")), "{body}");
    assert_eq!(counted(&found, "AuthorizerDecisions", &[("Reason", "admitted")]), 1, "{out}");
    assert_eq!(counted(&found, "Requests", &[("Route", "verify")]), 1, "{out}");
    assert_eq!(counted(&found, "ServiceKeyRefused", &[("Route", "verify")]), 0, "{out}");
    printed.push_str(&out);

    let wrong = NewServiceKey::generate();
    let (status, body, found, out) = verify(ask(&wrong.key, json!({"key": account.key}))).await;
    assert_eq!((status, &body["code"]), (401, &json!("service_key_required")), "{body}");
    assert_eq!(counted(&found, "ServiceKeyRefused", &[("Route", "verify")]), 1, "{out}");
    assert_eq!(counted(&found, "ServiceKeyRefused", &[]), 1, "service-wide: {out}");
    assert_eq!(counted(&found, "ClientErrors", &[("Route", "verify")]), 1, "{out}");
    let decisions: u64 = found.iter().filter(|(name, ..)| name == "AuthorizerDecisions").map(|(.., n)| n).sum();
    assert_eq!(decisions, 0, "no decision without the service key: {out}");
    printed.push_str(&out);

    // One character changed: the checksum no longer matches.
    let last = if account.key.ends_with('A') { 'B' } else { 'A' };
    let malformed = format!("{}{last}", &account.key[..account.key.len() - 1]);
    let (status, body, found, out) = verify(ask(&service.key, json!({"key": malformed}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"valid": false, "reason": "malformed", "resetsAt": null, "requiredScope": null}));
    assert_eq!(counted(&found, "AuthorizerDecisions", &[("Reason", "malformed")]), 1, "{out}");
    assert_eq!(counted(&found, "ServiceKeyRefused", &[("Route", "verify")]), 0, "{out}");
    printed.push_str(&out);

    // Only the admitted request was counted.
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(data.body["requestsThisMonth"], 1, "{}", data.text);
    // No key, service key or digest in anything the function printed.
    for secret in [account.key.as_str(), malformed.as_str(), service.key.as_str(), wrong.key.as_str()] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    assert!(!printed.contains(service.digest.as_str()), "the digest printed:\n{printed}");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn under_active_tracing_every_sdk_call_is_sent_to_the_xray_daemon_as_a_subsegment() {
    let h = Harness::new().await;
    let account = h.register().await;
    // The X-Ray daemon Lambda runs beside a traced function: a UDP port.
    let daemon = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = daemon.local_addr().unwrap().to_string();
    let event = call(Endpoint::UserData).key(&account.key).event();
    let outcome = invoke("user-data", event, &[("AWS_XRAY_DAEMON_ADDRESS", &address)]).await;
    assert!(matches!(&outcome, Outcome::Response(answer) if answer["statusCode"] == 200), "{outcome:?}");

    let mut subsegments = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), daemon.recv(&mut buffer)).await {
        let text = String::from_utf8(buffer[..n].to_vec()).unwrap();
        let (header, document) = text.split_once('\n').unwrap();
        assert_eq!(serde_json::from_str::<Value>(header).unwrap(), json!({"format": "json", "version": 1}));
        assert!(!document.contains(&account.key) && !document.contains(&account.email), "{document}");
        subsegments.push(serde_json::from_str::<Value>(document).unwrap());
    }
    // The runtime's trace header (see `next`): Root=1-5bef4de7-…;Parent=9a9197af755a6419;Sampled=1.
    assert!(!subsegments.is_empty(), "no subsegment reached the daemon");
    for s in &subsegments {
        assert_eq!(s["type"], "subsegment", "{s}");
        assert_eq!(s["trace_id"], "1-5bef4de7-ad49b0e87f6ef6c87fc2e700", "{s}");
        assert_eq!(s["parent_id"], "9a9197af755a6419", "{s}");
        assert_eq!((s["name"].as_str(), s["namespace"].as_str()), (Some("DynamoDB"), Some("aws")), "{s}");
        assert_eq!(s["http"]["response"]["status"], 200, "{s}");
        assert!(s["end_time"].as_f64().unwrap() >= s["start_time"].as_f64().unwrap(), "{s}");
    }
    let operations: BTreeSet<&str> = subsegments.iter().filter_map(|s| s["aws"]["operation"].as_str()).collect();
    assert!(operations.iter().all(|o| ["GetItem", "TransactGetItems", "BatchGetItem"].contains(o)), "{operations:?}");
}
