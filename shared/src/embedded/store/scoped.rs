//! Scoped keys, with each key's index entry and its count on the account.

use super::{decode, failed, EmbeddedStore, SCOPED_KEYS};
use crate::domain::error::PortError;
use crate::domain::model::{ScopedKey, User};
use crate::domain::ports::{PortResult, ScopedKeys};
use crate::records::{key_pk, user_pk, KeyItem, ScopedKeyItem, UserItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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

    async fn update_scoped_key(&self, before: &ScopedKey, after: &ScopedKey) -> PortResult<()> {
        let (user_id, key_id, index) = (before.user_id.clone(), before.id.clone(), key_pk(&before.digest));
        let (read_at, generation) = (before.updated_at, before.generation);
        let (item, entry) = (ScopedKeyItem::from(after), KeyItem::from(&after.entry()));
        self.write(move |tx| {
            let stored = tx.scoped(&user_id, &key_id)?.ok_or(PortError::Conflict)?;
            let current: KeyItem = tx.get(&index)?.ok_or(PortError::Conflict)?;
            if stored.updated_at != read_at || current.generation != generation {
                return Err(PortError::Conflict);
            }
            tx.put_scoped(&item)?;
            tx.put(&index, &KeyItem { usage: current.usage, ..entry })
        })
        .await
    }

    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()> {
        let (user_id, key_id, index) = (key.user_id.clone(), key.id.clone(), key_pk(&key.digest));
        self.write(move |tx| {
            let mut item = tx.scoped(&user_id, &key_id)?.ok_or(PortError::Conflict)?;
            item.enabled = false;
            item.updated_at = now;
            // A retired key never works again: its Foundry password goes at once.
            item.foundry_password_ciphertext = None;
            tx.put_scoped(&item)?;
            tx.remove(&index)
        })
        .await
    }
}
