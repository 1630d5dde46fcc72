//! The scoped keys table, with each key's index entry and its count on the account.

use super::{delete, from_item, n, pk, put, s, scoped_key_key, sdk_error, time, to_item, update, DynamoStore, Item};
use crate::domain::error::PortError;
use crate::domain::model::{ScopedKey, User};
use crate::domain::ports::{PortResult, ScopedKeys};
use crate::records::{key_pk, user_pk, KeyItem, ScopedKeyItem};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[async_trait]
impl ScopedKeys for DynamoStore {
    async fn create_scoped_key(&self, user: &User, key: &ScopedKey, cap: u64) -> PortResult<()> {
        self.transact(vec![
            update(
                self.users_table()?,
                pk(user_pk(&user.id)),
                "SET scopedKeyCount = if_not_exists(scopedKeyCount, :zero) + :one",
                "keyGeneration = :generation AND (attribute_not_exists(scopedKeyCount) OR scopedKeyCount < :cap)",
                HashMap::from([
                    (":generation".to_owned(), n(user.key_generation)),
                    (":cap".to_owned(), n(cap)),
                    (":zero".to_owned(), n(0)),
                    (":one".to_owned(), n(1)),
                ]),
            )?,
            put(self.scoped_keys_table()?, to_item(&ScopedKeyItem::from(key))?, Some("attribute_not_exists(keyId)"))?,
            put(self.users_table()?, to_item(&KeyItem::from(&key.entry()))?, Some("attribute_not_exists(pk)"))?,
        ])
        .await
    }

    async fn scoped_keys(&self, user_id: &str) -> PortResult<Vec<ScopedKey>> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.scoped_keys_table()?)
                .key_condition_expression("userId = :user")
                .expression_attribute_values(":user", s(user_id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                keys.push(ScopedKey::from(from_item::<ScopedKeyItem>(item)?));
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(keys),
            }
        }
    }

    async fn scoped_key(&self, user_id: &str, key_id: &str) -> PortResult<Option<ScopedKey>> {
        self.get(self.scoped_keys_table()?, scoped_key_key(user_id, key_id))
            .await?
            .map(|item| from_item::<ScopedKeyItem>(item).map(ScopedKey::from))
            .transpose()
    }

    async fn delete_scoped_key(&self, key: &ScopedKey) -> PortResult<()> {
        self.transact(vec![
            delete(
                self.scoped_keys_table()?,
                scoped_key_key(&key.user_id, &key.id),
                Some("attribute_exists(keyId)"),
                None,
            )?,
            delete(self.users_table()?, pk(key_pk(&key.digest)), None, None)?,
            update(
                self.users_table()?,
                pk(user_pk(&key.user_id)),
                "SET scopedKeyCount = if_not_exists(scopedKeyCount, :one) - :one",
                "attribute_exists(pk)",
                HashMap::from([(":one".to_owned(), n(1))]),
            )?,
        ])
        .await
    }

    async fn update_scoped_key(&self, before: &ScopedKey, after: &ScopedKey) -> PortResult<()> {
        let stored = Put::builder()
            .table_name(self.scoped_keys_table()?)
            .set_item(Some(to_item(&ScopedKeyItem::from(after))?))
            .condition_expression("attribute_exists(keyId) AND updatedAt = :before")
            .expression_attribute_values(":before", time(before.updated_at))
            .build()
            .map_err(PortError::other)?;
        // What decides a request, as the entry item holds it: set where `after` has a
        // value, removed where it has none; the counters are not touched.
        let mut entry = to_item(&KeyItem::from(&after.entry()))?;
        let (mut sets, mut removes) = (Vec::new(), Vec::new());
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":generation".to_owned(), n(before.generation))]);
        for &attribute in KeyItem::RESTRICTIONS {
            names.insert(format!("#{attribute}"), attribute.to_owned());
            match entry.remove(attribute) {
                Some(value) => {
                    values.insert(format!(":{attribute}"), value);
                    sets.push(format!("#{attribute} = :{attribute}"));
                }
                None => removes.push(format!("#{attribute}")),
            }
        }
        names.insert("#generation".into(), "generation".into());
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let index = Update::builder()
            .table_name(self.users_table()?)
            .set_key(Some(pk(key_pk(&before.digest))))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk) AND #generation = :generation")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(PortError::other)?;
        self.transact(vec![
            TransactWriteItem::builder().put(stored).build(),
            TransactWriteItem::builder().update(index).build(),
        ])
        .await
    }

    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()> {
        self.transact(vec![
            update(
                self.scoped_keys_table()?,
                scoped_key_key(&key.user_id, &key.id),
                // A retired key never works again: its Foundry password goes at once.
                "SET enabled = :disabled, updatedAt = :now REMOVE foundryPasswordCiphertext",
                "attribute_exists(keyId)",
                HashMap::from([(":disabled".to_owned(), AttributeValue::Bool(false)), (":now".to_owned(), time(now))]),
            )?,
            delete(self.users_table()?, pk(key_pk(&key.digest)), None, None)?,
        ])
        .await
    }
}
