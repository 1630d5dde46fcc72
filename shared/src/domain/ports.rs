//! The capabilities the domain needs, one small trait each. Every port has an AWS adapter
//! (`aws/`); the local server adds embedded ones.

use crate::domain::audit::Event;
use crate::domain::error::PortError;
use crate::domain::keys::KeyDigest;
use crate::domain::limits::{Limit, Verdict};
use crate::domain::meter::{Meter, Metered};
use crate::domain::model::{ImportedAccount, KeyEntry, ScopedKey, StoredMasterKey, User};
use crate::domain::token::StoredResetToken;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub type PortResult<T> = Result<T, PortError>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user, its email reservation and its master key's index entry, all or
    /// nothing. `Conflict` when the normalised email is taken.
    async fn create_user(&self, user: &User) -> PortResult<()>;
    /// A strongly consistent read.
    async fn user(&self, id: &str) -> PortResult<Option<User>>;
    async fn user_by_email(&self, email_normalised: &str) -> PortResult<Option<User>>;
    /// Swaps the master key (index entry included) and bumps the key generation, so every
    /// scoped key of the account stops working at once. `Conflict` when `user` is stale.
    async fn replace_master_key(&self, user: &User, new: &StoredMasterKey, now: DateTime<Utc>) -> PortResult<()>;
    /// Sets a new password hash and voids the outstanding reset token, if any.
    /// `Conflict` when `user` is stale, its password hash included (the one checked).
    async fn set_password(&self, user: &User, password_hash: &str, now: DateTime<Utc>) -> PortResult<()>;
    /// Replaces a hash only while it still is `old` (the upgrade on login).
    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> PortResult<()>;
    /// Bumps the key generation so that every scoped key of the account stops working,
    /// while the master key stays (the first step of deleting an account). `Conflict` when
    /// the master key is no longer `user`'s.
    async fn revoke_scoped_keys(&self, user: &User, now: DateTime<Utc>) -> PortResult<()>;
    /// Deletes the user, its email reservation, master key entry and reset token, all or
    /// nothing: the last step of deleting an account, after its scoped keys are gone.
    /// `Conflict` when `user` is stale, its count of scoped keys included: a key made since
    /// `user` was read (and so not deleted by the caller) stops the deletion.
    async fn delete_user(&self, user: &User) -> PortResult<()>;
    /// Writes an account moved over from the Node relay whole or not at all: the user,
    /// its email reservation, the index entries of its master and scoped keys, and its
    /// scoped keys. `Conflict` when the email, the account id or any key is already taken
    /// (nothing is written then).
    async fn import_account(&self, account: &ImportedAccount) -> PortResult<()>;
}

#[async_trait]
pub trait KeyIndex: UserStore {
    /// A strongly consistent lookup by digest.
    async fn key_entry(&self, digest: &KeyDigest) -> PortResult<Option<KeyEntry>>;
    /// The entry and the account it names, as authentication needs them: two consistent
    /// reads, or one where the store can read both at once.
    async fn key_entry_and_account(&self, digest: &KeyDigest) -> PortResult<Option<(KeyEntry, Option<User>)>> {
        let Some(entry) = self.key_entry(digest).await? else {
            return Ok(None);
        };
        let user = self.user(&entry.user_id).await?;
        Ok(Some((entry, user)))
    }
    /// Strongly consistent lookups of many digests in a constant number of calls (one per
    /// hundred), in the order asked.
    async fn key_entries(&self, digests: &[KeyDigest]) -> PortResult<Vec<Option<KeyEntry>>>;
}

#[async_trait]
pub trait ResetTokens: Send + Sync {
    /// Stores the token and makes it the account's only redeemable one of its purpose
    /// (a reset token and a verification token each have their slot); the previous one of
    /// that purpose is deleted. `Conflict` when `user` is stale.
    async fn issue_reset_token(&self, user: &User, token: &StoredResetToken) -> PortResult<()>;
    /// A stored token of either purpose (the caller checks [`StoredResetToken::purpose`]).
    async fn reset_token(&self, digest: &str) -> PortResult<Option<StoredResetToken>>;
    /// Uses the token up and sets the password, atomically: of concurrent redemptions
    /// exactly one succeeds, the others get `Conflict`. The reset proves control of the
    /// email: `user` (the account as read with the token) becomes verified in the same
    /// write, and an outstanding verification token stops being redeemable. With
    /// `new_master_key`, the same write also replaces the master key of `user` as
    /// [`UserStore::replace_master_key`] does (every scoped key stops working with it);
    /// `Conflict` too when `user` is stale.
    async fn redeem_reset_token(
        &self,
        token: &StoredResetToken,
        user: &User,
        password_hash: &str,
        now: DateTime<Utc>,
        new_master_key: Option<&StoredMasterKey>,
    ) -> PortResult<()>;
    /// Uses a verification token up and marks the account's email verified (on the
    /// account and wherever metering reads it), atomically: of concurrent redemptions
    /// exactly one succeeds, the others get `Conflict`, as does a token that is no longer
    /// the account's current one.
    async fn redeem_verification_token(&self, token: &StoredResetToken, now: DateTime<Utc>) -> PortResult<()>;
}

