//! Each account's security events by (user id, sort key): time-ordered, so the newest are
//! read from the end of the account's range.

use super::{decode, encode, failed, EmbeddedStore, ACTIVITY};
use crate::domain::audit::Event;
use crate::domain::ports::{ActivityLog, PortResult};
use crate::records::ActivityItem;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::ReadableTable;

/// Above every sort key (they start with the year's digits): the end of an account's range.
const AFTER_EVERY_EVENT: &str = "~";

#[async_trait]
impl ActivityLog for EmbeddedStore {
    async fn append_activity(&self, event: &Event) -> PortResult<()> {
        let item = ActivityItem::from(event);
        let now = event.at.timestamp();
        self.write(move |tx| {
            let mut table = tx.0.open_table(ACTIVITY).map_err(failed)?;
            // What a TTL would have deleted by now goes first: the oldest of the account's range.
            let mut expired = Vec::new();
            for row in
                table.range((item.user_id.as_str(), "")..=(item.user_id.as_str(), AFTER_EVERY_EVENT)).map_err(failed)?
            {
                let (key, value) = row.map_err(failed)?;
                if decode::<ActivityItem>(value.value())?.expires_at > now {
                    break;
                }
                expired.push(key.value().1.to_owned());
            }
            for at in expired {
                table.remove((item.user_id.as_str(), at.as_str())).map_err(failed)?;
            }
            table.insert((item.user_id.as_str(), item.at.as_str()), encode(&item)?.as_slice()).map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn activity(&self, user_id: &str, limit: usize, now: DateTime<Utc>) -> PortResult<Vec<Event>> {
        let user_id = user_id.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ACTIVITY).map_err(failed)?;
            let mut events = Vec::new();
            let range = table.range((user_id.as_str(), "")..=(user_id.as_str(), AFTER_EVERY_EVENT)).map_err(failed)?;
            for row in range.rev().take(limit) {
                let (_, value) = row.map_err(failed)?;
                if let Some(event) = decode::<ActivityItem>(value.value())?.into_event(now) {
                    events.push(event);
                }
            }
            Ok(events)
        })
        .await
    }

    async fn delete_activity(&self, user_id: &str) -> PortResult<()> {
        let user_id = user_id.to_owned();
        self.write(move |tx| {
            let mut table = tx.0.open_table(ACTIVITY).map_err(failed)?;
            let mut keys = Vec::new();
            for row in table.range((user_id.as_str(), "")..=(user_id.as_str(), AFTER_EVERY_EVENT)).map_err(failed)? {
                keys.push(row.map_err(failed)?.0.value().1.to_owned());
            }
            for at in keys {
                table.remove((user_id.as_str(), at.as_str())).map_err(failed)?;
            }
            Ok(())
        })
        .await
    }
}
