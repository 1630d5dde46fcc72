//! Conventions every route shares: routing, body parsing, content type, size.

use crate::support::*;
use serde_json::json;
use shared::http::Endpoint;

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_in_json() {
    let h = Harness::new().await;
    let request = {
        let mut event = call(Endpoint::Register).json(json!({})).event();
        event["rawPath"] = json!("/auth/nope");
        event["requestContext"]["http"]["path"] = json!("/auth/nope");
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let reply = Reply::from(shared::http::dispatch(&h.app, request).await);
    reply.assert_error(404, "Not found");

    let request = {
        let mut event = call(Endpoint::Register).event();
        event["requestContext"]["http"]["method"] = json!("GET");
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let reply = Reply::from(shared::http::dispatch(&h.app, request).await);
    reply.assert_error(405, "Method not allowed");
}

#[tokio::test]
async fn the_route_table_extracts_path_parameters() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, _) = h.scoped_key(&account.key, json!({"name": "routed"})).await;
    let request = {
        let mut event = call(Endpoint::DeleteApiKey).key(&account.key).event();
        let path = format!("/auth/api-keys/{id}");
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        lambda_http::request::from_str(&event.to_string()).unwrap()
    };
    let reply = Reply::from(shared::http::dispatch(&h.app, request).await);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body, json!({"keys": []}));
}

#[tokio::test]
async fn bodies_are_read_deliberately() {
    let h = Harness::new().await;
    let login = || call(Endpoint::Login);
    h.send(login().raw("application/json", "{\"email\": ")).await.assert_error(400, "Invalid JSON format");
    assert_eq!(h.send(login().raw("application/json", "{oops")).await.body["code"], "invalid_json");
    h.send(login().raw("application/json", "[\"a\"]")).await.assert_error(400, "Request body must be a JSON object");
    h.send(login().json(json!({"email": ["a"], "password": "x"}))).await.assert_error(400, "email must be a string");
    h.send(login().raw("text/plain", "{}")).await.assert_error(400, "Content-Type must be application/json");
    let big = json!({"email": "a@b.io", "password": "x".repeat(17 * 1024)});
    h.send(login().json(big)).await.assert_error(413, "Request body is too large");
    // An empty body is an empty object.
    h.send(login()).await.assert_error(400, "Email and password are required");
}

#[tokio::test]
async fn every_answer_is_json_and_never_cached() {
    let h = Harness::new().await;
    for endpoint in Endpoint::ALL {
        let mut c = call(endpoint);
        if endpoint.path().contains('{') {
            c = c.param("id", "x").param("token", "x");
        }
        let reply = h.send(c).await;
        assert_eq!(reply.header("content-type"), "application/json", "{endpoint:?}");
        assert_eq!(reply.header("cache-control"), "no-store", "{endpoint:?}");
        assert!(reply.body.is_object(), "{endpoint:?}: {}", reply.text);
    }
}
