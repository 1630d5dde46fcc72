//! An embedded store on redb with the DynamoDB store's semantics: every operation is one
//! serialisable write transaction that checks the same conditions and changes all of its
//! items or none; reads see every committed write.

use crate::domain::error::PortError;
use crate::domain::keys::KeyDigest;
use crate::domain::keys::KeyKind;
use crate::domain::meter::{refusal, verdict, AccountMeter, Meter, Metered, Refusal};
use crate::domain::model::{ImportedAccount, KeyEntry, ScopedKey, StoredMasterKey, User};
use crate::domain::ports::{KeyIndex, Metering, PortResult, ResetTokens, ScopedKeys, Throttle, UserStore};
use crate::domain::throttle::{fixed_window, Decision, Limit, Verdict};
use crate::domain::token::StoredResetToken;
use crate::records::{email_pk, key_pk, user_pk, EmailItem, KeyItem, ScopedKeyItem, TokenItem, UserItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
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
        tracing::warn!(%error, "flushing the counted requests to disk failed; trying again");
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

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &User) -> PortResult<()> {
        let item = UserItem::from(user);
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let key = KeyItem::master(&user.id, &user.master_key.digest, user.key_generation);
        self.write(move |tx| {
            if tx.exists(&email.pk)? || tx.exists(&item.pk)? || tx.exists(&key.pk)? {
                return Err(PortError::Conflict);
            }
            tx.put(&email.pk, &email)?;
            tx.put(&item.pk, &item)?;
            tx.put(&key.pk, &key)
        })
        .await
    }

    async fn user(&self, id: &str) -> PortResult<Option<User>> {
        Ok(self.get::<UserItem>(user_pk(id)).await?.map(User::from))
    }

    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>> {
        let pk = email_pk(email_normalised);
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS).map_err(failed)?;
            let Some(reservation) = table.get(pk.as_str()).map_err(failed)? else {
                return Ok(None);
            };
            let reservation: EmailItem = decode(reservation.value())?;
            let user = table.get(user_pk(&reservation.user_id).as_str()).map_err(failed)?;
            user.map(|v| decode::<UserItem>(v.value()).map(User::from)).transpose()
        })
        .await
    }

    async fn replace_master_key(&self, user: &User, new: &StoredMasterKey, now: DateTime<Utc>) -> PortResult<()> {
        let (user, new) = (user.clone(), new.clone());
        self.write(move |tx| {
            let mut stored = tx.current(&user)?;
            let entry = KeyItem::master(&user.id, &new.digest, user.key_generation + 1);
            if tx.exists(&entry.pk)? {
                return Err(PortError::Conflict);
            }
            stored.master_key_digest = new.digest.0.clone();
            stored.master_key_ciphertext = new.ciphertext.clone();
            stored.master_key_prefix = new.prefix.clone();
            stored.master_key_created_at = now;
            stored.key_generation += 1;
            stored.updated_at = now;
            tx.remove(&key_pk(&user.master_key.digest))?;
            tx.put(&entry.pk, &entry)?;
            tx.put(&stored.pk.clone(), &stored)
        })
        .await
    }

    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()> {
        let (user, hash) = (user.clone(), password_hash.to_owned());
        self.write(move |tx| {
            let mut stored = tx.current(&user)?;
            if let Some(digest) = stored.reset_token_digest.take() {
                tx.remove_token(&digest)?;
            }
            stored.password_hash = hash;
            stored.updated_at = now;
            tx.put(&stored.pk.clone(), &stored)
        })
        .await
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> PortResult<()> {
        let (pk, old, new) = (user_pk(user_id), old.to_owned(), new.to_owned());
        self.write(move |tx| {
            let mut stored: UserItem = tx.get(&pk)?.ok_or(PortError::Conflict)?;
            if stored.password_hash != old {
                return Err(PortError::Conflict);
            }
            stored.password_hash = new;
            tx.put(&pk, &stored)
        })
        .await
    }

    async fn revoke_scoped_keys(&self, user: &User, now: DateTime<Utc>) -> PortResult<()> {
        let (pk, digest) = (user_pk(&user.id), user.master_key.digest.0.clone());
        self.write(move |tx| {
            let mut stored: UserItem = tx.get(&pk)?.ok_or(PortError::Conflict)?;
            if stored.master_key_digest != digest {
                return Err(PortError::Conflict);
            }
            stored.key_generation += 1;
            stored.updated_at = now;
            tx.put(&pk, &stored)
        })
        .await
    }

    async fn delete_user(&self, user: &User) -> PortResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let stored = tx.current(&user)?;
            if let Some(digest) = &stored.reset_token_digest {
                tx.remove_token(digest)?;
            }
            tx.remove(&key_pk(&user.master_key.digest))?;
            tx.remove(&email_pk(&stored.email_normalised))?;
            tx.remove(&stored.pk)
        })
        .await
    }

    async fn import_account(&self, account: &ImportedAccount) -> PortResult<()> {
        let user = &account.user;
        let item = UserItem::from(user);
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let entries: Vec<KeyItem> = account.entries().iter().map(KeyItem::from).collect();
        let keys: Vec<ScopedKeyItem> = account.scoped_keys.iter().map(|(key, _)| ScopedKeyItem::from(key)).collect();
        self.write(move |tx| {
            for pk in [&email.pk, &item.pk].into_iter().chain(entries.iter().map(|e| &e.pk)) {
                if tx.exists(pk)? {
                    return Err(PortError::Conflict);
                }
            }
            for key in &keys {
                if tx.scoped(&key.user_id, &key.key_id)?.is_some() {
                    return Err(PortError::Conflict);
                }
                tx.put_scoped(key)?;
            }
            for entry in &entries {
                tx.put(&entry.pk, entry)?;
            }
            tx.put(&email.pk, &email)?;
            tx.put(&item.pk, &item)
        })
        .await
    }
}

