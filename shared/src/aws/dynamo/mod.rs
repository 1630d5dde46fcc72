//! DynamoDB as the store. Every multi-item change is one transaction; every read that
//! decides access is strongly consistent.
//!
//! Four tables ([`Tables`]). Users table (`pk`): `USER#<id>` the account, `METER#<id>` its
//! meter (counters and their guards, see `records::MeterItem`), `EMAIL#<normalised>` the
//! email reservation, `KEY#<sha256>` the key index. Scoped keys table: `userId` + `keyId`.
//! Reset tokens table: `tokenHash`, with `expiresAt` (epoch seconds) as its TTL attribute.
//! Throttle table (`pk`, TTL `expiresAt`): rate limits, tallies, blocks and the throttle
//! secret. Activity table: `userId` + `at`, TTL `expiresAt`: the security events.
//!
//! One file per port: `users` (`UserStore`), `keys` (`KeyIndex`), `tokens`
//! (`ResetTokens`), `scoped` (`ScopedKeys`), `throttle` (`Throttle`), `metering`
//! (`Metering`, the hot path of every relay request) and `activity` (`ActivityLog`); this
//! file holds the store, its transactions and the item helpers they share.

mod activity;
mod keys;
pub mod metering;
mod scoped;
mod throttle;
mod tokens;
mod users;

use crate::aws::failure::sdk_error;
use crate::domain::error::PortError;
use crate::domain::keys::KeyDigest;
use crate::domain::model::User;
use crate::domain::ports::PortResult;
use crate::records::{meter_pk, MeterItem};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use zeroize::Zeroizing;

type Item = HashMap<String, AttributeValue>;

/// The five table names; a function that uses a table has it (see `config::Needs`).
pub use crate::config::Tables;

pub struct DynamoStore {
    client: Client,
    tables: Tables,
    /// The throttle secret, read (or created) on first use and kept for the process.
    throttle_secret: tokio::sync::OnceCell<Zeroizing<Vec<u8>>>,
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

    fn activity_table(&self) -> PortResult<&str> {
        self.tables.activity().map_err(PortError::other)
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
    /// `verified`: the same write also marks the account's email verified on its meter (a
    /// transaction may change an item once only).
    fn meter_guards(
        &self,
        user: &User,
        digest: &KeyDigest,
        generation: u64,
        verified: bool,
    ) -> PortResult<TransactWriteItem> {
        let usage = to_item(&MeterItem::from(user))?.remove("usage").unwrap_or(AttributeValue::M(HashMap::new()));
        let values = HashMap::from([
            (":digest".to_owned(), s(&digest.0)),
            (":generation".to_owned(), n(generation)),
            (":subscription".to_owned(), s(user.subscription_status.as_str())),
            (":usage".to_owned(), usage),
        ]);
        let set = "SET masterKeyDigest = :digest, keyGeneration = :generation, \
                   subscriptionStatus = if_not_exists(subscriptionStatus, :subscription), \
                   #usage = if_not_exists(#usage, :usage)";
        let mut update = Update::builder()
            .table_name(self.users_table()?)
            .set_key(Some(pk(meter_pk(&user.id))))
            .update_expression(if verified { format!("{set} REMOVE #verified") } else { set.to_owned() })
            .expression_attribute_names("#usage", "usage");
        if verified {
            update = update.expression_attribute_names("#verified", crate::records::EMAIL_VERIFIED);
        }
        let update = update.set_expression_attribute_values(Some(values)).build().map_err(PortError::other)?;
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

/// The most items one DynamoDB transaction writes.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

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

/// The SDK's retries switched off, for a write that must not be applied twice (counting,
/// taking a count back, giving a throttle attempt back): an ambiguous failure is not resent.
fn no_retries() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Config::builder().retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
}
