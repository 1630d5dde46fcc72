//! POST /auth/api-keys, GET /auth/api-keys, DELETE /auth/api-keys/:id.

use crate::support::*;
use serde_json::json;
use shared::domain::ports::EncryptionContext;
use shared::domain::scopes::Scope;
use shared::http::Endpoint;

#[tokio::test]
async fn create_answers_201_with_the_key_shown_once_and_nulls_for_absent_fields() {
    let h = Harness::new().await;
    let account = h.register().await;
    let reply = h.send(call(Endpoint::CreateApiKey).key(&account.key).json(json!({"name": "  Discord bot  "}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let key = reply.str("key");
    assert!(key.starts_with("frs_"));
    assert_eq!(
        reply.body,
        json!({
            "id": reply.str("id"),
            "key": key,
            "name": "Discord bot",
            "scopedClientId": null,
            "scopedUserId": null,
            "scopes": Scope::DEFAULT.map(Scope::name),
            "scopedClientIds": [],
            "scopedUserIds": {},
            "monthlyLimit": null,
            "dailyLimit": null,
            "expiresAt": null,
            "hasFoundryCredentials": false,
            "enabled": true,
            "createdAt": reply.str("createdAt"),
        })
    );
}

#[tokio::test]
async fn create_takes_every_optional_field() {
    let h = Harness::new().await;
    let account = h.register().await;
    let expires = (h.clock.now() + chrono::Duration::days(30)).to_rfc3339();
    let reply = h
        .send(call(Endpoint::CreateApiKey).key(&account.key).json(json!({
            "name": "Stream overlay",
            "scopedClientId": "client-7",
            "scopedUserId": "user-3",
            "monthlyLimit": "250",
            "dailyLimit": 20,
            "expiresAt": expires,
            "foundryUrl": "https://foundry.example.io:30000",
            "foundryUsername": "Gamemaster",
            "foundryPassword": "Foundry-Secret-2",
        })))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["monthlyLimit"], 250, "a digit string becomes a number");
    assert_eq!(reply.body["dailyLimit"], 20);
    assert_eq!(reply.body["scopedClientId"], "client-7");
    assert_eq!(reply.body["scopedUserId"], "user-3");
    assert_eq!(reply.body["hasFoundryCredentials"], true);
    assert!(reply.str("expiresAt").ends_with('Z'));
    assert!(!reply.text.contains("Foundry-Secret-2"));
}

#[tokio::test]
async fn create_validates_its_fields() {
    let h = Harness::new().await;
    let account = h.register().await;
    let past = (h.clock.now() - chrono::Duration::minutes(1)).to_rfc3339();
    let cases = [
        (json!({}), "Name is required"),
        (json!({"name": "   "}), "Name is required"),
        (json!({"name": "x".repeat(101)}), "Name must be at most 100 characters"),
        (json!({"name": "k", "monthlyLimit": 0}), "monthlyLimit must be a positive whole number"),
        (json!({"name": "k", "monthlyLimit": 1.5}), "monthlyLimit must be a positive whole number"),
        (json!({"name": "k", "monthlyLimit": "ten"}), "monthlyLimit must be a positive whole number"),
        (json!({"name": "k", "dailyLimit": 0}), "dailyLimit must be a positive whole number"),
        (json!({"name": "k", "dailyLimit": "-2"}), "dailyLimit must be a positive whole number"),
        (json!({"name": "k", "expiresAt": "next week"}), "expiresAt must be an RFC 3339 timestamp in the future"),
        (json!({"name": "k", "expiresAt": past}), "expiresAt must be an RFC 3339 timestamp in the future"),
        (json!({"name": "k", "foundryUrl": "foundry.local:30000"}), "foundryUrl must be an http(s) URL"),
        (json!({"name": "k", "foundryUrl": "ftp://foundry.example.io"}), "foundryUrl must be an http(s) URL"),
        (json!({"name": 5}), "name must be a string"),
    ];
    for (body, message) in cases {
        h.send(call(Endpoint::CreateApiKey).key(&account.key).json(body)).await.assert_error(400, message);
    }
    assert_eq!(
        h.send(call(Endpoint::CreateApiKey).key(&account.key).json(json!({"name": "x".repeat(100)}))).await.status,
        201
    );
}

#[tokio::test]
async fn a_scoped_key_cannot_create_or_manage_keys() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, scoped) = h.scoped_key(&account.key, json!({"name": "module"})).await;
    h.send(call(Endpoint::CreateApiKey).key(&scoped).json(json!({"name": "child"})))
        .await
        .assert_error(403, "Scoped keys cannot create other scoped keys. Use your master API key.");
    h.send(call(Endpoint::ListApiKeys).key(&scoped))
        .await
        .assert_error(403, "Use your master API key to manage scoped keys.");
    h.send(call(Endpoint::DeleteApiKey).key(&scoped).param("id", &id))
        .await
        .assert_error(403, "Use your master API key to manage scoped keys.");
    h.send(call(Endpoint::CreateApiKey).json(json!({"name": "x"}))).await.assert_error(401, "API key is required");
}

