//! register, login, regenerate-key, user-data, export-data, change-password, delete account.

use crate::support::*;
use serde_json::json;
use shared::domain::hasher::{Work, RELAY_BCRYPT_COST};
use shared::http::Endpoint;

#[tokio::test]
async fn register_answers_201_with_the_account_and_its_master_key() {
    let h = Harness::new().await;
    let email = unique_email();
    let reply =
        h.send(call(Endpoint::Register).json(json!({"email": format!("  {email} "), "password": PASSWORD}))).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body["email"], email.as_str());
    assert_eq!(reply.body["subscriptionStatus"], "free");
    assert!(uuid::Uuid::parse_str(&reply.str("id")).is_ok());
    assert!(reply.str("apiKey").starts_with("frm_"));
    let created = reply.str("createdAt");
    assert!(chrono::DateTime::parse_from_rfc3339(&created).is_ok() && created.ends_with('Z'), "{created}");
    let mut fields: Vec<_> = reply.body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["apiKey", "createdAt", "email", "id", "subscriptionStatus"]);
}

#[tokio::test]
async fn register_validates_fields_in_the_contracts_order() {
    let h = Harness::new().await;
    let cases = [
        (json!({}), "Email and password are required"),
        (json!({"email": "a@example.io"}), "Email and password are required"),
        (json!({"email": "", "password": PASSWORD}), "Email and password are required"),
        (json!({"email": "not-an-email", "password": "short"}), "Invalid email address"),
        (json!({"email": unique_email(), "password": "short"}), "Password must be at least 8 characters long"),
        (
            json!({"email": unique_email(), "password": "lowercase1"}),
            "Password must contain at least one uppercase letter",
        ),
        (
            json!({"email": unique_email(), "password": "UPPERCASE1"}),
            "Password must contain at least one lowercase letter",
        ),
        (json!({"email": unique_email(), "password": "NoNumbersHere"}), "Password must contain at least one number"),
        (
            json!({"email": unique_email(), "password": format!("Aa1{}", "b".repeat(126))}),
            "Password must be at most 128 characters long",
        ),
        (json!({"email": 42, "password": PASSWORD}), "email must be a string"),
    ];
    for (body, message) in cases {
        h.send(call(Endpoint::Register).json(body)).await.assert_error(400, message);
    }
}

#[tokio::test]
async fn an_email_registers_once_whatever_its_letter_case() {
    let h = Harness::new().await;
    let account = h.register().await;
    let shouted = account.email.to_uppercase();
    let reply = h.send(call(Endpoint::Register).json(json!({"email": shouted, "password": PASSWORD}))).await;
    reply.assert_error(409, "User already exists");
}

#[tokio::test]
async fn registration_can_be_switched_off() {
    let h = Harness::configured(|c| c.settings.registration_enabled = false).await;
    let reply = h.send(call(Endpoint::Register).json(json!({"email": unique_email(), "password": PASSWORD}))).await;
    reply.assert_error(403, "Registration is disabled on this server");
}

