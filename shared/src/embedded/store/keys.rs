//! The key index: a key's entry, and the account it names, read in one transaction.

use super::{decode, failed, EmbeddedStore, ACCOUNTS};
use crate::domain::keys::KeyDigest;
use crate::domain::model::{KeyEntry, User};
use crate::domain::ports::{KeyIndex, PortResult};
use crate::records::{key_pk, user_pk, KeyItem, UserItem};
use async_trait::async_trait;

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
