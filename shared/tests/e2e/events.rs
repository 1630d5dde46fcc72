//! `events/<function>.json`: the API Gateway events that `sam local invoke` uses are
//! parsed by `lambda_http` and answered by the handlers as the contract says.

use crate::support::*;
use serde_json::{json, Value};
use shared::http::Endpoint;
use std::path::PathBuf;

fn event_file(endpoint: Endpoint) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(format!("{}.json", endpoint.function_name()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_function_has_an_event_of_its_route() {
    for endpoint in Endpoint::ALL {
        let event = event_file(endpoint);
        assert_eq!(event["version"], "2.0");
        let route_key = format!("{} {}", endpoint.method(), endpoint.path());
        assert_eq!(event["routeKey"], route_key.as_str(), "{endpoint:?}");
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.method(), endpoint.method());
    }
}

#[tokio::test]
async fn the_events_in_sequence_are_answered_as_the_contract_says() {
    let h = Harness::new().await;
    let credentials = serde_json::from_str::<Value>(event_file(Endpoint::Register)["body"].as_str().unwrap()).unwrap();
    let mut master = String::new();
    let sequence = [
        (Endpoint::Register, 201),
        (Endpoint::Login, 200),
        (Endpoint::RegenerateKey, 200),
        (Endpoint::UserData, 200),
        (Endpoint::Activity, 200),
        (Endpoint::ExportData, 200),
        (Endpoint::CreateApiKey, 201),
        (Endpoint::ListApiKeys, 200),
        (Endpoint::UpdateApiKey, 404),
        (Endpoint::DeleteApiKey, 404),
        (Endpoint::ForgotPassword, 200),
        (Endpoint::ValidateResetToken, 200),
        (Endpoint::ResetPassword, 400),
        (Endpoint::ChangePassword, 200),
        // Verification is not required: the account counts as verified, the token is unknown.
        (Endpoint::ResendVerification, 409),
        (Endpoint::VerifyEmail, 400),
        (Endpoint::DeleteAccount, 200),
        // The door is closed: the harness configures no service key.
        (Endpoint::Verify, 404),
    ];
    assert_eq!(sequence.len(), Endpoint::ALL.len());
    for (endpoint, status) in sequence {
        let mut event = event_file(endpoint);
        if event["headers"]["x-api-key"].is_string() {
            event["headers"]["x-api-key"] = json!(master);
        }
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let reply = Reply::from(endpoint.handle(&h.app, request).await);
        assert_eq!(reply.status, status, "{endpoint:?}: {}", reply.text);
        if let Some(key) = reply.body["apiKey"].as_str() {
            master = key.to_owned();
        }
    }
    // The account the events created is gone again, so the sequence can run again.
    let login = call(Endpoint::Login).json(credentials);
    h.send(login).await.assert_error(401, "Invalid credentials");
}
