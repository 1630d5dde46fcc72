//! DynamoDB as the store. Every multi-item change is one transaction; every read that
//! decides access is strongly consistent.
//!
//! Users table (`pk`): `USER#<id>` the account, `METER#<id>` its meter (counters and their
//! guards, see `records::MeterItem`), `EMAIL#<normalised>` the email reservation,
//! `KEY#<sha256>` the key index. Scoped keys table: `userId` + `keyId`. Reset tokens
//! table: `tokenHash`, with `expiresAt` (epoch seconds) as its TTL attribute.
//! Metering, the hot path of every relay request, is in [`metering`].

mod metering;
pub use metering::LEFTOVERS_KEPT;

use super::sdk_error;
use crate::domain::error::PortError;
use crate::domain::keys::KeyDigest;
use crate::domain::model::{ImportedAccount, KeyEntry, ScopedKey, StoredMasterKey, User};
use crate::domain::ports::{KeyIndex, PortResult, ResetTokens, ScopedKeys, Throttle, UserStore};
use crate::domain::throttle::{fixed_window, Limit, Verdict};
use crate::domain::token::StoredResetToken;
use crate::records::{
    email_pk, key_pk, meter_pk, user_pk, EmailItem, KeyItem, MeterItem, ScopedKeyItem, TokenItem, UserItem,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use zeroize::Zeroizing;

type Item = HashMap<String, AttributeValue>;

/// The four table names; a function that uses a table has it (see `config::Needs`).
pub use crate::config::Tables;

pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// The throttle secret, read (or created) on first use and kept for the process.
    throttle_secret: tokio::sync::OnceCell<Zeroizing<Vec<u8>>>,
}

/// The throttle table's item that holds the throttle secret (no TTL: it stays).
const THROTTLE_SECRET: &str = "secret:throttle";

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
    /// A condition did not hold.
    Condition,
    /// Another transaction or write held an item, or the table throttled: nothing was
    /// applied, and trying again may succeed.
    Contention,
}

