//! The reset tokens table, and the token digest on the account that makes one current:
//! `resetTokenDigest` for a password reset, `verifyTokenDigest` for an email verification.

use super::{delete, from_item, pk, put, reset_guard, s, time, to_item, token_key, update, DynamoStore, Item};
use crate::domain::error::PortError;
use crate::domain::model::{StoredMasterKey, User};
use crate::domain::ports::{PortResult, ResetTokens};
use crate::domain::token::{Purpose, StoredResetToken};
use crate::records::{meter_pk, user_pk, TokenItem, EMAIL_VERIFIED};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The attribute of the account that names its current token of `purpose`.
fn slot(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Reset => "resetTokenDigest",
        Purpose::VerifyEmail => "verifyTokenDigest",
    }
}

/// The condition that `user`'s verification token is still what we read.
fn verification_guard(user: &User, values: &mut Item) -> &'static str {
    match &user.verification_token_digest {
        Some(digest) => {
            values.insert(":readToken".into(), s(digest));
            "attribute_exists(pk) AND verifyTokenDigest = :readToken"
        }
        None => "attribute_exists(pk) AND attribute_not_exists(verifyTokenDigest)",
    }
}

impl DynamoStore {
    /// Removes the unverified mark from the account's meter, which every account that can
    /// be unverified has (written with it at register); the counting write reads it there.
    fn meter_verified(&self, user_id: &str) -> PortResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(self.users_table()?)
            .set_key(Some(pk(meter_pk(user_id))))
            .update_expression("REMOVE #verified")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#verified", EMAIL_VERIFIED)
            .build()
            .map_err(PortError::other)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl ResetTokens for DynamoStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let mut values = HashMap::from([(":new".to_owned(), s(&token.digest))]);
        let (condition, previous) = match token.purpose {
            Purpose::Reset => (reset_guard(user, &mut values), &user.reset_token_digest),
            Purpose::VerifyEmail => (verification_guard(user, &mut values), &user.verification_token_digest),
        };
        let expression = format!("SET {} = :new", slot(token.purpose));
        let item = TokenItem::from_stored(token);
        let mut items = vec![
            update(self.users_table()?, pk(user_pk(&user.id)), &expression, condition, values)?,
            put(self.reset_tokens_table()?, to_item(&item)?, Some("attribute_not_exists(tokenHash)"))?,
        ];
        if let Some(previous) = previous {
            items.push(delete(self.reset_tokens_table()?, token_key(previous), None, None)?);
        }
        self.transact(items).await
    }

    async fn reset_token(&self, digest: &str) -> PortResult<Option<StoredResetToken>> {
        let Some(item) = self.get(self.reset_tokens_table()?, token_key(digest)).await? else {
            return Ok(None);
        };
        from_item::<TokenItem>(item)?
            .into_stored()
            .map(Some)
            .ok_or_else(|| PortError::Other("reset token with an impossible expiry or purpose".into()))
    }

    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        user: &User,
        password_hash: &str,
        now: DateTime<Utc>,
        new_master_key: Option<&StoredMasterKey>,
    ) -> PortResult<()> {
        let mut values = HashMap::from([
            (":hash".to_owned(), s(password_hash)),
            (":now".to_owned(), time(now)),
            (":digest".to_owned(), s(&token.digest)),
        ]);
        let mut set = "SET passwordHash = :hash, updatedAt = :now".to_owned();
        let mut condition = "resetTokenDigest = :digest".to_owned();
        let mut rest = Vec::new();
        // The meter item changes once: with a new master key, its guards also mark the
        // email verified.
        let verifies = !user.email_verified;
        if let Some(new) = new_master_key {
            let rekey = self.master_key_change(user, new, now, verifies)?;
            set = format!("{set}, {}", rekey.set);
            condition = format!("{condition} AND {}", rekey.condition);
            values.extend(rekey.values);
            rest = rekey.items;
        } else if verifies {
            rest.push(self.meter_verified(&token.user_id)?);
        }
        let mut items = vec![
            delete(self.reset_tokens_table()?, token_key(&token.digest), Some("attribute_exists(tokenHash)"), None)?,
            update(
                self.users_table()?,
                pk(user_pk(&token.user_id)),
                &format!("{set} REMOVE resetTokenDigest, verifyTokenDigest, {EMAIL_VERIFIED}"),
                &condition,
                values,
            )?,
        ];
        items.extend(rest);
        self.transact(items).await
    }

    async fn redeem_verification_token(&self, token: &StoredResetToken, now: DateTime<Utc>) -> PortResult<()> {
        let values = HashMap::from([(":now".to_owned(), time(now)), (":digest".to_owned(), s(&token.digest))]);
        self.transact(vec![
            delete(self.reset_tokens_table()?, token_key(&token.digest), Some("attribute_exists(tokenHash)"), None)?,
            update(
                self.users_table()?,
                pk(user_pk(&token.user_id)),
                &format!("SET updatedAt = :now REMOVE verifyTokenDigest, {EMAIL_VERIFIED}"),
                "verifyTokenDigest = :digest",
                values,
            )?,
            self.meter_verified(&token.user_id)?,
        ])
        .await
    }
}
