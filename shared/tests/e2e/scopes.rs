//! Scopes: what each scoped key may do on the relay, decided at both doors (the gateway's
//! authorizer and verify) from the route's method and path, and changed with
//! `PATCH /auth/api-keys/{id}` without changing the key.

use crate::support::*;
use crate::verify::{ask, verifying};
use serde_json::{json, Value};
use shared::domain::keys::{ApiKey, KeyKind};
use shared::domain::model::ScopedKey;
use shared::domain::scopes::{Grant, RouteScopes};
use shared::domain::service_key::NewServiceKey;
use shared::http::Endpoint;

impl Harness {
    async fn admits(&self, key: &str, method: &str, path: &str) -> bool {
        self.authorize_route(key, method, path).await["isAuthorized"].as_bool().unwrap()
    }

    async fn change(&self, master: &str, id: &str, body: Value) -> Reply {
        self.send(call(Endpoint::UpdateApiKey).key(master).param("id", id).json(body)).await
    }

    async fn listed(&self, master: &str, id: &str) -> Value {
        let list = self.send(call(Endpoint::ListApiKeys).key(master)).await;
        list.body["keys"].as_array().unwrap().iter().find(|k| k["id"] == id).cloned().expect("the key is listed")
    }
}

#[tokio::test]
async fn a_read_only_key_passes_for_its_routes_only_and_is_counted_only_when_admitted() {
    let service = NewServiceKey::generate();
    let h = verifying(&[&service], 10).await;
    let account = h.register().await;
    let (id, key) = h.scoped_key(&account.key, json!({"name": "dice bot", "scopes": ["roll:read"]})).await;

    assert!(h.admits(&key, "GET", "/rolls").await);
    assert!(h.admits(&key, "GET", "/rolls/?clientId=world-1").await, "a trailing slash and a query");
    for (method, path) in [("POST", "/roll"), ("POST", "/execute-js"), ("GET", "/chat"), ("GET", "/no-such-route")] {
        assert!(!h.admits(&key, method, path).await, "{method} {path}");
    }
    let context = &h.authorize_route(&key, "GET", "/lastroll").await["context"];
    assert_eq!(context["scopes"], "roll:read");
    assert_eq!(h.listed(&account.key, &id).await["requestsThisMonth"], 3, "the three admitted, no refusal");

    // Verify agrees, by scope or by method and path, and counts the same way.
    let verdicts = [
        (json!({"key": key, "method": "GET", "path": "/rolls"}), json!(true), Value::Null),
        (json!({"key": key, "method": "POST", "path": "/roll"}), json!(false), json!("roll:execute")),
        (json!({"key": key, "scope": "execute-js"}), json!(false), json!("execute-js")),
        (json!({"key": key, "scope": "roll:read"}), json!(true), Value::Null),
    ];
    for (body, valid, required) in verdicts {
        let answer = h.verify(&service, body.clone()).await;
        assert_eq!(answer["valid"], valid, "{body}: {answer}");
        if valid == false {
            assert_eq!((&answer["reason"], &answer["requiredScope"]), (&json!("scope"), &required), "{answer}");
        }
    }
    assert_eq!(h.listed(&account.key, &id).await["requestsThisMonth"], 5);
    // A scope that is none of the catalogue's is the caller's mistake.
    let reply = h.send(ask(&service.key, json!({"key": key, "scope": "roll:fly"}))).await;
    reply.assert_error(400, "Unknown or repeated scope: \"roll:fly\"");
}

