//! An embedded store on redb with the DynamoDB store's semantics: every operation is one
//! serialisable write transaction that checks the same conditions and changes all of its
//! items or none; reads see every committed write.
//!
//! One file per port, as in `aws::dynamo`: `users` (`UserStore`), `keys`
//! (`KeyIndex`), `tokens` (`ResetTokens`), `scoped` (`ScopedKeys`), `throttle`
//! (`Throttle`), `metering` (`Metering`) and `activity` (`ActivityLog`); this file holds the store, its tables,
//! transactions and record encoding.

mod activity;
mod keys;
mod metering;
mod scoped;
mod throttle;
mod tokens;
mod users;

use crate::domain::error::{Chain, PortError};
use crate::domain::model::User;
use crate::domain::ports::PortResult;
use crate::records::{user_pk, ScopedKeyItem, TokenItem, UserItem};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Accounts, email reservations and the key index, by `pk` (as in the users table).
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// Scoped keys by (user id, key id).
const SCOPED_KEYS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("scoped_keys");
/// Reset tokens by digest.
const RESET_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("reset_tokens");
/// Throttle tallies (`<key>#<window>` -> hits), rate limits (`<key>` -> theoretical
/// arrival time, epoch milliseconds) and blocks (`<key>` -> epoch seconds).
const COUNTERS: TableDefinition<&str, u32> = TableDefinition::new("throttle_counters");
const RATES: TableDefinition<&str, i64> = TableDefinition::new("throttle_rates");
/// The throttle secret (one row).
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
const BLOCKS: TableDefinition<&str, i64> = TableDefinition::new("throttle_blocks");
/// Security events by (user id, time-ordered sort key).
const ACTIVITY: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("activity");

pub struct EmbeddedStore {
    db: Arc<Database>,
    /// The throttle secret, read (or created) on first use and kept for the process.
    throttle_secret: tokio::sync::OnceCell<zeroize::Zeroizing<Vec<u8>>>,
    /// Set by a metering commit that is not on disk yet; see [`FLUSH_INTERVAL`].
    unflushed: Arc<AtomicBool>,
}

/// Counting a request commits without flushing the disk (`Durability::None`): a flush per
/// request made the local server's counted requests forty times slower than its reads
/// (profiled under wrk: the `fsync` of every commit). A thread makes them durable within
/// this interval (and the store when it closes), so a crash loses at most this much of
/// the counts, as the relay's own counter, flushed every 500 ms, would. Everything else
/// (accounts, keys, tokens, throttles) is flushed at every commit.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Makes the metering commits durable every [`FLUSH_INTERVAL`] while the store is open.
fn spawn_flusher(db: std::sync::Weak<Database>, unflushed: Arc<AtomicBool>) {
    std::thread::spawn(move || loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let Some(db) = db.upgrade() else {
            return;
        };
        flush(&db, &unflushed);
    });
}

/// An empty commit that flushes the disk, when a metering commit may not be on it yet
/// (a durable commit makes every commit before it durable).
fn flush(db: &Database, unflushed: &AtomicBool) {
    if !unflushed.swap(false, Ordering::AcqRel) {
        return;
    }
    let committed = db.begin_write().map_err(redb::Error::from).and_then(|txn| txn.commit().map_err(redb::Error::from));
    if let Err(error) = committed {
        unflushed.store(true, Ordering::Release);
        tracing::warn!(error = %Chain(&error), "flushing the counted requests to disk failed; trying again");
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        flush(&self.db, &self.unflushed);
    }
}

fn failed(e: impl std::fmt::Display) -> PortError {
    PortError::Other(format!("embedded store: {e}"))
}

/// Records are MessagePack maps (field names kept, so optional and added fields read as
/// they do in DynamoDB). Profiled: decoding them as JSON, byte arrays as lists of numbers,
/// was the largest part of an authenticated read.
fn encode<T: Serialize>(value: &T) -> PortResult<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(failed)
}

