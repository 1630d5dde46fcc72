//! DynamoDB as the store. Every multi-item change is one transaction; every read that
//! decides access is strongly consistent.
//!
//! Users table (`pk`): `USER#<id>` the account, `EMAIL#<normalised>` the email reservation,
//! `KEY#<sha256>` the key index. Scoped keys table: `userId` + `keyId`. Reset tokens
//! table: `tokenHash`, with `expiresAt` (epoch seconds) as its TTL attribute.

use super::sdk_error;
use crate::domain::error::PortError;
use crate::domain::keys::{KeyDigest, KeyKind};
use crate::domain::model::{KeyEntry, ScopedKey, StoredMasterKey, Usage, User};
use crate::domain::token::StoredResetToken;
use crate::ports::{KeyIndex, PortResult, ResetTokens, ScopedKeys, UserStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// The three table names.
#[derive(Debug, Clone)]
pub struct Tables {
    pub users: String,
    pub scoped_keys: String,
    pub reset_tokens: String,
}

pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserItem {
    pk: String,
    id: String,
    email: String,
    email_normalised: String,
    password_hash: String,
    master_key_digest: String,
    #[serde(with = "serde_bytes")]
    master_key_ciphertext: Vec<u8>,
    master_key_prefix: String,
    master_key_created_at: DateTime<Utc>,
    key_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reset_token_digest: Option<String>,
    subscription_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    #[serde(default)]
    requests_this_month: u64,
    #[serde(default)]
    requests_today: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_request_date: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailItem {
    pk: String,
    user_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyItem {
    pk: String,
    user_id: String,
    kind: KeyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scoped_key_id: Option<String>,
    generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    enabled: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopedKeyItem {
    user_id: String,
    key_id: String,
    name: String,
    key_digest: String,
    key_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scoped_client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scoped_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monthly_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    foundry_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    foundry_username: Option<String>,
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    foundry_password_ciphertext: Option<Vec<u8>>,
    enabled: bool,
    generation: u64,
    #[serde(default)]
    requests_this_month: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenItem {
    token_hash: String,
    user_id: String,
    /// Epoch seconds: also the table's TTL attribute.
    expires_at: i64,
}

fn user_pk(id: &str) -> String {
    format!("USER#{id}")
}

fn email_pk(normalised: &str) -> String {
    format!("EMAIL#{normalised}")
}

fn key_pk(digest: &KeyDigest) -> String {
    format!("KEY#{}", digest.0)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn time(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn to_item<T: Serialize>(value: &T) -> PortResult<Item> {
    serde_dynamo::to_item(value).map_err(PortError::other)
}

fn from_item<T: DeserializeOwned>(item: Item) -> PortResult<T> {
    serde_dynamo::from_item(item).map_err(PortError::other)
}

impl From<&User> for UserItem {
    fn from(u: &User) -> Self {
        Self {
            pk: user_pk(&u.id),
            id: u.id.clone(),
            email: u.email.clone(),
            email_normalised: u.email_normalised.clone(),
            password_hash: u.password_hash.clone(),
            master_key_digest: u.master_key.digest.0.clone(),
            master_key_ciphertext: u.master_key.ciphertext.clone(),
            master_key_prefix: u.master_key.prefix.clone(),
            master_key_created_at: u.master_key.created_at,
            key_generation: u.key_generation,
            reset_token_digest: u.reset_token_digest.clone(),
            subscription_status: u.subscription_status.clone(),
            stripe_customer_id: u.stripe_customer_id.clone(),
            subscription_id: u.subscription_id.clone(),
            requests_this_month: u.usage.requests_this_month,
            requests_today: u.usage.requests_today,
            last_request_date: u.usage.last_request_date.clone(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<UserItem> for User {
    fn from(i: UserItem) -> Self {
        Self {
            id: i.id,
            email: i.email,
            email_normalised: i.email_normalised,
            password_hash: i.password_hash,
            master_key: StoredMasterKey {
                digest: KeyDigest(i.master_key_digest),
                ciphertext: i.master_key_ciphertext,
                prefix: i.master_key_prefix,
                created_at: i.master_key_created_at,
            },
            key_generation: i.key_generation,
            reset_token_digest: i.reset_token_digest,
            subscription_status: i.subscription_status,
            stripe_customer_id: i.stripe_customer_id,
            subscription_id: i.subscription_id,
            usage: Usage {
                requests_this_month: i.requests_this_month,
                requests_today: i.requests_today,
                last_request_date: i.last_request_date,
            },
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

impl From<&KeyEntry> for KeyItem {
    fn from(e: &KeyEntry) -> Self {
        Self {
            pk: key_pk(&e.digest),
            user_id: e.user_id.clone(),
            kind: e.kind,
            scoped_key_id: e.scoped_key_id.clone(),
            generation: e.generation,
            expires_at: e.expires_at,
            enabled: e.enabled,
        }
    }
}

impl From<&ScopedKey> for ScopedKeyItem {
    fn from(k: &ScopedKey) -> Self {
        Self {
            user_id: k.user_id.clone(),
            key_id: k.id.clone(),
            name: k.name.clone(),
            key_digest: k.digest.0.clone(),
            key_prefix: k.prefix.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            monthly_limit: k.monthly_limit,
            expires_at: k.expires_at,
            foundry_url: k.foundry_url.clone(),
            foundry_username: k.foundry_username.clone(),
            foundry_password_ciphertext: k.foundry_password_ciphertext.clone(),
            enabled: k.enabled,
            generation: k.generation,
            requests_this_month: k.requests_this_month,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

impl From<ScopedKeyItem> for ScopedKey {
    fn from(i: ScopedKeyItem) -> Self {
        Self {
            id: i.key_id,
            user_id: i.user_id,
            name: i.name,
            digest: KeyDigest(i.key_digest),
            prefix: i.key_prefix,
            scoped_client_id: i.scoped_client_id,
            scoped_user_id: i.scoped_user_id,
            monthly_limit: i.monthly_limit,
            expires_at: i.expires_at,
            foundry_url: i.foundry_url,
            foundry_username: i.foundry_username,
            foundry_password_ciphertext: i.foundry_password_ciphertext,
            enabled: i.enabled,
            generation: i.generation,
            requests_this_month: i.requests_this_month,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// The condition that `user`'s reset token is still what we read: no concurrent
/// forgot-password, reset or password change slipped in between.
fn reset_guard(user: &User, values: &mut Item) -> &'static str {
    match &user.reset_token_digest {
        Some(digest) => {
            values.insert(":readToken".into(), s(digest));
            "attribute_exists(pk) AND resetTokenDigest = :readToken"
        }
        None => "attribute_exists(pk) AND attribute_not_exists(resetTokenDigest)",
    }
}

fn put(table: &str, item: Item, condition: Option<&str>) -> PortResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(PortError::other)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete(table: &str, key: Item, condition: Option<&str>, values: Option<Item>) -> PortResult<TransactWriteItem> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_values(values)
        .build()
        .map_err(PortError::other)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn update(table: &str, key: Item, expression: &str, condition: &str, values: Item) -> PortResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .condition_expression(condition)
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(PortError::other)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn condition_check(table: &str, key: Item, condition: &str, values: Item) -> PortResult<TransactWriteItem> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(PortError::other)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn pk(value: String) -> Item {
    HashMap::from([("pk".to_owned(), s(value))])
}

fn scoped_key_key(user_id: &str, key_id: &str) -> Item {
    HashMap::from([("userId".to_owned(), s(user_id)), ("keyId".to_owned(), s(key_id))])
}

fn token_key(digest: &str) -> Item {
    HashMap::from([("tokenHash".to_owned(), s(digest))])
}

enum Cancelled {
    Condition,
    Contention,
}

fn cancellation(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(e) = err.as_service_error()? else {
        return None;
    };
    let codes: Vec<&str> = e.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Some(Cancelled::Condition)
    } else if codes.contains(&"TransactionConflict") {
        Some(Cancelled::Contention)
    } else {
        None
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }

    /// One all-or-nothing write. A failed condition is `Conflict`; contention with another
    /// transaction on the same items is retried with jittered back-off.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> PortResult<()> {
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            match cancellation(&err) {
                Some(Cancelled::Condition) => return Err(PortError::Conflict),
                Some(Cancelled::Contention) if attempt < ATTEMPTS => {
                    let millis = rand::thread_rng().gen_range(10..=40) * u64::from(attempt);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                }
                _ => return Err(sdk_error(err)),
            }
        }
        Err(PortError::Unavailable("transaction contention persisted".into()))
    }

    async fn get(&self, table: &str, key: Item) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.item)
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> PortResult<()> {
        let table = &self.tables.users;
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let key = KeyItem {
            pk: key_pk(&user.master_key.digest),
            user_id: user.id.clone(),
            kind: KeyKind::Master,
            scoped_key_id: None,
            generation: user.key_generation,
            expires_at: None,
            enabled: true,
        };
        let absent = Some("attribute_not_exists(pk)");
        self.transact(vec![
            put(table, to_item(&email)?, absent)?,
            put(table, to_item(&UserItem::from(user))?, absent)?,
            put(table, to_item(&key)?, absent)?,
        ])
        .await
    }

    async fn user(&self, id: &str) -> PortResult<Option<User>> {
        self.get(&self.tables.users, pk(user_pk(id)))
            .await?
            .map(|item| from_item::<UserItem>(item).map(User::from))
            .transpose()
    }

    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>> {
        let Some(item) = self.get(&self.tables.users, pk(email_pk(email_normalised))).await? else {
            return Ok(None);
        };
        let reservation: EmailItem = from_item(item)?;
        self.user(&reservation.user_id).await
    }

    async fn replace_master_key(&self, user: &User, new: &StoredMasterKey, now: DateTime<Utc>) -> PortResult<()> {
        let table = &self.tables.users;
        let values = HashMap::from([
            (":newDigest".to_owned(), s(&new.digest.0)),
            (":newCiphertext".to_owned(), AttributeValue::B(new.ciphertext.clone().into())),
            (":newPrefix".to_owned(), s(&new.prefix)),
            (":now".to_owned(), time(now)),
            (":one".to_owned(), n(1)),
            (":oldDigest".to_owned(), s(&user.master_key.digest.0)),
            (":oldGeneration".to_owned(), n(user.key_generation)),
        ]);
        let entry = KeyItem {
            pk: key_pk(&new.digest),
            user_id: user.id.clone(),
            kind: KeyKind::Master,
            scoped_key_id: None,
            generation: user.key_generation + 1,
            expires_at: None,
            enabled: true,
        };
        self.transact(vec![
            update(
                table,
                pk(user_pk(&user.id)),
                "SET masterKeyDigest = :newDigest, masterKeyCiphertext = :newCiphertext, \
                 masterKeyPrefix = :newPrefix, masterKeyCreatedAt = :now, updatedAt = :now, \
                 keyGeneration = keyGeneration + :one",
                "masterKeyDigest = :oldDigest AND keyGeneration = :oldGeneration",
                values,
            )?,
            delete(table, pk(key_pk(&user.master_key.digest)), None, None)?,
            put(table, to_item(&entry)?, Some("attribute_not_exists(pk)"))?,
        ])
        .await
    }

    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()> {
        let mut values = HashMap::from([(":hash".to_owned(), s(password_hash)), (":now".to_owned(), time(now))]);
        let condition = reset_guard(user, &mut values);
        let mut items = vec![update(
            &self.tables.users,
            pk(user_pk(&user.id)),
            "SET passwordHash = :hash, updatedAt = :now REMOVE resetTokenDigest",
            condition,
            values,
        )?];
        if let Some(digest) = &user.reset_token_digest {
            items.push(delete(&self.tables.reset_tokens, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> PortResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .set_key(Some(pk(user_pk(user_id))))
            .update_expression("SET passwordHash = :new")
            .condition_expression("passwordHash = :old")
            .expression_attribute_values(":new", s(new))
            .expression_attribute_values(":old", s(old))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Err(PortError::Conflict)
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn delete_user(&self, user: &User) -> PortResult<()> {
        let table = &self.tables.users;
        let mut values = HashMap::from([(":digest".to_owned(), s(&user.master_key.digest.0))]);
        let guard = reset_guard(user, &mut values);
        let condition = format!("{guard} AND masterKeyDigest = :digest");
        let mut items = vec![
            delete(table, pk(user_pk(&user.id)), Some(&condition), Some(values))?,
            delete(table, pk(email_pk(&user.email_normalised)), None, None)?,
            delete(table, pk(key_pk(&user.master_key.digest)), None, None)?,
        ];
        if let Some(digest) = &user.reset_token_digest {
            items.push(delete(&self.tables.reset_tokens, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }
}

#[async_trait]
impl KeyIndex for DynamoStore {
    async fn key_entry(&self, digest: &KeyDigest) -> PortResult<Option<KeyEntry>> {
        let Some(item) = self.get(&self.tables.users, pk(key_pk(digest))).await? else {
            return Ok(None);
        };
        let item: KeyItem = from_item(item)?;
        Ok(Some(KeyEntry {
            digest: digest.clone(),
            user_id: item.user_id,
            kind: item.kind,
            scoped_key_id: item.scoped_key_id,
            generation: item.generation,
            expires_at: item.expires_at,
            enabled: item.enabled,
        }))
    }
}

#[async_trait]
impl ResetTokens for DynamoStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let mut values = HashMap::from([(":new".to_owned(), s(&token.digest))]);
        let condition = reset_guard(user, &mut values);
        let item = TokenItem {
            token_hash: token.digest.clone(),
            user_id: user.id.clone(),
            expires_at: token.expires_at.timestamp(),
        };
        let mut items = vec![
            update(&self.tables.users, pk(user_pk(&user.id)), "SET resetTokenDigest = :new", condition, values)?,
            put(&self.tables.reset_tokens, to_item(&item)?, Some("attribute_not_exists(tokenHash)"))?,
        ];
        if let Some(previous) = &user.reset_token_digest {
            items.push(delete(&self.tables.reset_tokens, token_key(previous), None, None)?);
        }
        self.transact(items).await
    }

    async fn reset_token(&self, digest: &str) -> PortResult<Option<StoredResetToken>> {
        let Some(item) = self.get(&self.tables.reset_tokens, token_key(digest)).await? else {
            return Ok(None);
        };
        let item: TokenItem = from_item(item)?;
        let expires_at = Utc
            .timestamp_opt(item.expires_at, 0)
            .single()
            .ok_or_else(|| PortError::Other("reset token with an impossible expiry".into()))?;
        Ok(Some(StoredResetToken { digest: item.token_hash, user_id: item.user_id, expires_at }))
    }

    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> PortResult<()> {
        let values = HashMap::from([
            (":hash".to_owned(), s(password_hash)),
            (":now".to_owned(), time(now)),
            (":digest".to_owned(), s(&token.digest)),
        ]);
        self.transact(vec![
            delete(&self.tables.reset_tokens, token_key(&token.digest), Some("attribute_exists(tokenHash)"), None)?,
            update(
                &self.tables.users,
                pk(user_pk(&token.user_id)),
                "SET passwordHash = :hash, updatedAt = :now REMOVE resetTokenDigest",
                "resetTokenDigest = :digest",
                values,
            )?,
        ])
        .await
    }
}

#[async_trait]
impl ScopedKeys for DynamoStore {
    async fn create_scoped_key(&self, user: &User, key: &ScopedKey) -> PortResult<()> {
        self.transact(vec![
            condition_check(
                &self.tables.users,
                pk(user_pk(&user.id)),
                "keyGeneration = :generation",
                HashMap::from([(":generation".to_owned(), n(user.key_generation))]),
            )?,
            put(&self.tables.scoped_keys, to_item(&ScopedKeyItem::from(key))?, Some("attribute_not_exists(keyId)"))?,
            put(&self.tables.users, to_item(&KeyItem::from(&key.entry()))?, Some("attribute_not_exists(pk)"))?,
        ])
        .await
    }

    async fn scoped_keys(&self, user_id: &str) -> PortResult<Vec<ScopedKey>> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.scoped_keys)
                .key_condition_expression("userId = :user")
                .expression_attribute_values(":user", s(user_id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                keys.push(ScopedKey::from(from_item::<ScopedKeyItem>(item)?));
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(keys),
            }
        }
    }

    async fn scoped_key(&self, user_id: &str, key_id: &str) -> PortResult<Option<ScopedKey>> {
        self.get(&self.tables.scoped_keys, scoped_key_key(user_id, key_id))
            .await?
            .map(|item| from_item::<ScopedKeyItem>(item).map(ScopedKey::from))
            .transpose()
    }

    async fn delete_scoped_key(&self, key: &ScopedKey) -> PortResult<()> {
        self.transact(vec![
            delete(
                &self.tables.scoped_keys,
                scoped_key_key(&key.user_id, &key.id),
                Some("attribute_exists(keyId)"),
                None,
            )?,
            delete(&self.tables.users, pk(key_pk(&key.digest)), None, None)?,
        ])
        .await
    }

    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()> {
        self.transact(vec![
            update(
                &self.tables.scoped_keys,
                scoped_key_key(&key.user_id, &key.id),
                "SET enabled = :disabled, updatedAt = :now",
                "attribute_exists(keyId)",
                HashMap::from([(":disabled".to_owned(), AttributeValue::Bool(false)), (":now".to_owned(), time(now))]),
            )?,
            delete(&self.tables.users, pk(key_pk(&key.digest)), None, None)?,
        ])
        .await
    }
}