#[tokio::test]
async fn a_new_key_gets_the_read_only_default_and_an_empty_list_grants_nothing() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, default) = h.scoped_key(&account.key, json!({"name": "default"})).await;
    assert!(h.admits(&default, "GET", "/get").await && h.admits(&default, "GET", "/dnd5e/get-actor-details").await);
    for (method, path) in
        [("POST", "/create"), ("POST", "/roll"), ("POST", "/macro/Macro.x/execute"), ("POST", "/upload")]
    {
        assert!(!h.admits(&default, method, path).await, "{method} {path}: write, execute and manage are not default");
    }
    let (id, nothing) = h.scoped_key(&account.key, json!({"name": "nothing", "scopes": []})).await;
    assert!(!h.admits(&nothing, "GET", "/get").await);
    assert_eq!(h.listed(&account.key, &id).await["scopes"], json!([]));
    for (scopes, first) in
        [(json!(["roll:read", "roll:fly", "x"]), "roll:fly"), (json!(["search", "search"]), "search")]
    {
        let reply =
            h.send(call(Endpoint::CreateApiKey).key(&account.key).json(json!({"name": "bad", "scopes": scopes}))).await;
        reply.assert_error(400, &format!("Unknown or repeated scope: {first:?}"));
        assert_eq!(reply.body["code"], "invalid_scopes");
    }
}

#[tokio::test]
async fn a_key_made_before_scopes_holds_every_scope_until_narrowed() {
    let h = Harness::new().await;
    let account = h.register().await;
    let user = h.app.store.user(&account.id).await.unwrap().unwrap();
    let key = ApiKey::generate(KeyKind::Scoped);
    let now = h.clock.now();
    let old = ScopedKey {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name: "from before".into(),
        digest: key.digest(),
        prefix: key.display_prefix(),
        scoped_client_id: None,
        scoped_user_id: None,
        scoped_client_ids: Vec::new(),
        scoped_user_ids: Default::default(),
        grant: Grant::Unrestricted,
        monthly_limit: None,
        daily_limit: None,
        expires_at: None,
        foundry_url: None,
        foundry_username: None,
        foundry_password_ciphertext: None,
        enabled: true,
        generation: user.key_generation,
        created_at: now,
        updated_at: now,
    };
    h.app.store.create_scoped_key(&user, &old, 100).await.unwrap();
    let key = key.expose().to_owned();
    assert_eq!(h.listed(&account.key, &old.id).await["scopes"], Value::Null, "shown as made before scopes");
    assert!(h.admits(&key, "POST", "/execute-js").await && h.admits(&key, "GET", "/anything-else").await);

    let reply = h.change(&account.key, &old.id, json!({"scopes": ["chat:read"]})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        (reply.body["scopes"].clone(), reply.body["requestsThisMonth"].clone()),
        (json!(["chat:read"]), json!(2))
    );
    assert!(!h.admits(&key, "POST", "/execute-js").await && !h.admits(&key, "GET", "/anything-else").await);
    assert!(h.admits(&key, "GET", "/chat").await, "the same key, narrowed");
    assert_eq!(h.listed(&account.key, &old.id).await["requestsThisMonth"], 3, "its counters stayed");
}