#[tokio::test]
async fn login_answers_the_current_master_key() {
    let h = Harness::new().await;
    let account = h.register().await;
    let reply =
        h.send(call(Endpoint::Login).json(json!({"email": account.email.to_uppercase(), "password": PASSWORD}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.str("apiKey"), account.key);
    assert_eq!(reply.str("id"), account.id);
    assert_eq!(reply.body["requestsThisMonth"], 0);
    assert!(reply.body["createdAt"].is_string());
    h.send(call(Endpoint::Login).json(json!({"email": account.email})))
        .await
        .assert_error(400, "Email and password are required");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike_after_the_same_verification() {
    let h = Harness::new().await;
    let account = h.register().await;
    h.hasher.take();

    let wrong = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": "Wrong-Pass-1"}))).await;
    let wrong_work = h.hasher.take_work();
    let unknown =
        h.send(call(Endpoint::Login).json(json!({"email": unique_email(), "password": "Wrong-Pass-1"}))).await;
    let unknown_work = h.hasher.take_work();

    wrong.assert_error(401, "Invalid credentials");
    assert_eq!((wrong.status, &wrong.text), (unknown.status, &unknown.text));
    // Both ran the same verifications: the policy's argon2id among them.
    assert_eq!(wrong_work, unknown_work);
    let policy = Work::Argon2 { algorithm: "argon2id".into(), m_cost: 19_456, t_cost: 2, p_cost: 1 };
    assert!(wrong_work.contains(&Some(policy)), "{wrong_work:?}");
}

/// The hashing work of one wrong password sent by `wrong`, for an account of each kind
/// (argon2id, registered here; bcrypt, imported from the relay and not yet upgraded) and,
/// when the route names its account by email, for an unknown email.
async fn wrong_password_work<F>(h: &Harness, by_email: bool, wrong: F) -> Vec<(&'static str, Vec<Option<Work>>)>
where
    F: Fn(Option<&Account>, &str) -> Call,
{
    let argon2 = h.register().await;
    let relay = h.register_relay_account().await;
    let mut cases = vec![("argon2id account", Some(&argon2)), ("relay bcrypt account", Some(&relay))];
    if by_email {
        cases.push(("unknown email", None));
    }
    let mut work = Vec::new();
    for (case, account) in cases {
        h.hasher.take();
        let reply = h.send(wrong(account, "Wrong-Pass-1")).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        work.push((case, h.hasher.take_work()));
    }
    work
}

/// Every case did one verification of each decoy: the same kinds and costs, bcrypt of the
/// relay's cost and the policy's argon2id.
fn assert_the_same_work(h: &Harness, work: &[(&str, Vec<Option<Work>>)]) {
    let expected = h.hasher.decoys_work();
    assert!(expected.contains(&Some(Work::Bcrypt { cost: RELAY_BCRYPT_COST })), "{expected:?}");
    for (case, done) in work {
        assert_eq!(done, &expected, "{case}");
    }
}

#[tokio::test]
async fn a_wrong_login_does_the_same_hashing_work_for_an_unknown_email_an_argon2_and_a_relay_account() {
    let h = Harness::new().await;
    let work = wrong_password_work(&h, true, |account, password| {
        let email = account.map_or_else(unique_email, |a| a.email.clone());
        call(Endpoint::Login).json(json!({"email": email, "password": password}))
    })
    .await;
    assert_eq!(work.len(), 3);
    assert_the_same_work(&h, &work);
}

#[tokio::test]
async fn a_wrong_regenerate_key_does_the_same_hashing_work_for_an_unknown_email_an_argon2_and_a_relay_account() {
    let h = Harness::new().await;
    let work = wrong_password_work(&h, true, |account, password| {
        let email = account.map_or_else(unique_email, |a| a.email.clone());
        call(Endpoint::RegenerateKey).json(json!({"email": email, "password": password}))
    })
    .await;
    assert_eq!(work.len(), 3);
    assert_the_same_work(&h, &work);
}

#[tokio::test]
async fn a_wrong_current_password_does_the_same_hashing_work_for_an_argon2_and_a_relay_account() {
    let h = Harness::new().await;
    let work = wrong_password_work(&h, false, |account, password| {
        let account = account.expect("change-password names its account by key");
        call(Endpoint::ChangePassword)
            .key(&account.key)
            .json(json!({"currentPassword": password, "newPassword": "Fresh-Start-2027"}))
    })
    .await;
    assert_eq!(work.len(), 2);
    assert_the_same_work(&h, &work);
}

#[tokio::test]
async fn a_wrong_password_to_delete_does_the_same_hashing_work_for_an_argon2_and_a_relay_account() {
    let h = Harness::new().await;
    let work = wrong_password_work(&h, false, |account, password| {
        let account = account.expect("delete-account names its account by key");
        call(Endpoint::DeleteAccount)
            .key(&account.key)
            .json(json!({"confirmEmail": account.email, "password": password}))
    })
    .await;
    assert_eq!(work.len(), 2);
    assert_the_same_work(&h, &work);
}

#[tokio::test]
async fn a_relay_account_logs_in_with_its_bcrypt_password_and_is_upgraded_to_argon2id() {
    let h = Harness::new().await;
    let account = h.register_relay_account().await;
    h.hasher.take();
    let login = || call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}));
    let first = h.send(login()).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(h.hasher.take_work(), [Some(Work::Bcrypt { cost: RELAY_BCRYPT_COST })], "its own hash, no decoy");
    let stored = h.app.store.user(&account.id).await.unwrap().unwrap().password_hash.expose().to_owned();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "upgraded at the first login");
    let second = h.send(login()).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(h.hasher.take_work(), [Work::of(&stored)]);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn a_weaker_stored_hash_is_upgraded_on_the_next_login() {
    let weak = Harness::new().await;
    let mut weak = weak;
    weak.app.hasher = std::sync::Arc::new(shared::domain::hasher::Argon2Hasher::with_params(1024, 1, 1).unwrap());
    let account = weak.register().await;
    let stored = |h: &Harness, id: String| {
        let dynamo = h.dynamo().clone();
        let table = h.config.tables.users().unwrap().to_owned();
        async move {
            let item = dynamo
                .get_item()
                .table_name(table)
                .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}")))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap();
            item["passwordHash"].as_s().unwrap().clone()
        }
    };
    assert!(stored(&weak, account.id.clone()).await.contains("m=1024,t=1,p=1"));

    let h = Harness::new().await;
    let reply = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let upgraded = stored(&h, account.id.clone()).await;
    assert!(upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{upgraded}");
    let again = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn regenerate_key_revokes_the_old_master_key_and_every_scoped_key_at_once() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "module"})).await;

    let reply = h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let new_key = reply.str("apiKey");
    assert_ne!(new_key, account.key);
    assert_eq!(reply.body.as_object().unwrap().len(), 1);

    h.send(call(Endpoint::UserData).key(&account.key)).await.assert_error(401, "Invalid API key");
    h.send(call(Endpoint::UserData).key(&scoped)).await.assert_error(401, "Invalid API key");
    assert_eq!(h.send(call(Endpoint::UserData).key(&new_key)).await.status, 200);
    let login = h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD}))).await;
    assert_eq!(login.str("apiKey"), new_key);
    let listed = h.send(call(Endpoint::ListApiKeys).key(&new_key)).await;
    assert_eq!(listed.body["keys"][0]["enabled"], false);
}

