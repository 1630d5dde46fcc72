//! The reset tokens table, and the token digest on the account that makes one current.

use super::{delete, from_item, pk, put, reset_guard, s, time, to_item, token_key, update, DynamoStore};
use crate::domain::error::PortError;
use crate::domain::model::{StoredMasterKey, User};
use crate::domain::ports::{PortResult, ResetTokens};
use crate::domain::token::StoredResetToken;
use crate::records::{user_pk, TokenItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[async_trait]
impl ResetTokens for DynamoStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let mut values = HashMap::from([(":new".to_owned(), s(&token.digest))]);
        let condition = reset_guard(user, &mut values);
        let item = TokenItem::from_stored(token);
        let mut items = vec![
            update(self.users_table()?, pk(user_pk(&user.id)), "SET resetTokenDigest = :new", condition, values)?,
            put(self.reset_tokens_table()?, to_item(&item)?, Some("attribute_not_exists(tokenHash)"))?,
        ];
        if let Some(previous) = &user.reset_token_digest {
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
            .ok_or_else(|| PortError::Other("reset token with an impossible expiry".into()))
    }

    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        password_hash: &str,
        now: DateTime<Utc>,
        new_master_key: Option<(&User, &StoredMasterKey)>,
    ) -> PortResult<()> {
        let mut values = HashMap::from([
            (":hash".to_owned(), s(password_hash)),
            (":now".to_owned(), time(now)),
            (":digest".to_owned(), s(&token.digest)),
        ]);
        let mut set = "SET passwordHash = :hash, updatedAt = :now".to_owned();
        let mut condition = "resetTokenDigest = :digest".to_owned();
        let mut rest = Vec::new();
        if let Some((user, new)) = new_master_key {
            let rekey = self.master_key_change(user, new, now)?;
            set = format!("{set}, {}", rekey.set);
            condition = format!("{condition} AND {}", rekey.condition);
            values.extend(rekey.values);
            rest = rekey.items;
        }
        let mut items = vec![
            delete(self.reset_tokens_table()?, token_key(&token.digest), Some("attribute_exists(tokenHash)"), None)?,
            update(
                self.users_table()?,
                pk(user_pk(&token.user_id)),
                &format!("{set} REMOVE resetTokenDigest"),
                &condition,
                values,
            )?,
        ];
        items.extend(rest);
        self.transact(items).await
    }
}