#[tokio::test]
async fn changing_a_key_follows_the_rules_of_creating_one() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, key) = h
        .scoped_key(&account.key, json!({"name": "bot", "monthlyLimit": 50, "dailyLimit": 5, "scopedClientId": "w1"}))
        .await;

    let reply = h.change(&account.key, &id, json!({"name": " renamed ", "monthlyLimit": null, "scopedClientIds": ["w1", "w2"], "scopedUserIds": {"w2": "gm"}})).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let changed = &reply.body;
    assert_eq!(
        (changed["name"].clone(), changed["monthlyLimit"].clone(), changed["dailyLimit"].clone()),
        (json!("renamed"), Value::Null, json!(5))
    );
    assert_eq!(changed["scopedClientIds"], json!(["w1", "w2"]));
    assert_eq!(*changed, h.listed(&account.key, &id).await, "answered as listed");
    assert!(h.admits(&key, "GET", "/get?clientId=w2&userId=gm").await);
    assert!(!h.admits(&key, "GET", "/get?clientId=w2&userId=player").await, "w2's user is gm");
    assert!(!h.admits(&key, "GET", "/get?clientId=w3").await);

    let reply = h.change(&account.key, &id, json!({"enabled": false})).await;
    assert_eq!(reply.body["enabled"], false);
    assert!(!h.admits(&key, "GET", "/get").await, "switched off");
    h.change(&account.key, &id, json!({"enabled": true})).await;
    assert!(h.admits(&key, "GET", "/get").await, "switched on again");

    for (body, status, code) in [
        (json!({"scopes": ["roll:fly"]}), 400, "invalid_scopes"),
        (json!({"name": "   "}), 400, "missing_fields"),
        (json!({"monthlyLimit": 0}), 400, "invalid_monthly_limit"),
        (json!({"dailyLimit": "x"}), 400, "invalid_daily_limit"),
        (json!({"expiresAt": "2020-01-01T00:00:00Z"}), 400, "invalid_expires_at"),
        (json!({"scopedClientIds": ["w1", "w1"]}), 400, "invalid_scoped_client_ids"),
        (json!({"scopedUserIds": {"w1": ""}}), 400, "invalid_scoped_user_ids"),
        (json!({"scopes": "roll:read"}), 400, "invalid_body"),
    ] {
        let reply = h.change(&account.key, &id, body.clone()).await;
        assert_eq!((reply.status, reply.body["code"].as_str()), (status, Some(code)), "{body}: {}", reply.text);
    }
    assert_eq!(h.listed(&account.key, &id).await["name"], "renamed", "a refused change changed nothing");

    // Not found: unknown, malformed, another account's; a scoped key may not change keys.
    let other = h.register().await;
    for (master, id) in [
        (&account.key, uuid::Uuid::new_v4().to_string()),
        (&account.key, "not-a-uuid".into()),
        (&other.key, id.clone()),
    ] {
        h.change(master, &id, json!({"name": "x"})).await.assert_error(404, "API key not found");
    }
    assert_eq!(h.change(&key, &id, json!({"name": "x"})).await.status, 403);
    // A key retired with its master key stays retired.
    let regenerated =
        h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;
    let new_master = regenerated.str("apiKey");
    h.change(&new_master, &id, json!({"enabled": true})).await.assert_error(404, "API key not found");
    assert!(!h.admits(&key, "GET", "/get").await);
}

#[tokio::test]
async fn master_keys_may_be_kept_off_the_relay_and_still_manage_their_account() {
    let service = NewServiceKey::generate();
    let digests = shared::domain::service_key::ServiceKeyDigests::parse([service.digest.as_str()]).unwrap();
    let h = Harness::configured(move |c| {
        c.settings.master_key_relay_access = false;
        c.settings.service_key_digests = digests;
    })
    .await;
    let account = h.register().await;
    assert!(!h.admits(&account.key, "GET", "/clients").await);
    let answer = h.verify(&service, json!({"key": account.key, "method": "GET", "path": "/clients"})).await;
    assert_eq!((&answer["valid"], &answer["reason"]), (&json!(false), &json!("master_key_not_allowed")));
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    assert!(h.admits(&scoped, "GET", "/clients").await, "scoped keys are for the relay");
    let data = h.send(call(Endpoint::UserData).key(&account.key)).await;
    // The account, managed; its count holds the scoped key's request alone.
    assert_eq!((data.status, data.body["requestsThisMonth"].clone()), (200, json!(1)));
}

#[tokio::test]
async fn route_scopes_map_a_relays_other_routes() {
    let routes =
        RouteScopes::with_setting(r#"{"GET /custom/{id}": "roll:read", "GET /health": "open", "*": "deny"}"#).unwrap();
    let h = Harness::configured(move |c| c.settings.route_scopes = routes).await;
    let account = h.register().await;
    let (_, rolls) = h.scoped_key(&account.key, json!({"name": "rolls", "scopes": ["roll:read"]})).await;
    let (_, chat) = h.scoped_key(&account.key, json!({"name": "chat", "scopes": ["chat:read"]})).await;
    assert!(h.admits(&rolls, "GET", "/custom/7").await);
    assert!(!h.admits(&chat, "GET", "/custom/7").await);
    assert!(h.admits(&chat, "GET", "/health").await, "open to every key");
    assert!(!h.admits(&chat, "GET", "/elsewhere").await);
    assert!(h.admits(&account.key, "GET", "/elsewhere").await, "a master key is not held to scopes");
}