#[tokio::test]
async fn regenerate_key_needs_the_right_credentials() {
    let h = Harness::new().await;
    let account = h.register().await;
    h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email})))
        .await
        .assert_error(400, "Email and password are required");
    h.send(call(Endpoint::RegenerateKey).json(json!({"email": account.email, "password": "Wrong-Pass-1"})))
        .await
        .assert_error(401, "Invalid credentials");
    assert_eq!(h.send(call(Endpoint::UserData).key(&account.key)).await.status, 200);
}

#[tokio::test]
async fn user_data_describes_the_account_behind_the_master_key() {
    let h = Harness::configured(|c| {
        c.settings.daily_request_limit = 7;
        c.settings.monthly_request_limit = 70;
    })
    .await;
    let account = h.register().await;
    let reply = h.send(call(Endpoint::UserData).key(&account.key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body,
        json!({
            "id": account.id,
            "email": account.email,
            "apiKey": account.key,
            "requestsThisMonth": 0,
            "requestsToday": 0,
            "subscriptionStatus": "free",
            "emailVerified": true,
            "limits": {"dailyLimit": 7, "monthlyLimit": 70, "unlimitedMonthly": false},
            "legacyKey": false,
            "legacyKeysUntil": null,
        })
    );
}

#[tokio::test]
async fn key_routes_refuse_missing_malformed_unknown_and_scoped_keys() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "bot"})).await;
    // A well-formed key with a valid checksum that was never issued, and a revoked one.
    let unknown = shared::domain::keys::ApiKey::generate(shared::domain::keys::KeyKind::Master);
    let revoked = {
        let other = h.register().await;
        let reply =
            h.send(call(Endpoint::RegenerateKey).json(json!({"email": other.email, "password": PASSWORD}))).await;
        assert_eq!(reply.status, 200);
        other.key
    };
    for endpoint in [Endpoint::UserData, Endpoint::ExportData, Endpoint::ListApiKeys] {
        h.send(call(endpoint)).await.assert_error(401, "API key is required");
        h.send(call(endpoint).key("frm_nope")).await.assert_error(401, "Invalid API key");
        h.send(call(endpoint).key(unknown.expose())).await.assert_error(401, "Invalid API key");
        h.send(call(endpoint).key(&revoked)).await.assert_error(401, "Invalid API key");
        h.send(call(endpoint).key(&scoped)).await.assert_error(403, "Use your master API key to manage scoped keys.");
        // The header name is case-insensitive.
        assert_eq!(h.send(call(endpoint).header("X-API-Key", &account.key)).await.status, 200);
    }
}

