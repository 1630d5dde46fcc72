//! The throttle table: rate limits, tallies and blocks; and the throttle secret, which is
//! kept in the users table, not in the table it protects (whoever may write throttle
//! counters may not read the key that links them to emails and addresses).

use super::{conditional, n, no_retries, pk, retry_conflicts, s, sdk_error, DynamoStore, Item, Written};
use crate::domain::error::PortError;
use crate::domain::limits::{fixed_window, Limit, Verdict};
use crate::domain::ports::{PortResult, Throttle};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use std::time::Duration;
use zeroize::Zeroizing;

/// The users table's item that holds the throttle secret (the template lets the functions
/// that throttle create this one item of the users table, by its key).
const THROTTLE_SECRET: &str = "CONFIG#throttle-secret";

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
        // Not idempotent: sent once. After an ambiguous failure the attempt stays spent
        // (failing closed) instead of perhaps being given back twice.
        conditional(|| request.clone().customize().config_override(no_retries()).send()).await?;
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
        let item = self.get(self.users_table()?, pk(THROTTLE_SECRET.to_owned())).await?;
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
            .table_name(self.users_table()?)
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
