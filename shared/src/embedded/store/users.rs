//! Accounts, their email reservations and key index entries: the user store.

use super::{decode, failed, EmbeddedStore, Tx, ACCOUNTS};
use crate::domain::error::PortError;
use crate::domain::model::{ImportedAccount, StoredMasterKey, User};
use crate::domain::ports::{PortResult, UserStore};
use crate::records::{email_pk, key_pk, user_pk, EmailItem, KeyItem, ScopedKeyItem, UserItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

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
            replace_master_key_in(tx, &user, &mut stored, &new, now)?;
            stored.updated_at = now;
            tx.put(&stored.pk.clone(), &stored)
        })
        .await
    }

    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()> {
        let (user, hash) = (user.clone(), password_hash.to_owned());
        self.write(move |tx| {
            let mut stored = tx.current(&user)?;
            if stored.password_hash != user.password_hash.expose() {
                return Err(PortError::Conflict);
            }
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
            // No scoped key made since the account was read: it would outlive the account.
            if stored.scoped_key_count != user.scoped_key_count {
                return Err(PortError::Conflict);
            }
            for digest in [&stored.reset_token_digest, &stored.verify_token_digest].into_iter().flatten() {
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

/// Replaces the master key of `user`, read as `stored` in this transaction: the account's
/// key fields (the caller writes `stored` back) and the key index entries.
pub(super) fn replace_master_key_in(
    tx: &Tx<'_>,
    user: &User,
    stored: &mut UserItem,
    new: &StoredMasterKey,
    now: DateTime<Utc>,
) -> PortResult<()> {
    let entry = KeyItem::master(&user.id, &new.digest, user.key_generation + 1);
    if tx.exists(&entry.pk)? {
        return Err(PortError::Conflict);
    }
    stored.master_key_digest = new.digest.0.clone();
    stored.master_key_ciphertext = new.ciphertext.clone();
    stored.master_key_prefix = new.prefix.clone();
    stored.master_key_created_at = now;
    stored.key_generation += 1;
    tx.remove(&key_pk(&user.master_key.digest))?;
    tx.put(&entry.pk, &entry)
}