#[async_trait]
impl KeyIndex for EmbeddedStore {
    async fn key_entry(&self, digest: &KeyDigest) -> PortResult<Option<KeyEntry>> {
        Ok(self.get::<KeyItem>(key_pk(digest)).await?.map(|item| item.into_entry(digest)))
    }

    /// One read transaction for both.
    async fn key_entry_and_account(&self, digest: &KeyDigest) -> PortResult<Option<(KeyEntry, Option<User>)>> {
        let digest = digest.clone();
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS).map_err(failed)?;
            let Some(entry) = table.get(key_pk(&digest).as_str()).map_err(failed)? else {
                return Ok(None);
            };
            let entry = decode::<KeyItem>(entry.value())?.into_entry(&digest);
            let user = table.get(user_pk(&entry.user_id).as_str()).map_err(failed)?;
            let user = user.map(|v| decode::<UserItem>(v.value()).map(User::from)).transpose()?;
            Ok(Some((entry, user)))
        })
        .await
    }

    async fn key_entries(&self, digests: &[KeyDigest]) -> PortResult<Vec<Option<KeyEntry>>> {
        let digests = digests.to_vec();
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS).map_err(failed)?;
            digests
                .iter()
                .map(|digest| {
                    let value = table.get(key_pk(digest).as_str()).map_err(failed)?;
                    value.map(|v| decode::<KeyItem>(v.value()).map(|item| item.into_entry(digest))).transpose()
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl ResetTokens for EmbeddedStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let (user, item) = (user.clone(), TokenItem::from_stored(token));
        self.write(move |tx| {
            let mut stored = tx.current(&user)?;
            if tx.token(&item.token_hash)?.is_some() {
                return Err(PortError::Conflict);
            }
            if let Some(previous) = stored.reset_token_digest.replace(item.token_hash.clone()) {
                tx.remove_token(&previous)?;
            }
            tx.put_token(&item)?;
            tx.put(&stored.pk.clone(), &stored)
        })
        .await
    }

    async fn reset_token(&self, digest: &str) -> PortResult<Option<StoredResetToken>> {
        let digest = digest.to_owned();
        let item = self
            .read(move |txn| {
                let table = txn.open_table(RESET_TOKENS).map_err(failed)?;
                let value = table.get(digest.as_str()).map_err(failed)?;
                value.map(|v| decode::<TokenItem>(v.value())).transpose()
            })
            .await?;
        item.map(|i| i.into_stored().ok_or_else(|| failed("reset token with an impossible expiry"))).transpose()
    }

    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> PortResult<()> {
        let (token, hash) = (token.clone(), password_hash.to_owned());
        self.write(move |tx| {
            tx.token(&token.digest)?.ok_or(PortError::Conflict)?;
            let pk = user_pk(&token.user_id);
            let mut stored: UserItem = tx.get(&pk)?.ok_or(PortError::Conflict)?;
            if stored.reset_token_digest.as_deref() != Some(token.digest.as_str()) {
                return Err(PortError::Conflict);
            }
            tx.remove_token(&token.digest)?;
            stored.reset_token_digest = None;
            stored.password_hash = hash;
            stored.updated_at = now;
            tx.put(&pk, &stored)
        })
        .await
    }
}

#[async_trait]
impl ScopedKeys for EmbeddedStore {
    async fn create_scoped_key(&self, user: &User, key: &ScopedKey, cap: u64) -> PortResult<()> {
        let (user_pk, generation) = (user_pk(&user.id), user.key_generation);
        let (item, entry) = (ScopedKeyItem::from(key), KeyItem::from(&key.entry()));
        self.write(move |tx| {
            let mut stored: UserItem = tx.get(&user_pk)?.ok_or(PortError::Conflict)?;
            if stored.key_generation != generation
                || stored.scoped_key_count >= cap
                || tx.scoped(&item.user_id, &item.key_id)?.is_some()
                || tx.exists(&entry.pk)?
            {
                return Err(PortError::Conflict);
            }
            stored.scoped_key_count += 1;
            tx.put(&user_pk, &stored)?;
            tx.put_scoped(&item)?;
            tx.put(&entry.pk, &entry)
        })
        .await
    }

