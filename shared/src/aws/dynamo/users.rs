//! The users table as the user store: accounts, their email reservations and key index
//! entries, changed together in transactions.

use super::{
    conditional, delete, from_item, n, pk, put, reset_guard, s, time, to_item, token_key, update, DynamoStore, Item,
    Written, MAX_TRANSACTION_ITEMS,
};
use crate::domain::error::PortError;
use crate::domain::model::{ImportedAccount, StoredMasterKey, User};
use crate::domain::ports::{PortResult, UserStore};
use crate::records::{email_pk, key_pk, meter_pk, user_pk, EmailItem, KeyItem, MeterItem, ScopedKeyItem, UserItem};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// An account id that no account has (ids are UUIDs).
const NO_ACCOUNT: &str = "none";

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> PortResult<()> {
        let table = self.users_table()?;
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let key = KeyItem::master(&user.id, &user.master_key.digest, user.key_generation);
        let absent = Some("attribute_not_exists(pk)");
        self.transact(vec![
            put(table, to_item(&email)?, absent)?,
            put(table, to_item(&UserItem::from(user))?, absent)?,
            put(table, to_item(&MeterItem::from(user))?, absent)?,
            put(table, to_item(&key)?, absent)?,
        ])
        .await
    }

    /// The account and its meter, in one consistent batch read: the counters are the meter's
    /// (an account written before meters existed keeps its own until its first request).
    async fn user(&self, id: &str) -> PortResult<Option<User>> {
        let mut items = self.batch_get(self.users_table()?, vec![pk(user_pk(id)), pk(meter_pk(id))]).await?;
        let meter_key = meter_pk(id);
        let (meter, account): (Vec<Item>, Vec<Item>) =
            items.drain(..).partition(|item| item.get("pk").and_then(|v| v.as_s().ok()) == Some(&meter_key));
        let Some(account) = account.into_iter().next() else {
            return Ok(None);
        };
        let mut user = User::from(from_item::<UserItem>(account)?);
        if let Some(meter) = meter.into_iter().next() {
            user.usage = from_item::<MeterItem>(meter)?.into_meter(id).usage;
        }
        Ok(Some(user))
    }

    /// Two reads whether or not the email has an account, so that a login's timing does
    /// not tell (the second read of an unknown email looks up an id no account has).
    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>> {
        let reservation = self.get(self.users_table()?, pk(email_pk(email_normalised))).await?;
        let user_id = reservation.map(from_item::<EmailItem>).transpose()?.map(|r| r.user_id);
        let user = self.user(user_id.as_deref().unwrap_or(NO_ACCOUNT)).await?;
        Ok(user.filter(|_| user_id.is_some()))
    }

    async fn replace_master_key(&self, user: &User, new: &StoredMasterKey, now: DateTime<Utc>) -> PortResult<()> {
        let rekey = self.master_key_change(user, new, now, false)?;
        let mut items = vec![update(
            self.users_table()?,
            pk(user_pk(&user.id)),
            &format!("SET {}, updatedAt = :now", rekey.set),
            rekey.condition,
            rekey.values,
        )?];
        items.extend(rekey.items);
        self.transact(items).await
    }

    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()> {
        let mut values = HashMap::from([
            (":hash".to_owned(), s(password_hash)),
            (":now".to_owned(), time(now)),
            (":checkedHash".to_owned(), s(user.password_hash.expose())),
        ]);
        let condition = format!("{} AND passwordHash = :checkedHash", reset_guard(user, &mut values));
        let mut items = vec![update(
            self.users_table()?,
            pk(user_pk(&user.id)),
            "SET passwordHash = :hash, updatedAt = :now REMOVE resetTokenDigest",
            &condition,
            values,
        )?];
        if let Some(digest) = &user.reset_token_digest {
            items.push(delete(self.reset_tokens_table()?, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> PortResult<()> {
        let request = self
            .client
            .update_item()
            .table_name(self.users_table()?)
            .set_key(Some(pk(user_pk(user_id))))
            .update_expression("SET passwordHash = :new")
            .condition_expression("passwordHash = :old")
            .expression_attribute_values(":new", s(new))
            .expression_attribute_values(":old", s(old));
        match conditional(|| request.clone().send()).await? {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(PortError::Conflict),
        }
    }

    async fn revoke_scoped_keys(&self, user: &User, now: DateTime<Utc>) -> PortResult<()> {
        let next = user.key_generation + 1;
        let values = HashMap::from([
            (":next".to_owned(), n(next)),
            (":now".to_owned(), time(now)),
            (":digest".to_owned(), s(&user.master_key.digest.0)),
            (":generation".to_owned(), n(user.key_generation)),
        ]);
        self.transact(vec![
            update(
                self.users_table()?,
                pk(user_pk(&user.id)),
                "SET keyGeneration = :next, updatedAt = :now",
                "masterKeyDigest = :digest AND keyGeneration = :generation",
                values,
            )?,
            self.meter_guards(user, &user.master_key.digest, next, false)?,
        ])
        .await
    }

    async fn delete_user(&self, user: &User) -> PortResult<()> {
        let table = self.users_table()?;
        let mut values = HashMap::from([
            (":digest".to_owned(), s(&user.master_key.digest.0)),
            (":keys".to_owned(), n(user.scoped_key_count)),
        ]);
        let guard = reset_guard(user, &mut values);
        // No scoped key made since the account was read: it would outlive the account.
        let keys = match user.scoped_key_count {
            0 => "(attribute_not_exists(scopedKeyCount) OR scopedKeyCount = :keys)",
            _ => "scopedKeyCount = :keys",
        };
        let condition = format!("{guard} AND masterKeyDigest = :digest AND {keys}");
        let mut items = vec![
            delete(table, pk(user_pk(&user.id)), Some(&condition), Some(values))?,
            delete(table, pk(email_pk(&user.email_normalised)), None, None)?,
            delete(table, pk(key_pk(&user.master_key.digest)), None, None)?,
            delete(table, pk(meter_pk(&user.id)), None, None)?,
        ];
        for digest in [&user.reset_token_digest, &user.verification_token_digest].into_iter().flatten() {
            items.push(delete(self.reset_tokens_table()?, token_key(digest), None, None)?);
        }
        self.transact(items).await
    }

    /// One transaction: the email reservation, the account, every index entry and every
    /// scoped key, each on condition that it is not there yet. At most
    /// [`MAX_TRANSACTION_ITEMS`] items: 48 scoped keys.
    async fn import_account(&self, account: &ImportedAccount) -> PortResult<()> {
        let table = self.users_table()?;
        let user = &account.user;
        let email = EmailItem { pk: email_pk(&user.email_normalised), user_id: user.id.clone() };
        let absent = Some("attribute_not_exists(pk)");
        let mut items = vec![
            put(table, to_item(&email)?, absent)?,
            put(table, to_item(&UserItem::from(user))?, absent)?,
            put(table, to_item(&MeterItem::from(user))?, absent)?,
        ];
        for entry in account.entries() {
            items.push(put(table, to_item(&KeyItem::from(&entry))?, absent)?);
        }
        for (key, _) in &account.scoped_keys {
            let item = to_item(&ScopedKeyItem::from(key))?;
            items.push(put(self.scoped_keys_table()?, item, Some("attribute_not_exists(keyId)"))?);
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(PortError::Other(format!(
                "an account with {} scoped keys does not fit one transaction",
                account.scoped_keys.len()
            )));
        }
        self.transact(items).await
    }
}

/// What replacing an account's master key writes: the clauses and values that the account's
/// update adds (under its own condition on the key it replaces), and the other items of
/// the same transaction (the key index entries and the meter).
pub(super) struct MasterKeyChange {
    pub set: &'static str,
    pub condition: &'static str,
    pub values: Item,
    pub items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
}

impl DynamoStore {
    /// `verified`: the account's email becomes verified in the same write (see
    /// [`DynamoStore::meter_guards`]).
    pub(super) fn master_key_change(
        &self,
        user: &User,
        new: &StoredMasterKey,
        now: DateTime<Utc>,
        verified: bool,
    ) -> PortResult<MasterKeyChange> {
        let table = self.users_table()?;
        let values = HashMap::from([
            (":newDigest".to_owned(), s(&new.digest.0)),
            (":newCiphertext".to_owned(), AttributeValue::B(new.ciphertext.clone().into())),
            (":newPrefix".to_owned(), s(&new.prefix)),
            (":now".to_owned(), time(now)),
            (":one".to_owned(), n(1)),
            (":oldDigest".to_owned(), s(&user.master_key.digest.0)),
            (":oldGeneration".to_owned(), n(user.key_generation)),
        ]);
        let entry = KeyItem::master(&user.id, &new.digest, user.key_generation + 1);
        Ok(MasterKeyChange {
            set: "masterKeyDigest = :newDigest, masterKeyCiphertext = :newCiphertext, \
                  masterKeyPrefix = :newPrefix, masterKeyCreatedAt = :now, keyGeneration = keyGeneration + :one",
            condition: "masterKeyDigest = :oldDigest AND keyGeneration = :oldGeneration",
            values,
            items: vec![
                delete(table, pk(key_pk(&user.master_key.digest)), None, None)?,
                put(table, to_item(&entry)?, Some("attribute_not_exists(pk)"))?,
                self.meter_guards(user, &new.digest, user.key_generation + 1, verified)?,
            ],
        })
    }
}