#[tokio::test]
async fn list_shows_prefixes_oldest_first_with_expiry_and_state() {
    let h = Harness::new().await;
    let account = h.register().await;
    let soon = (h.clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    let (first, first_key) =
        h.scoped_key(&account.key, json!({"name": "first", "expiresAt": soon, "monthlyLimit": 5})).await;
    h.clock.advance(chrono::Duration::seconds(2));
    let (second, _) = h
        .scoped_key(
            &account.key,
            json!({"name": "second", "foundryUrl": "http://localhost:30000", "foundryUsername": "gm"}),
        )
        .await;

    let reply = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let keys = reply.body["keys"].as_array().unwrap();
    let ids: Vec<_> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), second.as_str()]);
    assert_eq!(keys[0]["key"], format!("{}...", &first_key[..12]));
    assert_eq!(keys[0]["isExpired"], false);
    assert_eq!(keys[0]["monthlyLimit"], 5);
    assert_eq!(keys[0]["requestsThisMonth"], 0);
    assert_eq!(keys[1]["foundryUrl"], "http://localhost:30000");
    assert_eq!(keys[1]["hasFoundryCredentials"], false);
    let mut fields: Vec<_> = keys[0].as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "createdAt",
            "dailyLimit",
            "enabled",
            "expiresAt",
            "foundryUrl",
            "foundryUsername",
            "hasFoundryCredentials",
            "id",
            "isExpired",
            "key",
            "monthlyLimit",
            "name",
            "requestsThisMonth",
            "scopedClientId",
            "scopedClientIds",
            "scopedUserId",
            "scopedUserIds",
            "scopes",
            "updatedAt"
        ]
    );
    assert!(!reply.text.contains(&first_key));

    h.clock.advance(chrono::Duration::hours(2));
    let later = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(later.body["keys"][0]["isExpired"], true);
}

#[tokio::test]
async fn an_expired_scoped_key_stops_working_while_its_record_remains() {
    let h = Harness::new().await;
    let account = h.register().await;
    let soon = (h.clock.now() + chrono::Duration::minutes(10)).to_rfc3339();
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "temp", "expiresAt": soon})).await;
    // A valid scoped key meets the master-key wall, not the 401.
    h.send(call(Endpoint::UserData).key(&scoped))
        .await
        .assert_error(403, "Use your master API key to manage scoped keys.");
    h.clock.advance(chrono::Duration::minutes(10));
    h.send(call(Endpoint::UserData).key(&scoped)).await.assert_error(401, "Invalid API key");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn create_list_use_delete_then_the_key_answers_401() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, scoped) = h.scoped_key(&account.key, json!({"name": "short-lived"})).await;
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body["keys"][0]["id"], id.as_str());
    h.send(call(Endpoint::UserData).key(&scoped))
        .await
        .assert_error(403, "Use your master API key to manage scoped keys.");

    let reply = h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", &id)).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"success": true, "message": "API key deleted"})));
    h.send(call(Endpoint::UserData).key(&scoped)).await.assert_error(401, "Invalid API key");
    let listed = h.send(call(Endpoint::ListApiKeys).key(&account.key)).await;
    assert_eq!(listed.body, json!({"keys": []}));
    h.send(call(Endpoint::DeleteApiKey).key(&account.key).param("id", &id))
        .await
        .assert_error(404, "API key not found");
}

#[tokio::test]
async fn deleting_unknown_malformed_or_foreign_keys_is_not_found() {
    let h = Harness::new().await;
    let mine = h.register().await;
    let theirs = h.register().await;
    let (their_id, their_key) = h.scoped_key(&theirs.key, json!({"name": "theirs"})).await;
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned(), "%00".to_owned(), their_id.clone()] {
        h.send(call(Endpoint::DeleteApiKey).key(&mine.key).param("id", &id))
            .await
            .assert_error(404, "API key not found");
    }
    // Their key survived.
    h.send(call(Endpoint::UserData).key(&their_key))
        .await
        .assert_error(403, "Use your master API key to manage scoped keys.");
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_foundry_password_is_stored_encrypted_for_this_account_and_key_only() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, _) = h.scoped_key(&account.key, json!({"name": "creds", "foundryPassword": "Foundry-Secret-3"})).await;
    let (other_id, _) = h.scoped_key(&account.key, json!({"name": "other"})).await;
    let item = h
        .dynamo()
        .get_item()
        .table_name(h.config.tables.scoped_keys().unwrap())
        .key("userId", aws_sdk_dynamodb::types::AttributeValue::S(account.id.clone()))
        .key("keyId", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let ciphertext = item["foundryPasswordCiphertext"].as_b().unwrap().as_ref().to_vec();
    assert!(!String::from_utf8_lossy(&ciphertext).contains("Foundry-Secret-3"));

    let cipher = &h.app.cipher;
    let right = cipher.decrypt(&ciphertext, &EncryptionContext::foundry_password(&account.id, &id)).await.unwrap();
    assert_eq!(right.as_slice(), b"Foundry-Secret-3");
    let other_key = cipher.decrypt(&ciphertext, &EncryptionContext::foundry_password(&account.id, &other_id)).await;
    assert!(other_key.is_err(), "another key's context must not decrypt it");
    let other_account = cipher.decrypt(&ciphertext, &EncryptionContext::foundry_password("someone-else", &id)).await;
    assert!(other_account.is_err(), "another account's context must not decrypt it");
}
