//! Reset tokens, and the token digest on the account that makes one current.

use super::{decode, failed, EmbeddedStore, RESET_TOKENS};
use crate::domain::error::PortError;
use crate::domain::model::{StoredMasterKey, User};
use crate::domain::ports::{PortResult, ResetTokens};
use crate::domain::token::{Purpose, StoredResetToken};
use crate::records::{user_pk, TokenItem, UserItem};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl ResetTokens for EmbeddedStore {
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()> {
        let (user, item, purpose) = (user.clone(), TokenItem::from_stored(token), token.purpose);
        self.write(move |tx| {
            let mut stored = match purpose {
                Purpose::Reset => tx.current(&user)?,
                // As DynamoDB's guard: the account is there and its verification slot as read.
                Purpose::VerifyEmail => {
                    let stored: UserItem = tx.get(&user_pk(&user.id))?.ok_or(PortError::Conflict)?;
                    if stored.verify_token_digest != user.verification_token_digest {
                        return Err(PortError::Conflict);
                    }
                    stored
                }
            };
            if tx.token(&item.token_hash)?.is_some() {
                return Err(PortError::Conflict);
            }
            let slot = match purpose {
                Purpose::Reset => &mut stored.reset_token_digest,
                Purpose::VerifyEmail => &mut stored.verify_token_digest,
            };
            if let Some(previous) = slot.replace(item.token_hash.clone()) {
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
        item.map(|i| i.into_stored().ok_or_else(|| failed("reset token with an impossible expiry or purpose")))
            .transpose()
    }

    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        user: &User,
        password_hash: &str,
        now: DateTime<Utc>,
        new_master_key: Option<&StoredMasterKey>,
    ) -> PortResult<()> {
        let (token, hash) = (token.clone(), password_hash.to_owned());
        let rekey = new_master_key.map(|new| (user.clone(), new.clone()));
        self.write(move |tx| {
            tx.token(&token.digest)?.ok_or(PortError::Conflict)?;
            let pk = user_pk(&token.user_id);
            let mut stored: UserItem = match &rekey {
                Some((user, _)) => tx.current(user)?,
                None => tx.get(&pk)?.ok_or(PortError::Conflict)?,
            };
            if stored.reset_token_digest.as_deref() != Some(token.digest.as_str()) {
                return Err(PortError::Conflict);
            }
            if let Some((user, new)) = &rekey {
                super::users::replace_master_key_in(tx, user, &mut stored, new, now)?;
            }
            tx.remove_token(&token.digest)?;
            stored.reset_token_digest = None;
            // The reset proves control of the email (the verification token's item stays
            // until its TTL, but no longer redeemable).
            stored.verify_token_digest = None;
            stored.email_verified = true;
            stored.password_hash = hash;
            stored.updated_at = now;
            tx.put(&pk, &stored)
        })
        .await
    }

    async fn redeem_verification_token(&self, token: &StoredResetToken, now: DateTime<Utc>) -> PortResult<()> {
        let token = token.clone();
        self.write(move |tx| {
            tx.token(&token.digest)?.ok_or(PortError::Conflict)?;
            let pk = user_pk(&token.user_id);
            let mut stored: UserItem = tx.get(&pk)?.ok_or(PortError::Conflict)?;
            if stored.verify_token_digest.as_deref() != Some(token.digest.as_str()) {
                return Err(PortError::Conflict);
            }
            tx.remove_token(&token.digest)?;
            stored.verify_token_digest = None;
            stored.email_verified = true;
            stored.updated_at = now;
            tx.put(&pk, &stored)
        })
        .await
    }
}