#[async_trait]
pub trait ScopedKeys: Send + Sync {
    /// Stores the key and its index entry and counts it on the account, all or nothing;
    /// `Conflict` when the account is gone, its master key changed since `user` was read,
    /// or it already has `cap` scoped keys (exact under concurrency).
    async fn create_scoped_key(&self, user: &User, key: &ScopedKey, cap: u64) -> PortResult<()>;
    /// All of an account's scoped keys (consistent read), in no particular order.
    async fn scoped_keys(&self, user_id: &str) -> PortResult<Vec<ScopedKey>>;
    async fn scoped_key(&self, user_id: &str, key_id: &str) -> PortResult<Option<ScopedKey>>;
    /// Deletes the key and its index entry and uncounts it on the account, all or nothing;
    /// `Conflict` when it is already gone.
    async fn delete_scoped_key(&self, key: &ScopedKey) -> PortResult<()>;
    /// Replaces a key's settings with `after`'s: the stored key and its index entry's copy
    /// of what decides a request (the entry's counters stay), all or nothing; `Conflict`
    /// when the key changed since `before` was read (its `updated_at`), is gone, or its
    /// index entry is (retired after a master key change).
    async fn update_scoped_key(&self, before: &ScopedKey, after: &ScopedKey) -> PortResult<()>;
    /// Marks a key disabled and drops its index entry and its encrypted Foundry password
    /// (after a master key change: the key never works again).
    async fn retire_scoped_key(&self, key: &ScopedKey, now: DateTime<Utc>) -> PortResult<()>;
}

/// Rate limits and blocks shared by every instance (see `domain::throttle`).
#[async_trait]
pub trait Throttle: Send + Sync {
    /// Admits one event for `key` under `limit` (GCRA over the key's theoretical arrival
    /// time), or refuses it and changes nothing. Exact under concurrency: single-item
    /// conditional writes, which never conflict with each other.
    async fn admit(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<Verdict>;
    /// Gives one admitted event of `key` back.
    async fn give_back(&self, key: &str, limit: Limit, now: DateTime<Utc>) -> PortResult<()>;
    /// Forgets everything `key` was admitted.
    async fn reset(&self, key: &str) -> PortResult<()>;
    /// Counts one event of `key` in the fixed `window` that holds `now`; answers the count.
    async fn tally(&self, key: &str, window: std::time::Duration, now: DateTime<Utc>) -> PortResult<u32>;
    /// Blocks `key` until `until`; an existing longer block stays.
    async fn block(&self, key: &str, until: DateTime<Utc>) -> PortResult<()>;
    async fn unblock(&self, key: &str) -> PortResult<()>;
    /// When `key` is blocked at `now`, until when.
    async fn blocked_until(&self, key: &str, now: DateTime<Utc>) -> PortResult<Option<DateTime<Utc>>>;
    /// The secret that keys throttle subjects (an HMAC key of 32 random bytes), created
    /// once for the store on first use and the same for every instance ever after. It is
    /// not kept with the throttle counters it keys.
    async fn throttle_secret(&self) -> PortResult<Zeroizing<Vec<u8>>>;
}

#[async_trait]
pub trait Metering: Send + Sync {
    /// Decides one request of a key by the rules of [`crate::domain::meter`] and, when it
    /// is admitted and `meter.count`, counts its cost on the key (a scoped key's own day
    /// and month) and on the account (its day and month), atomically per item and only
    /// while every cap has room: never one request over a cap, whatever the concurrency.
    /// A refused request is not counted. No transaction: one conditional single-item
    /// write per counter item, so the requests of one busy key never conflict with each
    /// other. Answers the entry and the account as counted, or the refusal with its reason.
    async fn meter(&self, meter: &Meter<'_>) -> PortResult<Metered>;
}

/// Each account's security events, for its owner (see `domain::activity`).
#[async_trait]
pub trait ActivityLog: Send + Sync {
    /// Adds the event to its account's log; the store may drop it after
    /// [`Event::expires_at`] (a TTL).
    async fn append_activity(&self, event: &Event) -> PortResult<()>;
    /// The account's newest events (consistent read), at most `limit`, newest first,
    /// without those expired at `now`.
    async fn activity(&self, user_id: &str, limit: usize, now: DateTime<Utc>) -> PortResult<Vec<Event>>;
    /// Deletes every event of the account.
    async fn delete_activity(&self, user_id: &str) -> PortResult<()>;
}

/// Everything a store offers; what the app state holds.
pub trait Store: UserStore + KeyIndex + ResetTokens + ScopedKeys + Throttle + Metering + ActivityLog {}
impl<T: UserStore + KeyIndex + ResetTokens + ScopedKeys + Throttle + Metering + ActivityLog> Store for T {}

/// An email with a plain-text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> PortResult<()>;
}

/// Names what a ciphertext belongs to; decrypting under another context fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionContext(pub BTreeMap<String, String>);

impl EncryptionContext {
    pub fn master_key(user_id: &str) -> Self {
        Self::of([("purpose", "master-key"), ("userId", user_id)])
    }

    pub fn foundry_password(user_id: &str, scoped_key_id: &str) -> Self {
        Self::of([("purpose", "foundry-password"), ("userId", user_id), ("scopedKeyId", scoped_key_id)])
    }

    fn of<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }
}

#[async_trait]
pub trait Cipher: Send + Sync {
    async fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> PortResult<Vec<u8>>;
    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> PortResult<Zeroizing<Vec<u8>>>;
}
