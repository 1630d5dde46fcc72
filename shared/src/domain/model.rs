//! What the service keeps about an account and its keys.

use crate::domain::keys::{KeyDigest, KeyKind};
use chrono::{DateTime, Utc};

/// A user account. The password hash and the master key's ciphertext never leave the
/// service; responses are built field by field, never by serialising this.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub email_normalised: String,
    pub password_hash: String,
    pub master_key: StoredMasterKey,
    /// Bumped whenever the master key is replaced; scoped keys minted under an older
    /// generation stop working at that moment.
    pub key_generation: u64,
    /// The digest of the one reset token that may still be redeemed.
    pub reset_token_digest: Option<String>,
    pub subscription_status: String,
    pub stripe_customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub usage: Usage,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMasterKey {
    pub digest: KeyDigest,
    /// KMS ciphertext bound to the account (encryption context), so login can return it.
    pub ciphertext: Vec<u8>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

/// Request counters. They stay zero until the authorizer meters requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub requests_this_month: u64,
    pub requests_today: u64,
    pub last_request_date: Option<String>,
}

/// The key index entry: what a key digest resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub digest: KeyDigest,
    pub user_id: String,
    pub kind: KeyKind,
    /// For scoped keys: the key's id and the master key generation it was minted under.
    pub scoped_key_id: Option<String>,
    pub generation: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScopedKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub digest: KeyDigest,
    pub prefix: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    pub monthly_limit: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    /// KMS ciphertext bound to the account and this key.
    pub foundry_password_ciphertext: Option<Vec<u8>>,
    pub enabled: bool,
    pub generation: u64,
    pub requests_this_month: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ScopedKey {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Enabled and minted under the account's current master key.
    pub fn is_enabled(&self, user: &User) -> bool {
        self.enabled && self.generation == user.key_generation
    }

    pub fn entry(&self) -> KeyEntry {
        KeyEntry {
            digest: self.digest.clone(),
            user_id: self.user_id.clone(),
            kind: KeyKind::Scoped,
            scoped_key_id: Some(self.id.clone()),
            generation: self.generation,
            expires_at: self.expires_at,
            enabled: self.enabled,
        }
    }
}
