//! The activity table: each account's security events, `userId` + `at` (time-ordered),
//! with `expiresAt` (epoch seconds) as its TTL attribute.

use super::{backoff, from_item, s, sdk_error, to_item, DynamoStore, Item, WRITE_ATTEMPTS};
use crate::domain::audit::Event;
use crate::domain::error::PortError;
use crate::domain::ports::{ActivityLog, PortResult};
use crate::records::ActivityItem;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use chrono::{DateTime, Utc};

/// The most requests one `BatchWriteItem` takes.
const BATCH_WRITE_ITEMS: usize = 25;

#[async_trait]
impl ActivityLog for DynamoStore {
    async fn append_activity(&self, event: &Event) -> PortResult<()> {
        // The sort key is unique (it ends in a random id): no condition needed.
        self.client
            .put_item()
            .table_name(self.activity_table()?)
            .set_item(Some(to_item(&ActivityItem::from(event))?))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn activity(&self, user_id: &str, limit: usize, now: DateTime<Utc>) -> PortResult<Vec<Event>> {
        let mut events = Vec::new();
        for item in self.query_activity(user_id, limit, false).await? {
            if let Some(event) = from_item::<ActivityItem>(item)?.into_event(now) {
                events.push(event);
            }
        }
        Ok(events)
    }

    async fn delete_activity(&self, user_id: &str) -> PortResult<()> {
        let table = self.activity_table()?;
        let keys = self.query_activity(user_id, usize::MAX, true).await?;
        for chunk in keys.chunks(BATCH_WRITE_ITEMS) {
            let mut requests = chunk
                .iter()
                .map(|key| {
                    let delete =
                        DeleteRequest::builder().set_key(Some(key.clone())).build().map_err(PortError::other)?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<PortResult<Vec<_>>>()?;
            let mut attempt = 1;
            loop {
                let out =
                    self.client.batch_write_item().request_items(table, requests).send().await.map_err(sdk_error)?;
                // What DynamoDB did not get to this time (throughput), sent again.
                requests = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt >= WRITE_ATTEMPTS {
                    return Err(PortError::Unavailable("batch deletes kept coming back unprocessed".into()));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
        Ok(())
    }
}

impl DynamoStore {
    /// The account's newest items first, at most `limit` (consistent reads, page by
    /// page); with `keys_only`, just their keys.
    async fn query_activity(&self, user_id: &str, limit: usize, keys_only: bool) -> PortResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let page = i32::try_from(limit - items.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(self.activity_table()?)
                .key_condition_expression("userId = :user")
                .expression_attribute_values(":user", s(user_id))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(page)
                .set_exclusive_start_key(start.take());
            if keys_only {
                query = query.projection_expression("userId, #at").expression_attribute_names("#at", "at");
            }
            let out = query.send().await.map_err(sdk_error)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }
}