    async fn scoped_keys(&self, user_id: &str) -> PortResult<Vec<ScopedKey>> {
        let user_id = user_id.to_owned();
        self.read(move |txn| {
            let table = txn.open_table(SCOPED_KEYS).map_err(failed)?;
            let mut keys = Vec::new();
            for row in table.range((user_id.as_str(), "")..).map_err(failed)? {
                let (key, value) = row.map_err(failed)?;
                if key.value().0 != user_id {
                    break;
                }
                keys.push(ScopedKey::from(decode::<ScopedKeyItem>(value.value())?));
            }
            Ok(keys)
        })
        .await
    }

    async fn scoped_key(&self, user_id: &str, key_id: &str) -> PortResult<Option<ScopedKey>> {
        let (user_id, key_id) = (user_id.to_owned(), key_id.to_owned());
        self.read(move |txn| {
            let table = txn.open_table(SCOPED_KEYS).map_err(failed)?;
            let value = table.get((user_id.as_str(), key_id.as_str())).map_err(failed)?;
            value.map(|v| decode::<ScopedKeyItem>(v.value()).map(ScopedKey::from)).transpose()
        })
        .await
    }

    async fn delete_scoped_key(&self, key: &ScopedKey) -> PortResult<()> {
        let (user_id, key_id, index) = (key.user_id.clone(), key.id.clone(), key_pk(&key.digest));
        self.write(move |tx| {
            tx.scoped(&user_id, &key_id)?.ok_or(PortError::Conflict)?;
            let pk = user_pk(&user_id);
            let mut account: UserItem = tx.get(&pk)?.ok_or(PortError::Conflict)?;
            account.scoped_key_count = account.scoped_key_count.saturating_sub(1);
            tx.put(&pk, &account)?;
            tx.remove_scoped(&user_id, &key_id)?;
            tx.remove(&index)
        })
        .await
    }

    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()> {
        let (user_id, key_id, index) = (key.user_id.clone(), key.id.clone(), key_pk(&key.digest));
        self.write(move |tx| {
            let mut item = tx.scoped(&user_id, &key_id)?.ok_or(PortError::Conflict)?;
            item.enabled = false;
            item.updated_at = now;
            tx.put_scoped(&item)?;
            tx.remove(&index)
        })
        .await
    }
}

#[async_trait]
impl Throttle for EmbeddedStore {
    async fn admit(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<Verdict> {
        let key = key.to_owned();
        let now_ms = now.timestamp_millis();
        self.write(move |tx| {
            let mut table = tx.0.open_table(RATES).map_err(failed)?;
            let tat = table.get(key.as_str()).map_err(failed)?.map(|v| v.value());
            match limit.decide(tat, now_ms) {
                Decision::Admit { tat } => {
                    table.insert(key.as_str(), tat).map_err(failed)?;
                    Ok(limit.verdict(true, tat, now_ms))
                }
                Decision::Refuse => Ok(limit.verdict(false, tat.unwrap_or(now_ms), now_ms)),
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

#[async_trait]
impl Metering for EmbeddedStore {
    /// The rules of [`crate::domain::meter`] applied in one write transaction (redb
    /// serialises writers): exact under any concurrency.
    async fn meter(&self, meter: &Meter<'_>) -> PortResult<Metered> {
        if !meter.count {
            return Ok(verdict(self.key_entry_and_account(meter.digest).await?, meter));
        }
        let digest = meter.digest.clone();
        let (client_id, user_id) = (meter.client_id.map(str::to_owned), meter.user_id.map(str::to_owned));
        let (kind, now, cost, daily_limit, monthly_limit) =
            (meter.kind, meter.now, meter.cost, meter.daily_limit, meter.monthly_limit);
        self.write_with(Durability::None, move |tx| {
            let meter = Meter {
                digest: &digest,
                kind,
                now,
                cost,
                count: true,
                client_id: client_id.as_deref(),
                user_id: user_id.as_deref(),
                daily_limit,
                monthly_limit,
            };
            let Some(mut entry) = tx.get::<KeyItem>(&key_pk(&digest))?.map(|item| item.into_entry(&digest)) else {
                return Ok(verdict(None, &meter));
            };
            let user = tx.get::<UserItem>(&user_pk(&entry.user_id))?.map(User::from);
            let refused = refusal(&entry, user.as_ref(), &meter);
            let (None, Some(mut user)) = (refused, user) else {
                // `refusal` names a missing account `Unknown`: the `None` is never used.
                return Ok(Metered::Refused(refused.unwrap_or(Refusal::UNKNOWN)));
            };
            user.usage.add(now, cost);
            tx.put(&user_pk(&user.id), &UserItem::from(&user))?;
            if entry.kind == KeyKind::Scoped {
                entry.usage.add(now, cost);
                tx.put(&key_pk(&digest), &KeyItem::from(&entry))?;
            }
            Ok(Metered::Admitted { entry, account: AccountMeter::from(&user) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

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