/// Reads a record in either format: databases written before MessagePack hold JSON
/// objects, which start with `{`; a MessagePack map never does (that byte is an integer).
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> PortResult<T> {
    if bytes.first() == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(failed)
    } else {
        rmp_serde::from_slice(bytes).map_err(failed)
    }
}

/// Reads and writes records inside one write transaction.
struct Tx<'a>(&'a WriteTransaction);

impl Tx<'_> {
    fn get<T: DeserializeOwned>(&self, pk: &str) -> PortResult<Option<T>> {
        let table = self.0.open_table(ACCOUNTS).map_err(failed)?;
        let value = table.get(pk).map_err(failed)?;
        value.map(|v| decode(v.value())).transpose()
    }

    fn put<T: Serialize>(&self, pk: &str, value: &T) -> PortResult<()> {
        let mut table = self.0.open_table(ACCOUNTS).map_err(failed)?;
        table.insert(pk, encode(value)?.as_slice()).map_err(failed)?;
        Ok(())
    }

    fn exists(&self, pk: &str) -> PortResult<bool> {
        let table = self.0.open_table(ACCOUNTS).map_err(failed)?;
        let found = table.get(pk).map_err(failed)?.is_some();
        Ok(found)
    }

    fn remove(&self, pk: &str) -> PortResult<()> {
        let mut table = self.0.open_table(ACCOUNTS).map_err(failed)?;
        table.remove(pk).map_err(failed)?;
        Ok(())
    }

    /// The account as stored, if it still is what `user` says about its keys and token.
    fn current(&self, user: &User) -> PortResult<UserItem> {
        let stored: UserItem = self.get(&user_pk(&user.id))?.ok_or(PortError::Conflict)?;
        let same = stored.master_key_digest == user.master_key.digest.0
            && stored.key_generation == user.key_generation
            && stored.reset_token_digest == user.reset_token_digest;
        if same {
            Ok(stored)
        } else {
            Err(PortError::Conflict)
        }
    }

    fn token(&self, digest: &str) -> PortResult<Option<TokenItem>> {
        let table = self.0.open_table(RESET_TOKENS).map_err(failed)?;
        let value = table.get(digest).map_err(failed)?;
        value.map(|v| decode(v.value())).transpose()
    }

    fn put_token(&self, token: &TokenItem) -> PortResult<()> {
        let mut table = self.0.open_table(RESET_TOKENS).map_err(failed)?;
        table.insert(token.token_hash.as_str(), encode(token)?.as_slice()).map_err(failed)?;
        Ok(())
    }

    fn remove_token(&self, digest: &str) -> PortResult<()> {
        let mut table = self.0.open_table(RESET_TOKENS).map_err(failed)?;
        table.remove(digest).map_err(failed)?;
        Ok(())
    }

    fn scoped(&self, user_id: &str, key_id: &str) -> PortResult<Option<ScopedKeyItem>> {
        let table = self.0.open_table(SCOPED_KEYS).map_err(failed)?;
        let value = table.get((user_id, key_id)).map_err(failed)?;
        value.map(|v| decode(v.value())).transpose()
    }

    fn put_scoped(&self, item: &ScopedKeyItem) -> PortResult<()> {
        let mut table = self.0.open_table(SCOPED_KEYS).map_err(failed)?;
        table.insert((item.user_id.as_str(), item.key_id.as_str()), encode(item)?.as_slice()).map_err(failed)?;
        Ok(())
    }

    fn remove_scoped(&self, user_id: &str, key_id: &str) -> PortResult<()> {
        let mut table = self.0.open_table(SCOPED_KEYS).map_err(failed)?;
        table.remove((user_id, key_id)).map_err(failed)?;
        Ok(())
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> PortResult<Self> {
        let db = Database::create(path).map_err(|e| PortError::Other(format!("{}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(failed)?;
        txn.open_table(ACCOUNTS).map_err(failed)?;
        txn.open_table(SCOPED_KEYS).map_err(failed)?;
        txn.open_table(RESET_TOKENS).map_err(failed)?;
        txn.open_table(COUNTERS).map_err(failed)?;
        txn.open_table(RATES).map_err(failed)?;
        txn.open_table(SECRETS).map_err(failed)?;
        txn.open_table(BLOCKS).map_err(failed)?;
        txn.open_table(ACTIVITY).map_err(failed)?;
        txn.commit().map_err(failed)?;
        let db = Arc::new(db);
        let unflushed = Arc::new(AtomicBool::new(false));
        spawn_flusher(Arc::downgrade(&db), Arc::clone(&unflushed));
        Ok(Self { db, throttle_secret: tokio::sync::OnceCell::new(), unflushed })
    }

    /// Runs `change` in one write transaction, off the async executor. An error aborts
    /// the transaction: nothing of it is written.
    async fn write<T, F>(&self, change: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> PortResult<T> + Send + 'static,
    {
        self.write_with(Durability::Immediate, change).await
    }

    /// As [`Self::write`], with the durability given (`None`: see [`FLUSH_INTERVAL`]).
    async fn write_with<T, F>(&self, durability: Durability, change: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> PortResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let unflushed = Arc::clone(&self.unflushed);
        tokio::task::spawn_blocking(move || {
            let mut txn = db.begin_write().map_err(failed)?;
            txn.set_durability(durability).map_err(failed)?;
            if matches!(durability, Durability::None) {
                unflushed.store(true, Ordering::Release);
            }
            let out = change(&Tx(&txn))?;
            txn.commit().map_err(failed)?;
            Ok(out)
        })
        .await
        .map_err(failed)?
    }

    /// Runs `query` in one read transaction, right here: a redb read takes microseconds
    /// and never waits for a writer (MVCC), so handing it to the blocking pool (two thread
    /// switches) cost more than the read itself (profiled: most of user-data's time).
    async fn read<T, F>(&self, query: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> PortResult<T> + Send + 'static,
    {
        query(&self.db.begin_read().map_err(failed)?)
    }

    async fn get<T: DeserializeOwned + Send + 'static>(&self, pk: String) -> PortResult<Option<T>> {
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS).map_err(failed)?;
            let value = table.get(pk.as_str()).map_err(failed)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn user_item() -> UserItem {
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 18, 46, 46).single().unwrap_or_default();
        UserItem {
            pk: user_pk("u1"),
            id: "u1".into(),
            email: "gm@example.com".into(),
            email_normalised: "gm@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            master_key_digest: "ab".repeat(32),
            master_key_ciphertext: vec![0, 1, 2, 254, 255],
            master_key_prefix: "frm_abcdefgh".into(),
            master_key_created_at: at,
            key_generation: 3,
            reset_token_digest: None,
            email_verified: false,
            verify_token_digest: Some("cd".repeat(32)),
            scoped_key_count: 2,
            subscription_status: "free".to_owned(),
            stripe_customer_id: None,
            subscription_id: None,
            usage: [("month:2026-11".to_owned(), 7)].into_iter().collect(),
            last_request_at: Some(at),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn records_round_trip_as_messagepack() -> PortResult<()> {
        let item = user_item();
        let bytes = encode(&item)?;
        assert_ne!(bytes.first(), Some(&b'{'));
        assert_eq!(serde_json::to_value(decode::<UserItem>(&bytes)?).ok(), serde_json::to_value(&item).ok());
        Ok(())
    }

    #[test]
    fn records_written_as_json_by_earlier_versions_still_read() -> PortResult<()> {
        let item = user_item();
        let json = serde_json::to_vec(&item).map_err(failed)?;
        assert_eq!(serde_json::to_value(decode::<UserItem>(&json)?).ok(), serde_json::to_value(&item).ok());
        Ok(())
    }
}
