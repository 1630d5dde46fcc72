//! The key index: a key's entry (`KEY#<sha256>` in the users table), read consistently.

use super::{from_item, pk, DynamoStore, Item};
use crate::domain::keys::KeyDigest;
use crate::domain::model::KeyEntry;
use crate::domain::ports::{KeyIndex, PortResult};
use crate::records::{key_pk, KeyItem};
use async_trait::async_trait;
use std::collections::HashMap;

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