#[tokio::test]
async fn export_data_holds_everything_but_no_secret() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (id, scoped) = h
        .scoped_key(
            &account.key,
            json!({"name": "table", "foundryUrl": "https://foundry.example.io", "foundryUsername": "gm",
                   "foundryPassword": "Foundry-Secret-9", "monthlyLimit": 50, "scopedClientId": "c1"}),
        )
        .await;
    let reply = h.send(call(Endpoint::ExportData).key(&account.key)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), "no-store");
    let body = &reply.body;
    assert_eq!(body["user"]["id"], account.id.as_str());
    assert_eq!(body["user"]["email"], account.email.as_str());
    assert!(body["user"]["updatedAt"].is_string());
    assert_eq!(body["subscription"], json!({"status": "free", "stripeCustomerId": null, "subscriptionId": null}));
    assert_eq!(body["usage"], json!({"requestsThisMonth": 0, "requestsToday": 0, "lastRequestDate": null}));
    assert_eq!(body["apiAccess"]["keyPrefix"], &account.key[..12]);
    assert!(body["exportDate"].as_str().unwrap().ends_with('Z'));
    let key = &body["scopedKeys"][0];
    assert_eq!(key["id"], id.as_str());
    assert_eq!(key["keyPrefix"], &scoped[..12]);
    assert_eq!(key["hasFoundryCredentials"], true);
    assert_eq!(key["foundryUrl"], "https://foundry.example.io");
    assert_eq!(key["foundryUsername"], "gm");
    assert_eq!(key["monthlyLimit"], 50);
    assert_eq!(key["enabled"], true);
    for secret in [account.key.as_str(), scoped.as_str(), PASSWORD, "Foundry-Secret-9", "argon2"] {
        assert!(!reply.text.contains(secret), "the export leaks {secret}");
    }
}

#[tokio::test]
async fn change_password_checks_in_order_then_voids_reset_tokens_and_notifies() {
    let h = Harness::new().await;
    let account = h.register().await;
    let token = h.forgot_and_read_token(&account.email).await;
    let change = |current: &str, new: &str| {
        call(Endpoint::ChangePassword).key(&account.key).json(json!({"currentPassword": current, "newPassword": new}))
    };
    h.send(call(Endpoint::ChangePassword).key(&account.key).json(json!({"currentPassword": PASSWORD})))
        .await
        .assert_error(400, "Current password and new password are required");
    h.send(change("Wrong-Pass-1", "weak")).await.assert_error(401, "Current password is incorrect");
    h.send(change(PASSWORD, "weak")).await.assert_error(400, "Password must be at least 8 characters long");

    let reply = h.send(change(PASSWORD, "Fresh-Start-77")).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"message": "Password changed successfully"})));

    let login = |password: &str| call(Endpoint::Login).json(json!({"email": account.email, "password": password}));
    h.send(login(PASSWORD)).await.assert_error(401, "Invalid credentials");
    assert_eq!(h.send(login("Fresh-Start-77")).await.status, 200);
    let validate = h.send(call(Endpoint::ValidateResetToken).param("token", &token)).await;
    assert_eq!(validate.body, json!({"valid": false}));
    let mails = h.mails_to(&account.email).await;
    assert_eq!(mails.last().unwrap()["subject"], "Your Foundry REST API password was changed");
    // The key is unchanged.
    assert_eq!(h.send(call(Endpoint::UserData).key(&account.key)).await.status, 200);
}