fn cancellation(err: &SdkError<TransactWriteItemsError, HttpResponse>) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(e) = err.as_service_error()? else {
        return None;
    };
    let codes: Vec<&str> = e.cancellation_reasons().iter().filter_map(|r| r.code()).collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Some(Cancelled::Condition)
    } else if codes.iter().any(|c| matches!(*c, "TransactionConflict" | "ThrottlingError")) {
        Some(Cancelled::Contention)
    } else {
        None
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables, throttle_secret: tokio::sync::OnceCell::new() }
    }

    // A table the function was configured without (it does not use it): a call fails
    // closed, and the error names the variable.
    fn users_table(&self) -> PortResult<&str> {
        self.tables.users().map_err(PortError::other)
    }

    fn scoped_keys_table(&self) -> PortResult<&str> {
        self.tables.scoped_keys().map_err(PortError::other)
    }

    fn reset_tokens_table(&self) -> PortResult<&str> {
        self.tables.reset_tokens().map_err(PortError::other)
    }

    fn throttle_table(&self) -> PortResult<&str> {
        self.tables.throttle().map_err(PortError::other)
    }

    /// One all-or-nothing write. A failed condition is `Conflict`; a cancellation for
    /// contention (another transaction on the same items, throttling) is tried again with
    /// jittered back-off, then answered `Unavailable`. Each attempt carries its own
    /// `ClientRequestToken`, so that the SDK's resending of an attempt whose answer was
    /// lost after it committed is answered with that success, not applied twice.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> PortResult<()> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            match cancellation(&err) {
                Some(Cancelled::Condition) => return Err(PortError::Conflict),
                Some(Cancelled::Contention) if attempt < WRITE_ATTEMPTS => tokio::time::sleep(backoff(attempt)).await,
                Some(Cancelled::Contention) => break,
                None => return Err(sdk_error(err)),
            }
        }
        crate::domain::metrics::count(crate::domain::metrics::Counter::DependencyFailures(
            crate::domain::metrics::Service::DynamoDb,
        ));
        Err(PortError::Unavailable("transaction contention persisted".into()))
    }

    /// The meter's guards set to `digest` and `generation`, in the transaction that changes
    /// them on the account. A meter not written yet (an account older than meters) is
    /// made here from what was read of the account.
    fn meter_guards(&self, user: &User, digest: &KeyDigest, generation: u64) -> PortResult<TransactWriteItem> {
        let usage = to_item(&MeterItem::from(user))?.remove("usage").unwrap_or(AttributeValue::M(HashMap::new()));
        let values = HashMap::from([
            (":digest".to_owned(), s(&digest.0)),
            (":generation".to_owned(), n(generation)),
            (":subscription".to_owned(), s(user.subscription_status.as_str())),
            (":usage".to_owned(), usage),
        ]);
        let update = Update::builder()
            .table_name(self.users_table()?)
            .set_key(Some(pk(meter_pk(&user.id))))
            .update_expression(
                "SET masterKeyDigest = :digest, keyGeneration = :generation, \
                 subscriptionStatus = if_not_exists(subscriptionStatus, :subscription), \
                 #usage = if_not_exists(#usage, :usage)",
            )
            .expression_attribute_names("#usage", "usage")
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(PortError::other)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Strongly consistent reads of up to 100 items of one table in one call (more when
    /// DynamoDB leaves some unprocessed), in no particular order.
    async fn batch_get(&self, table: &str, keys: Vec<Item>) -> PortResult<Vec<Item>> {
        let mut found = Vec::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(PortError::other)?,
        );
        let mut attempt = 1;
        while let Some(request) = pending.take() {
            let out = self.client.batch_get_item().request_items(table, request).send().await.map_err(sdk_error)?;
            found.extend(out.responses.unwrap_or_default().remove(table).unwrap_or_default());
            // Keys DynamoDB did not get to this time (throughput), asked for again.
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(table));
            if pending.is_some() {
                if attempt >= WRITE_ATTEMPTS {
                    return Err(PortError::Unavailable("batch reads kept coming back unprocessed".into()));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        Ok(found)
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
        let table = self.users_table()?;
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let key = KeyItem::master(&user.id, &user.master_key.digest, user.key_generation);
        let absent = Some("attribute_not_exists(pk)");
        self.transact(vec![
            put(table, to_item(&email)?, absent)?,
            put(table, to_item(&UserItem::from(user))?, absent)?,
            put(table, to_item(&MeterItem::from(user))?, absent)?,
            put(table, to_item(&key)?, absent)?,
        ])
        .await
    }

    /// The account and its meter, in one consistent batch read: the counters are the meter's
    /// (an account written before meters existed keeps its own until its first request).
    async fn user(&self, id: &str) -> PortResult<Option<User>> {
        let mut items = self.batch_get(self.users_table()?, vec![pk(user_pk(id)), pk(meter_pk(id))]).await?;
        let meter_key = meter_pk(id);
        let (meter, account): (Vec<Item>, Vec<Item>) =
            items.drain(..).partition(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&meter_key));
        let Some(account) = account.into_iter().next() else {
            return Ok(None);
        };
        let mut user = User::from(from_item::<UserItem>(account)?);
        if let Some(meter) = meter.into_iter().next() {
            user.usage = from_item::<MeterItem>(meter)?.into_meter(id).usage;
        }
        Ok(Some(user))
    }

    /// Two reads whether or not the email has an account, so that a login's timing does
    /// not tell (the second read of an unknown email looks up an id no account has).
    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>> {
        let reservation = self.get(self.users_table()?, pk(email_pk(email_normalised))).await?;
        let user_id = reservation.map(from_item::<EmailItem>).transpose()?.map(|r| r.user_id);
        let user = self.user(user_id.as_deref().unwrap_or(NO_ACCOUNT)).await?;
        Ok(user.filter(|_| user_id.is_some()))
    }

    async fn replace_master_key(&self, user: &User, new: &StoredMasterKey, now: DateTime<Utc>) -> PortResult<()> {
        let table = self.users_table()?;
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
            self.meter_guards(user, &new.digest, user.key_generation + 1)?,
        ])
        .await
    }

    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()> {
        let mut values = HashMap::from([(":hash".to_owned(), s(password_hash)), (":now".to_owned(), time(now))]);
        let condition = reset_guard(user, &mut values);
        let mut items = vec![update(
            self.users_table()?,
            pk(user_pk(&user.id)),
            "SET passwordHash = :hash, updatedAt = :now REMOVE resetTokenDigest",
            condition,
            values,
        )?];
        if let Some(digest) = &user.reset_token_digest {
            items.push(delete(self.reset_tokens_table()?, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> PortResult<()> {
        let request = self
            .client
            .update_item()
            .table_name(self.users_table()?)
            .set_key(Some(pk(user_pk(user_id))))
            .update_expression("SET passwordHash = :new")
            .condition_expression("passwordHash = :old")
            .expression_attribute_values(":new", s(new))
            .expression_attribute_values(":old", s(old));
        match conditional(|| request.clone().send()).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(PortError::Conflict),
        }
    }

    async fn revoke_scoped_keys(&self, user: &User, now: DateTime<Utc>) -> PortResult<()> {
        let next = user.key_generation + 1;
        let values = HashMap::from([
            (":next".to_owned(), n(next)),
            (":now".to_owned(), time(now)),
            (":digest".to_owned(), s(&user.master_key.digest.0)),
            (":generation".to_owned(), n(user.key_generation)),
        ]);
        self.transact(vec![
            update(
                self.users_table()?,
                pk(user_pk(&user.id)),
                "SET keyGeneration = :next, updatedAt = :now",
                "masterKeyDigest = :digest AND keyGeneration = :generation",
                values,
            )?,
            self.meter_guards(user, &user.master_key.digest, next)?,
        ])
        .await
    }

    async fn delete_user(&self, user: &User) -> PortResult<()> {
        let table = self.users_table()?;
        let mut values = HashMap::from([(":digest".to_owned(), s(&user.master_key.digest.0))]);
        let guard = reset_guard(user, &mut values);
        let condition = format!("{guard} AND masterKeyDigest = :digest");
        let mut items = vec![
            delete(table, pk(user_pk(&user.id)), Some(&condition), Some(values))?,
            delete(table, pk(email_pk(&user.email_normalised)), None, None)?,
            delete(table, pk(key_pk(&user.master_key.digest)), None, None)?,
            delete(table, pk(meter_pk(&user.id)), None, None)?,
        ];
        if let Some(digest) = &user.reset_token_digest {
            items.push(delete(self.reset_tokens_table()?, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }

    /// One transaction: the email reservation, the account, every index entry and every
    /// scoped key, each on condition that it is not there yet. At most
    /// [`MAX_TRANSACTION_ITEMS`] items: 48 scoped keys.
    async fn import_account(&self, account: &ImportedAccount) -> PortResult<()> {
        let table = self.users_table()?;
        let user = &account.user;
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let absent = Some("attribute_not_exists(pk)");
        let mut items = vec![
            put(table, to_item(&email)?, absent)?,
            put(table, to_item(&UserItem::from(user))?, absent)?,
            put(table, to_item(&MeterItem::from(user))?, absent)?,
        ];
        for entry in account.entries() {
            items.push(put(table, to_item(&KeyItem::from(&entry))?, absent)?);
        }
        for (key, _) in &account.scoped_keys {
            let item = to_item(&ScopedKeyItem::from(key))?;
            items.push(put(self.scoped_keys_table()?, item, Some("attribute_not_exists(keyId)"))?);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(PortError::Other(format!(
                "an account with {} scoped keys does not fit one transaction",
                account.scoped_keys.len()
            )));
        }
        self.transact(items).await
    }
}

/// The most items one DynamoDB transaction writes.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

#[async_trait]
impl KeyIndex for DynamoStore {
    async fn key_entry(&self, digest: &KeyDigest) -> PortResult<Option<KeyEntry>> {
        let Some(item) = self.get(self.users_table()?, pk(key_pk(digest))).await? else {
            return Ok(None);
        };
        Ok(Some(from_item::<KeyItem>(item)?.into_entry(digest)))
    }

    async fn key_entries(&self, digests: &[KeyDigest]) -> PortResult<Vec<Option<KeyEntry>>> {
        let mut found: HashMap<String, KeyEntry> = HashMap::new();
        for chunk in digests.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|d| pk(key_pk(d))).collect();
            for item in self.batch_get(self.users_table()?, keys).await? {
                let item = from_item::<KeyItem>(item)?;
                let digest = KeyDigest(item.pk.trim_start_matches("KEY#").to_owned());
                found.insert(digest.0.clone(), item.into_entry(&digest));
            }
        }
        Ok(digests.iter().map(|d| found.remove(&d.0)).collect())
    }
}

#[async_trait]
impl ResetTokens for DynamoStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let mut values = HashMap::from([(":new".to_owned(), s(&token.digest))]);
        let condition = reset_guard(user, &mut values);
        let item = TokenItem::from_stored(token);
        let mut items = vec![
            update(self.users_table()?, pk(user_pk(&user.id)), "SET resetTokenDigest = :new", condition, values)?,
            put(self.reset_tokens_table()?, to_item(&item)?, Some("attribute_not_exists(tokenHash)"))?,
        ];
        if let Some(previous) = &user.reset_token_digest {
            items.push(delete(self.reset_tokens_table()?, token_key(previous), None, None)?);
        }
        self.transact(items).await
    }

    async fn reset_token(&self, digest: &str) -> PortResult<Option<StoredResetToken>> {
        let Some(item) = self.get(self.reset_tokens_table()?, token_key(digest)).await? else {
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
            delete(self.reset_tokens_table()?, token_key(&token.digest), Some("attribute_exists(tokenHash)"), None)?,
            update(
                self.users_table()?,
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
    async fn create_scoped_key(&self, user: &User, key: &ScopedKey, cap: u64) -> PortResult<()> {
        self.transact(vec![
            update(
                self.users_table()?,
                pk(user_pk(&user.id)),
                "SET scopedKeyCount = if_not_exists(scopedKeyCount, :zero) + :one",
                "keyGeneration = :generation AND (attribute_not_exists(scopedKeyCount) OR scopedKeyCount < :cap)",
                HashMap::from([
                    (":generation".to_owned(), n(user.key_generation)),
                    (":cap".to_owned(), n(cap)),
                    (":zero".to_owned(), n(0)),
                    (":one".to_owned(), n(1)),
                ]),
            )?,
            put(self.scoped_keys_table()?, to_item(&ScopedKeyItem::from(key))?, Some("attribute_not_exists(keyId)"))?,
            put(self.users_table()?, to_item(&KeyItem::from(&key.entry()))?, Some("attribute_not_exists(pk)"))?,
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
                .table_name(self.scoped_keys_table()?)
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
        self.get(self.scoped_keys_table()?, scoped_key_key(user_id, key_id))
            .await?
            .map(|item| from_item::<ScopedKeyItem>(item).map(ScopedKey::from))
            .transpose()
    }

    async fn delete_scoped_key(&self, key: &ScopedKey) -> PortResult<()> {
        self.transact(vec![
            delete(
                self.scoped_keys_table()?,
                scoped_key_key(&key.user_id, &key.id),
                Some("attribute_exists(keyId)"),
                None,
            )?,
            delete(self.users_table()?, pk(key_pk(&key.digest)), None, None)?,
            update(
                self.users_table()?,
                pk(user_pk(&key.user_id)),
                "SET scopedKeyCount = if_not_exists(scopedKeyCount, :one) - :one",
                "attribute_exists(pk)",
                HashMap::from([(":one".to_owned(), n(1))]),
            )?,
        ])
        .await
    }

    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()> {
        self.transact(vec![
            update(
                self.scoped_keys_table()?,
                scoped_key_key(&key.user_id, &key.id),
                "SET enabled = :disabled, updatedAt = :now",
                "attribute_exists(keyId)",
                HashMap::from([(":disabled".to_owned(), AttributeValue::Bool(false)), (":now".to_owned(), time(now))]),
            )?,
            delete(self.users_table()?, pk(key_pk(&key.digest)), None, None)?,
        ])
        .await
    }
}

/// Throttle items (table with key `pk` and TTL attribute `expiresAt`): a rate limit per
/// key, `<key>` with `tat` (its theoretical arrival time, epoch milliseconds); a tally per
/// key and window, `<key>#<window index>` with `hits`; a block per key, `<key>` with
/// `blockedUntil` (epoch seconds). TTL only cleans up: expiry is decided in code.
#[async_trait]
impl Throttle for DynamoStore {
    async fn admit(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<Verdict> {
        let now_ms = now.timestamp_millis();
        let interval = limit.interval_ms();
        let up_to = limit.admits_up_to(now_ms);
        // The TAT is gone from the table once it lies in the past.
        let expires = |tat_ms: i64| n(u64::try_from(tat_ms / 1000 + 1).unwrap_or(0));
        // Two single-item conditional writes cover GCRA's cases without a read: an idle
        // key (TAT absent or past) starts from now; a busy one moves its TAT on by one
        // interval while that stays within the burst. A refusal changes nothing.
        for _ in 0..4 {
            let idle = self
                .client
                .update_item()
                .table_name(self.throttle_table()?)
                .key("pk", s(key))
                .update_expression("SET tat = :tat, expiresAt = :expires")
                .condition_expression("attribute_not_exists(tat) OR tat <= :now")
                .expression_attribute_values(":tat", n(u64::try_from(now_ms + interval).unwrap_or(0)))
                .expression_attribute_values(":expires", expires(now_ms + interval))
                .expression_attribute_values(":now", n(u64::try_from(now_ms).unwrap_or(0)));
            if let Written::Done(_) = conditional(|| idle.clone().send()).await? {
                return Ok(limit.verdict(true, now_ms + interval, now_ms));
            }
            let busy = self
                .client
                .update_item()
                .table_name(self.throttle_table()?)
                .key("pk", s(key))
                .update_expression("SET tat = tat + :interval, expiresAt = :expires")
                .condition_expression("tat > :now AND tat <= :upTo")
                .expression_attribute_values(":interval", n(u64::try_from(interval).unwrap_or(0)))
                .expression_attribute_values(":expires", expires(now_ms + limit.span_ms()))
                .expression_attribute_values(":now", n(u64::try_from(now_ms).unwrap_or(0)))
                .expression_attribute_values(":upTo", n(u64::try_from(up_to).unwrap_or(0)))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            match conditional(|| busy.clone().send()).await? {
                Written::Done(out) => {
                    let tat = number(out.attributes(), "tat").unwrap_or(now_ms + interval);
                    return Ok(limit.verdict(true, tat, now_ms));
                }
                Written::Refused(old) => match number(old.as_ref(), "tat") {
                    Some(tat) if tat > up_to => return Ok(limit.verdict(false, tat, now_ms)),
                    // Given back or reset between the two writes: idle again.
                    _ => continue,
                },
            }
        }
        Err(PortError::Unavailable(format!("rate limit {key} kept changing")))
    }

    async fn give_back(&self, key: &str, limit: Limit, _now: DateTime<Utc>) -> PortResult<()> {
        let request = self
            .client
            .update_item()
            .table_name(self.throttle_table()?)
            .key("pk", s(key))
            .update_expression("SET tat = tat - :interval")
            .condition_expression("attribute_exists(tat)")
            .expression_attribute_values(":interval", n(u64::try_from(limit.interval_ms()).unwrap_or(0)));
        conditional(|| request.clone().send()).await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        let request = self.client.delete_item().table_name(self.throttle_table()?).key("pk", s(key));
        retry_conflicts(|| request.clone().send()).await.map_err(sdk_error)?;
        Ok(())
    }

    async fn tally(&self, key: &str, window: Duration, now: DateTime<Utc>) -> PortResult<u32> {
        let (index, reset_at) = fixed_window(window, now);
        let request = self
            .client
            .update_item()
            .table_name(self.throttle_table()?)
            .key("pk", s(format!("{key}#{index}")))
            .update_expression("SET expiresAt = :expires ADD hits :one")
            .expression_attribute_values(":expires", AttributeValue::N(reset_at.timestamp().to_string()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew);
        let out = retry_conflicts(|| request.clone().send()).await.map_err(sdk_error)?;
        Ok(number(out.attributes(), "hits").and_then(|h| u32::try_from(h).ok()).unwrap_or(u32::MAX))
    }

    async fn block(&self, key: &str, until: DateTime<Utc>) -> PortResult<()> {
        let until = AttributeValue::N(until.timestamp().to_string());
        let request = self
            .client
            .update_item()
            .table_name(self.throttle_table()?)
            .key("pk", s(key))
            .update_expression("SET blockedUntil = :until, expiresAt = :until")
            .condition_expression("attribute_not_exists(blockedUntil) OR blockedUntil < :until")
            .expression_attribute_values(":until", until);
        // Refused: a longer block is already in place.
        conditional(|| request.clone().send()).await?;
        Ok(())
    }

    async fn unblock(&self, key: &str) -> PortResult<()> {
        self.reset(key).await
    }

    async fn blocked_until(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<DateTime<Utc>>> {
        let Some(item) = self.get(self.throttle_table()?, pk(key.to_owned())).await? else {
            return Ok(None);
        };
        let until = number(Some(&item), "blockedUntil").and_then(|secs| DateTime::from_timestamp(secs, 0));
        Ok(until.filter(|until| *until > now))
    }

    async fn throttle_secret(&self) -> PortResult<Zeroizing<Vec<u8>>> {
        self.throttle_secret.get_or_try_init(|| self.read_or_create_throttle_secret()).await.cloned()
    }
}

impl DynamoStore {
    async fn stored_throttle_secret(&self) -> PortResult<Option<Zeroizing<Vec<u8>>>> {
        let item = self.get(self.throttle_table()?, pk(THROTTLE_SECRET.to_owned())).await?;
        let secret = item.as_ref().and_then(|i| i.get("secret")).and_then(|v| v.as_b().ok());
        Ok(secret.map(|blob| Zeroizing::new(blob.as_ref().to_vec())))
    }

    async fn read_or_create_throttle_secret(&self) -> PortResult<Zeroizing<Vec<u8>>> {
        if let Some(secret) = self.stored_throttle_secret().await? {
            return Ok(secret);
        }
        let mut fresh = Zeroizing::new(vec![0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, fresh.as_mut_slice());
        let put = self
            .client
            .put_item()
            .table_name(self.throttle_table()?)
            .item("pk", s(THROTTLE_SECRET))
            .item("secret", AttributeValue::B(fresh.to_vec().into()))
            .condition_expression("attribute_not_exists(pk)");
        match retry_conflicts(|| put.clone().send()).await {
            Ok(_) => Ok(fresh),
            // Another instance created it first: use that one.
            Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                self.stored_throttle_secret().await?.ok_or_else(|| PortError::Other("throttle secret vanished".into()))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }
}

/// A number attribute of an item.
fn number(item: Option<&Item>, name: &str) -> Option<i64> {
    item?.get(name)?.as_n().ok()?.parse().ok()
}

/// The outcome of a conditional single-item write.
enum Written<T> {
    Done(T),
    /// The condition did not hold; the item as it was, when asked for.
    Refused(Option<Item>),
}

/// Sends a conditional single-item write (retrying transaction conflicts); a failed
/// condition is an answer, not an error.
async fn conditional<T, F, Fut>(send: F) -> PortResult<Written<T>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<UpdateItemError, HttpResponse>>>,
{
    match retry_conflicts(send).await {
        Ok(out) => Ok(Written::Done(out)),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(Written::Refused(e.item().cloned())),
            _ => Err(sdk_error(err)),
        },
    }
}

/// How many times a write is tried while a transaction holds its item, or while the
/// table throttles it: neither applied anything, so trying again is safe.
const WRITE_ATTEMPTS: u32 = 12;

/// Jittered exponential back-off before attempt `attempt + 1`: up to 20 ms, 40 ms, ...,
/// at most 1.28 s (about 8 s over every attempt, within the functions' time-outs).
fn backoff(attempt: u32) -> Duration {
    let ceiling = 10u64 << attempt.min(7);
    Duration::from_millis(rand::thread_rng().gen_range(ceiling / 2..=ceiling))
}

/// Sends a single-item request again while DynamoDB answers that an in-flight
/// transaction holds the item (`TransactionConflictException`) or that it throttles: in
/// both cases nothing was applied. (The SDK's own retries cover transport faults.)
async fn retry_conflicts<T, E, F, Fut>(send: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(err) if attempt < WRITE_ATTEMPTS && not_applied(&err) => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An answer that says the request changed nothing and may be sent again.
fn not_applied<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    const CODES: &[&str] = &[
        "TransactionConflictException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ];
    err.code().is_some_and(|code| CODES.contains(&code))
}
