//! `POST /auth/verify` over HTTP on the local server: the service key from the command
//! line (`--service-key-digest`, twice for a rotation) and from `SERVICE_KEY_DIGESTS`,
//! refusals named, and concurrent requests of one key counted exactly.

use super::{email, Server, PASSWORD};
use futures::future::join_all;
use serde_json::{json, Value};
use shared::domain::service_key::NewServiceKey;

impl Server {
    async fn verify(&self, service_key: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}/auth/verify", self.base)).json(&body);
        if let Some(key) = service_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn master_key(&self) -> String {
        let (status, body) =
            self.send("POST", "/auth/register", None, Some(json!({"email": email(), "password": PASSWORD}))).await;
        assert_eq!(status, 201, "{body}");
        body["apiKey"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn verify_takes_its_service_keys_from_the_command_line_and_the_environment() {
    let data = tempfile::tempdir().unwrap();
    let (old, new, from_env) = (NewServiceKey::generate(), NewServiceKey::generate(), NewServiceKey::generate());
    // Two digests at once (a rotation): one from the command line, one from the environment.
    let server = Server::start_with_args(
        data.path(),
        &[("SERVICE_KEY_DIGESTS", from_env.digest.as_str())],
        &["--service-key-digest", &old.digest],
    );
    let key = server.master_key().await;
    for service_key in [&old, &from_env] {
        let (status, body) = server.verify(Some(&service_key.key), json!({"key": key})).await;
        assert_eq!((status, &body["valid"]), (200, &json!(true)), "{body}");
    }
    for service_key in [Some(new.key.as_str()), None] {
        let (status, body) = server.verify(service_key, json!({"key": key})).await;
        assert_eq!((status, &body["code"]), (401, &json!("service_key_required")));
    }
    server.stop();

    // Rotated: the old key is gone, the new one accepted.
    let server = Server::start_with_args(data.path(), &[], &["--service-key-digest", &new.digest]);
    assert_eq!(server.verify(Some(&old.key), json!({"key": key})).await.0, 401);
    let (status, body) = server.verify(Some(&new.key), json!({"key": key})).await;
    assert_eq!((status, &body["requestsThisMonth"]), (200, &json!(3)), "the counts survived the restart");
    server.stop();

    // None configured: the door is closed.
    let server = Server::start_with(data.path(), &[]);
    assert_eq!(server.verify(Some(&new.key), json!({"key": key})).await.0, 404);
    server.stop();
}

#[tokio::test]
async fn verify_names_refusals_keeps_caps_and_counts_concurrent_requests_exactly() {
    let data = tempfile::tempdir().unwrap();
    let service = NewServiceKey::generate();
    let server = Server::start_with_args(data.path(), &[], &["--service-key-digest", &service.digest]);
    let master = server.master_key().await;
    let (status, created) = server
        .send(
            "POST",
            "/auth/api-keys",
            Some(&master),
            Some(json!({"name": "bot", "monthlyLimit": 25, "scopedClientId": "w1"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let scoped = created["key"].as_str().unwrap();
    let ask = |body: Value| server.verify(Some(&service.key), body);

    let refusals = [
        (json!({"key": ""}), "missing"),
        (json!({"key": "frs_nope"}), "malformed"),
        (json!({"key": scoped, "clientId": "w2"}), "client"),
    ];
    for (body, reason) in refusals {
        assert_eq!(
            ask(body).await.1,
            json!({"valid": false, "reason": reason, "resetsAt": null, "requiredScope": null})
        );
    }
    // A new key holds the read-only default set: the route's scope decides, counting nothing.
    let scope_refusals = [
        (json!({"key": scoped, "scope": "roll:execute", "count": false}), json!("roll:execute")),
        (json!({"key": scoped, "method": "POST", "path": "/execute-js", "count": false}), json!("execute-js")),
        (
            json!({"key": scoped, "method": "POST", "path": "/macro/Macro.x1/execute", "count": false}),
            json!("macro:execute"),
        ),
        (json!({"key": scoped, "method": "GET", "path": "/admin/users", "count": false}), json!(null)),
        // A route named as null is no route: refused, as one in no entry.
        (json!({"key": scoped, "method": "GET", "path": null, "count": false}), json!(null)),
    ];
    for (body, required) in scope_refusals {
        let expected = json!({"valid": false, "reason": "scope", "resetsAt": null, "requiredScope": required});
        assert_eq!(ask(body.clone()).await.1, expected, "{body}");
    }
    let (_, admitted) = ask(json!({"key": scoped, "method": "GET", "path": "/rolls/?limit=3", "count": false})).await;
    assert_eq!(admitted["valid"], true, "{admitted}");
    let held: Vec<&str> = admitted["scopes"].as_str().unwrap().split(' ').collect();
    assert_eq!(held.len(), 17, "the default set: {held:?}");
    assert!(held.contains(&"roll:read") && !held.contains(&"roll:execute"));
    let (status, refused) = ask(json!({"key": scoped, "scope": "roll:fly"})).await;
    assert_eq!((status, &refused["code"]), (400, &json!("invalid_scopes")), "{refused}");
    let (status, lone) = ask(json!({"key": scoped, "method": "GET"})).await;
    assert_eq!((status, &lone["code"]), (400, &json!("invalid_body")), "{lone}");
    let (_, decided) = ask(json!({"key": scoped, "count": false})).await;
    assert_eq!((&decided["valid"], &decided["requestsThisMonth"]), (&json!(true), &json!(0)));

    let answers = join_all((0..30).map(|_| ask(json!({"key": scoped, "clientId": "w1"})))).await;
    let mut counts: Vec<u64> = answers.iter().filter_map(|(_, a)| a["requestsThisMonth"].as_u64()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=25).collect::<Vec<_>>(), "25 of 30 admitted, each with its own count");
    assert!(answers.iter().all(|(status, _)| *status == 200));
    assert!(answers.iter().filter(|(_, a)| a["valid"] == false).all(|(_, a)| a["reason"] == "cap"));
    let (_, listed) = server.send("GET", "/auth/api-keys", Some(&master), None).await;
    assert_eq!(listed["keys"][0]["requestsThisMonth"], 25);
    server.stop();
}