#[tokio::test]
async fn delete_account_checks_confirmation_and_password() {
    let h = Harness::new().await;
    let account = h.register().await;
    let delete = |body| call(Endpoint::DeleteAccount).key(&account.key).json(body);
    h.send(delete(json!({"password": PASSWORD}))).await.assert_error(400, "Email confirmation required");
    h.send(delete(json!({"confirmEmail": "someone-else@example.io", "password": PASSWORD})))
        .await
        .assert_error(400, "Email confirmation required");
    h.send(delete(json!({"confirmEmail": account.email}))).await.assert_error(400, "Password required");
    h.send(delete(json!({"confirmEmail": account.email, "password": "Wrong-Pass-1"})))
        .await
        .assert_error(401, "Invalid password");
    assert_eq!(h.send(call(Endpoint::UserData).key(&account.key)).await.status, 200);
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn delete_account_leaves_nothing_of_the_account_in_any_table() {
    let h = Harness::new().await;
    let account = h.register().await;
    let (_, scoped) = h.scoped_key(&account.key, json!({"name": "a", "foundryPassword": "Foundry-Secret-1"})).await;
    h.scoped_key(&account.key, json!({"name": "b"})).await;
    h.forgot_and_read_token(&account.email).await;
    let mentions = |items: &[String]| items.iter().filter(|i| i.contains(&account.id)).count();
    assert!(mentions(&h.dump_tables().await) >= 5);

    let reply = h
        .send(
            call(Endpoint::DeleteAccount)
                .key(&account.key)
                .json(json!({"confirmEmail": format!(" {} ", account.email.to_uppercase()), "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({"success": true, "message": "Account successfully deleted"}))
    );

    let items = h.dump_tables().await;
    assert_eq!(mentions(&items), 0, "items of the account remain");
    assert!(!items.iter().any(|i| i.contains(&account.email.to_lowercase())));
    h.send(call(Endpoint::UserData).key(&account.key)).await.assert_error(401, "Invalid API key");
    h.send(call(Endpoint::CreateApiKey).key(&scoped).json(json!({"name": "x"})))
        .await
        .assert_error(401, "Invalid API key");
    h.send(call(Endpoint::Login).json(json!({"email": account.email, "password": PASSWORD})))
        .await
        .assert_error(401, "Invalid credentials");
    // The email is free again.
    h.register_as(&account.email, PASSWORD).await;
}

#[tokio::test]
async fn a_login_arriving_at_a_full_hashing_queue_is_answered_503_with_retry_after() {
    // Given an app whose one hashing worker is held and whose queue is full.
    let h = Harness::configured(|c| {
        c.settings.hash_workers = Some(1);
        c.settings.hash_queue = 1;
    })
    .await;
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release_tx, release) = std::sync::mpsc::channel();
    let release = std::sync::Arc::new(std::sync::Mutex::new(release));
    let running = h.app.hash_pool.hold(&started_tx, &release).unwrap();
    started.recv().unwrap();
    let queued = h.app.hash_pool.hold(&started_tx, &release).unwrap();

    // When a login comes (for an unknown email: the decoy verification uses the pool too).
    let reply = h.send(call(Endpoint::Login).json(json!({"email": unique_email(), "password": PASSWORD}))).await;

    // Then it is shed at once: 503, the contract's body, and when to retry.
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(reply.body, json!({"error": "Service temporarily unavailable", "code": "service_unavailable"}));
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    running.await.unwrap();
    queued.await.unwrap();
    assert_eq!(h.app.hash_pool.peak_running(), 1);
}

#[tokio::test]
async fn of_two_concurrent_password_changes_only_one_is_written() {
    let h = Harness::new().await;
    let account = h.register().await;
    let change = |new: &str| {
        call(Endpoint::ChangePassword).key(&account.key).json(json!({"currentPassword": PASSWORD, "newPassword": new}))
    };
    // Both prove the same current password; the second write finds another hash than the
    // one it checked, and is refused as a wrong current password.
    let (first, second) = tokio::join!(h.send(change("Changed-Once-11")), h.send(change("Changed-Twice-22")));
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{} / {}", first.text, second.text);
    let winner = if first.status == 200 { "Changed-Once-11" } else { "Changed-Twice-22" };
    let login = |password: &str| call(Endpoint::Login).json(json!({"email": account.email, "password": password}));
    assert_eq!(h.send(login(winner)).await.status, 200);
}
