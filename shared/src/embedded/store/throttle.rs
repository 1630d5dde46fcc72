//! Rate limits, tallies, blocks and the throttle secret.

use super::{failed, EmbeddedStore, BLOCKS, COUNTERS, RATES, SECRETS};
use crate::domain::limits::{fixed_window, Admission, Limit, Verdict};
use crate::domain::ports::{PortResult, Throttle};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::ReadableTable;

#[async_trait]
impl Throttle for EmbeddedStore {
    async fn admit(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<Verdict> {
        let key = key.to_owned();
        let now_ms = now.timestamp_millis();
        self.write(move |tx| {
            let mut table = tx.0.open_table(RATES).map_err(failed)?;
            let tat = table.get(key.as_str()).map_err(failed)?.map(|v| v.value());
            match limit.decide(tat, now_ms) {
                Admission::Admit { tat } => {
                    table.insert(key.as_str(), tat).map_err(failed)?;
                    Ok(limit.verdict(true, tat, now_ms))
                }
                Admission::Refuse => Ok(limit.verdict(false, tat.unwrap_or(now_ms), now_ms)),
            }
        })
        .await
    }

    async fn give_back(&self, key: &str, limit: Limit, _now: DateTime<Utc>) -> PortResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            let mut table = tx.0.open_table(RATES).map_err(failed)?;
            let tat = table.get(key.as_str()).map_err(failed)?.map(|v| v.value());
            if let Some(tat) = tat {
                table.insert(key.as_str(), tat - limit.interval_ms()).map_err(failed)?;
            }
            Ok(())
        })
        .await
    }

    async fn reset(&self, key: &str) -> PortResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.0.open_table(RATES).map_err(failed)?.remove(key.as_str()).map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn tally(&self, key: &str, window: std::time::Duration, now: DateTime<Utc>) -> PortResult<u32> {
        let counter = format!("{key}#{}", fixed_window(window, now).0);
        self.write(move |tx| {
            let mut table = tx.0.open_table(COUNTERS).map_err(failed)?;
            let hits = table.get(counter.as_str()).map_err(failed)?.map_or(0, |v| v.value()).saturating_add(1);
            table.insert(counter.as_str(), hits).map_err(failed)?;
            Ok(hits)
        })
        .await
    }

    async fn block(&self, key: &str, until: DateTime<Utc>) -> PortResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            let mut table = tx.0.open_table(BLOCKS).map_err(failed)?;
            let current = table.get(key.as_str()).map_err(failed)?.map(|v| v.value());
            if current.is_none_or(|secs| secs < until.timestamp()) {
                table.insert(key.as_str(), until.timestamp()).map_err(failed)?;
            }
            Ok(())
        })
        .await
    }

    async fn unblock(&self, key: &str) -> PortResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.0.open_table(BLOCKS).map_err(failed)?.remove(key.as_str()).map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn blocked_until(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<DateTime<Utc>>> {
        let key = key.to_owned();
        let until = self
            .read(move |txn| {
                let table = txn.open_table(BLOCKS).map_err(failed)?;
                let secs = table.get(key.as_str()).map_err(failed)?.map(|v| v.value());
                Ok(secs)
            })
            .await?;
        Ok(until.and_then(|secs| DateTime::from_timestamp(secs, 0)).filter(|until| *until > now))
    }

    async fn throttle_secret(&self) -> PortResult<zeroize::Zeroizing<Vec<u8>>> {
        self.throttle_secret.get_or_try_init(|| self.read_or_create_throttle_secret()).await.cloned()
    }
}

impl EmbeddedStore {
    async fn read_or_create_throttle_secret(&self) -> PortResult<zeroize::Zeroizing<Vec<u8>>> {
        self.write(|tx| {
            let mut table = tx.0.open_table(SECRETS).map_err(failed)?;
            let stored = table.get("throttle").map_err(failed)?.map(|v| zeroize::Zeroizing::new(v.value().to_vec()));
            if let Some(secret) = stored {
                return Ok(secret);
            }
            let mut fresh = zeroize::Zeroizing::new(vec![0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, fresh.as_mut_slice());
            table.insert("throttle", fresh.as_slice()).map_err(failed)?;
            Ok(fresh)
        })
        .await
    }
}
