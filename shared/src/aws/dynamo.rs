//! DynamoDB as the store. Every multi-item change is one transaction; every read that
//! decides access is strongly consistent.
//!
//! Users table (`pk`): `USER#<id>` the account, `EMAIL#<normalised>` the email reservation,
//! `KEY#<sha256>` the key index. Scoped keys table: `userId` + `keyId`. Reset tokens
//! table: `tokenHash`, with `expiresAt` (epoch seconds) as its TTL attribute.

use super::sdk_error;
use crate::domain::error::PortError;
use crate::domain::keys::KeyDigest;
use crate::domain::keys::KeyKind;
use crate::domain::model::{day_period, month_period, previous_periods};
use crate::domain::model::{KeyEntry, ScopedKey, StoredMasterKey, User};
use crate::domain::throttle::{Limit, Verdict};
use crate::domain::token::StoredResetToken;
use crate::ports::{KeyIndex, Metered, Metering, PortResult, ResetTokens, ScopedKeys, Throttle, UserStore};
use crate::records::{email_pk, key_pk, user_pk, EmailItem, KeyItem, ScopedKeyItem, TokenItem, UserItem};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// The three table names.
#[derive(Debug, Clone)]
pub struct Tables {
    pub users: String,
    pub scoped_keys: String,
    pub reset_tokens: String,
    pub throttle: String,
}

impl From<&crate::config::Config> for Tables {
    fn from(config: &crate::config::Config) -> Self {
        Self {
            users: config.users_table.clone(),
            scoped_keys: config.scoped_keys_table.clone(),
            reset_tokens: config.reset_tokens_table.clone(),
            throttle: config.throttle_table.clone(),
        }
    }
}

pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

/// An account id that no account has (ids are UUIDs).
const NO_ACCOUNT: &str = "none";

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
        let key = KeyItem::master(&user.id, &user.master_key.digest, user.key_generation);
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

    /// Two reads whether or not the email has an account, so that a login's timing does
    /// not tell (the second read of an unknown email looks up an id no account has).
    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>> {
        let reservation = self.get(&self.tables.users, pk(email_pk(email_normalised))).await?;
        let user_id = reservation.map(from_item::<EmailItem>).transpose()?.map(|r| r.user_id);
        let user = self.user(user_id.as_deref().unwrap_or(NO_ACCOUNT)).await?;
        Ok(user.filter(|_| user_id.is_some()))
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
        let entry = KeyItem::master(&user.id, &new.digest, user.key_generation + 1);
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
        Ok(Some(from_item::<KeyItem>(item)?.into_entry(digest)))
    }
}

#[async_trait]
impl ResetTokens for DynamoStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let mut values = HashMap::from([(":new".to_owned(), s(&token.digest))]);
        let condition = reset_guard(user, &mut values);
        let item = TokenItem::from_stored(token);
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
        from_item::<TokenItem>(item)?
            .into_stored()
            .map(Some)
            .ok_or_else(|| PortError::Other("reset token with an impossible expiry".into()))
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

/// Throttle items (table with key `pk` and TTL attribute `expiresAt`): a counter per key
/// and window, `<key>#<window index>` with `hits`; a block per key, `<key>` with
/// `blockedUntil` (epoch seconds). TTL only cleans up: expiry is decided in code.
#[async_trait]
impl Throttle for DynamoStore {
    async fn hit(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<Verdict> {
        let (index, reset_at) = limit.window_at(now);
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.throttle)
            .key("pk", s(format!("{key}#{index}")))
            .update_expression("SET expiresAt = :expires ADD hits :one")
            .condition_expression("attribute_not_exists(hits) OR hits < :max")
            .expression_attribute_values(":expires", AttributeValue::N(reset_at.timestamp().to_string()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(u64::from(limit.max)))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let count = out
                    .attributes()
                    .and_then(|a| a.get("hits"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(limit.max);
                Ok(Verdict { allowed: true, count, reset_at })
            }
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Ok(Verdict { allowed: false, count: limit.max, reset_at })
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn reset(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<()> {
        let (index, _) = limit.window_at(now);
        self.client
            .delete_item()
            .table_name(&self.tables.throttle)
            .key("pk", s(format!("{key}#{index}")))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn block(&self, key: &str, until: DateTime<Utc>) -> PortResult<()> {
        let until = AttributeValue::N(until.timestamp().to_string());
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.throttle)
            .key("pk", s(key))
            .update_expression("SET blockedUntil = :until, expiresAt = :until")
            .condition_expression("attribute_not_exists(blockedUntil) OR blockedUntil < :until")
            .expression_attribute_values(":until", until)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A longer block is already in place.
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                Ok(())
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn unblock(&self, key: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.throttle)
            .key("pk", s(key))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn blocked_until(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<DateTime<Utc>>> {
        let Some(item) = self.get(&self.tables.throttle, pk(key.to_owned())).await? else {
            return Ok(None);
        };
        let until = item
            .get("blockedUntil")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        Ok(until.filter(|until| *until > now))
    }
}

#[async_trait]
impl Metering for DynamoStore {
    async fn count_request(&self, request: &Metered<'_>) -> PortResult<bool> {
        let (day, month) = (day_period(request.now), month_period(request.now));
        let (previous_day, previous_month) = previous_periods(request.now);
        let mut conditions = vec!["(attribute_not_exists(#usage.#day) OR #usage.#day < :dailyLimit)"];
        let mut values = HashMap::from([
            (":zero".to_owned(), n(0)),
            (":one".to_owned(), n(1)),
            (":now".to_owned(), time(request.now)),
            (":dailyLimit".to_owned(), n(request.daily_limit)),
        ]);
        if let Some(limit) = request.monthly_limit {
            conditions.push("(attribute_not_exists(#usage.#month) OR #usage.#month < :monthlyLimit)");
            values.insert(":monthlyLimit".into(), n(limit));
        }
        // The key must still be the account's when the count lands.
        match request.entry.kind {
            KeyKind::Master => {
                conditions.push("masterKeyDigest = :digest");
                values.insert(":digest".into(), s(&request.entry.digest.0));
            }
            KeyKind::Scoped => {
                conditions.push("keyGeneration = :generation");
                values.insert(":generation".into(), n(request.entry.generation));
            }
        }
        let account = Update::builder()
            .table_name(&self.tables.users)
            .set_key(Some(pk(user_pk(&request.user.id))))
            .update_expression(
                "SET #usage.#day = if_not_exists(#usage.#day, :zero) + :one, \
                 #usage.#month = if_not_exists(#usage.#month, :zero) + :one, lastRequestAt = :now \
                 REMOVE #usage.#previousDay, #usage.#previousMonth",
            )
            .condition_expression(conditions.join(" AND "))
            .set_expression_attribute_names(Some(HashMap::from([
                ("#usage".to_owned(), "usage".to_owned()),
                ("#day".to_owned(), day),
                ("#month".to_owned(), month.clone()),
                ("#previousDay".to_owned(), previous_day),
                ("#previousMonth".to_owned(), previous_month.clone()),
            ])))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(PortError::other)?;
        let mut items = vec![TransactWriteItem::builder().update(account).build()];
        if request.entry.kind == KeyKind::Scoped {
            let mut condition = "attribute_exists(pk)".to_owned();
            let mut values = HashMap::from([(":zero".to_owned(), n(0)), (":one".to_owned(), n(1))]);
            if let Some(limit) = request.entry.monthly_limit {
                condition.push_str(" AND (attribute_not_exists(#usage.#month) OR #usage.#month < :keyLimit)");
                values.insert(":keyLimit".into(), n(limit));
            }
            let key = Update::builder()
                .table_name(&self.tables.users)
                .set_key(Some(pk(key_pk(&request.entry.digest))))
                .update_expression(
                    "SET #usage.#month = if_not_exists(#usage.#month, :zero) + :one REMOVE #usage.#previousMonth",
                )
                .condition_expression(condition)
                .set_expression_attribute_names(Some(HashMap::from([
                    ("#usage".to_owned(), "usage".to_owned()),
                    ("#month".to_owned(), month),
                    ("#previousMonth".to_owned(), previous_month),
                ])))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(PortError::other)?;
            items.push(TransactWriteItem::builder().update(key).build());
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(PortError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
