//! The stored form of accounts, key index entries, scoped keys and reset tokens, shared by
//! every store adapter (DynamoDB items, embedded records), so that both keep the same data.
//!
//! One table of accounts holds three kinds of item by `pk`: `USER#<id>` the account,
//! `EMAIL#<normalised email>` its email reservation, `KEY#<sha256>` the key index.

use crate::domain::audit::{Activity, Event, Origin};
use crate::domain::keys::{KeyDigest, KeyKind};
use crate::domain::meter::AccountMeter;
use crate::domain::model::{KeyEntry, ScopedKey, StoredMasterKey, Usage, User};
use crate::domain::scopes::Grant;
use crate::domain::token::{Purpose, StoredResetToken};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Timestamps are read with chrono's RFC 3339 parser, the format its `Serialize` writes:
/// its generic `Deserialize` parses through format items, several times slower, and every
/// authenticated request reads an account's four timestamps (profiled).
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    pub(super) fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|at| at.with_timezone(&Utc)).map_err(D::Error::custom)
    }

    pub(super) fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(&text).map(|at| Some(at.with_timezone(&Utc))).map_err(D::Error::custom)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserItem {
    pub(crate) pk: String,
    pub(crate) id: String,
    pub(crate) email: String,
    pub(crate) email_normalised: String,
    pub(crate) password_hash: String,
    pub(crate) master_key_digest: String,
    #[serde(with = "serde_bytes")]
    pub(crate) master_key_ciphertext: Vec<u8>,
    pub(crate) master_key_prefix: String,
    #[serde(deserialize_with = "rfc3339::required")]
    pub(crate) master_key_created_at: DateTime<Utc>,
    pub(crate) key_generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reset_token_digest: Option<String>,
    /// Written only as `false` (an account waiting for its email to be verified); absent
    /// means verified (accounts made before the setting, imported ones).
    #[serde(default = "verified", skip_serializing_if = "is_verified")]
    pub(crate) email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) verify_token_digest: Option<String>,
    #[serde(default)]
    pub(crate) scoped_key_count: u64,
    pub(crate) subscription_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stripe_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subscription_id: Option<String>,
    /// Request counters by period; always present (possibly empty), so that counting
    /// can update one entry of it.
    #[serde(default)]
    pub(crate) usage: BTreeMap<String, u64>,
    #[serde(default, deserialize_with = "rfc3339::optional", skip_serializing_if = "Option::is_none")]
    pub(crate) last_request_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "rfc3339::required")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(deserialize_with = "rfc3339::required")]
    pub(crate) updated_at: DateTime<Utc>,
}

/// An account's meter (`METER#<id>`, DynamoDB only): the counters and what guards them,
/// apart from the account so that the item every relay request writes stays under 1 KB
/// whatever the account holds. Written with the account in every transaction that
/// changes the master key, the key generation or the subscription; an account written
/// before it existed gets it on its first metered request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MeterItem {
    pub(crate) pk: String,
    pub(crate) master_key_digest: String,
    pub(crate) key_generation: u64,
    #[serde(default)]
    pub(crate) subscription_status: String,
    /// As on the account (`emailVerified: false` only while unverified), so that the
    /// counting write can refuse an unverified account's keys with no further read.
    #[serde(default = "verified", skip_serializing_if = "is_verified")]
    pub(crate) email_verified: bool,
    #[serde(default)]
    pub(crate) usage: BTreeMap<String, u64>,
    #[serde(default, deserialize_with = "rfc3339::optional", skip_serializing_if = "Option::is_none")]
    pub(crate) last_request_at: Option<DateTime<Utc>>,
}

/// The stored attribute of the email's state: absent is verified.
pub(crate) const EMAIL_VERIFIED: &str = "emailVerified";

fn verified() -> bool {
    true
}

fn is_verified(verified: &bool) -> bool {
    *verified
}

impl MeterItem {
    pub(crate) fn into_meter(self, user_id: &str) -> AccountMeter {
        AccountMeter {
            user_id: user_id.to_owned(),
            master_key_digest: KeyDigest(self.master_key_digest),
            key_generation: self.key_generation,
            subscription_status: self.subscription_status.into(),
            email_verified: self.email_verified,
            usage: Usage { counts: self.usage, last_request_at: self.last_request_at },
        }
    }
}

impl From<&User> for MeterItem {
    fn from(u: &User) -> Self {
        Self {
            pk: meter_pk(&u.id),
            master_key_digest: u.master_key.digest.0.clone(),
            key_generation: u.key_generation,
            subscription_status: u.subscription_status.as_str().to_owned(),
            email_verified: u.email_verified,
            usage: u.usage.counts.clone(),
            last_request_at: u.usage.last_request_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmailItem {
    pub(crate) pk: String,
    pub(crate) user_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyItem {
    pub(crate) pk: String,
    pub(crate) user_id: String,
    pub(crate) kind: KeyKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_key_id: Option<String>,
    pub(crate) generation: u64,
    #[serde(default, deserialize_with = "rfc3339::optional", skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) monthly_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) daily_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) scoped_client_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) scoped_user_ids: BTreeMap<String, String>,
    /// The grant in one character per scope (`scopes::Grant::code`; `""`: none), which the
    /// counting condition tests with `contains`; absent for a key made before scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scopes: Option<String>,
    /// The scoped key's request counters by period (always present, see `UserItem`).
    #[serde(default)]
    pub(crate) usage: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScopedKeyItem {
    pub(crate) user_id: String,
    pub(crate) key_id: String,
    pub(crate) name: String,
    pub(crate) key_digest: String,
    pub(crate) key_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scoped_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) scoped_client_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) scoped_user_ids: BTreeMap<String, String>,
    /// The scope names; absent for a key made before scopes (unrestricted). A list, not a
    /// set, so that it can be empty; the counting condition reads it with `contains`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) monthly_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) daily_limit: Option<u64>,
    #[serde(default, deserialize_with = "rfc3339::optional", skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) foundry_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) foundry_username: Option<String>,
    #[serde(default, with = "serde_bytes", skip_serializing_if = "Option::is_none")]
    pub(crate) foundry_password_ciphertext: Option<Vec<u8>>,
    pub(crate) enabled: bool,
    pub(crate) generation: u64,
    #[serde(deserialize_with = "rfc3339::required")]
    pub(crate) created_at: DateTime<Utc>,
    #[serde(deserialize_with = "rfc3339::required")]
    pub(crate) updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenItem {
    pub(crate) token_hash: String,
    pub(crate) user_id: String,
    /// Epoch seconds: also the table's TTL attribute.
    pub(crate) expires_at: i64,
    /// `verify-email` for an email-verification token; absent for a reset token (every
    /// token stored before verification existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) purpose: Option<String>,
}

/// The stored marker of a verification token in the reset tokens table.
const VERIFY_EMAIL: &str = "verify-email";

pub(crate) fn user_pk(id: &str) -> String {
    format!("USER#{id}")
}

pub(crate) fn email_pk(normalised: &str) -> String {
    format!("EMAIL#{normalised}")
}

pub(crate) fn meter_pk(user_id: &str) -> String {
    format!("METER#{user_id}")
}

pub(crate) fn key_pk(digest: &KeyDigest) -> String {
    format!("KEY#{}", digest.0)
}

impl From<&User> for UserItem {
    fn from(u: &User) -> Self {
        Self {
            pk: user_pk(&u.id),
            id: u.id.clone(),
            email: u.email.clone(),
            email_normalised: u.email_normalised.clone(),
            password_hash: u.password_hash.expose().to_owned(),
            master_key_digest: u.master_key.digest.0.clone(),
            master_key_ciphertext: u.master_key.ciphertext.clone(),
            master_key_prefix: u.master_key.prefix.clone(),
            master_key_created_at: u.master_key.created_at,
            key_generation: u.key_generation,
            reset_token_digest: u.reset_token_digest.clone(),
            email_verified: u.email_verified,
            verify_token_digest: u.verification_token_digest.clone(),
            scoped_key_count: u.scoped_key_count,
            subscription_status: u.subscription_status.as_str().to_owned(),
            stripe_customer_id: u.stripe_customer_id.clone(),
            subscription_id: u.subscription_id.clone(),
            usage: u.usage.counts.clone(),
            last_request_at: u.usage.last_request_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<UserItem> for User {
    fn from(i: UserItem) -> Self {
        Self {
            id: i.id,
            email: i.email,
            email_normalised: i.email_normalised,
            password_hash: i.password_hash.into(),
            master_key: StoredMasterKey {
                digest: KeyDigest(i.master_key_digest),
                ciphertext: i.master_key_ciphertext,
                prefix: i.master_key_prefix,
                created_at: i.master_key_created_at,
            },
            key_generation: i.key_generation,
            reset_token_digest: i.reset_token_digest,
            email_verified: i.email_verified,
            verification_token_digest: i.verify_token_digest,
            scoped_key_count: i.scoped_key_count,
            subscription_status: i.subscription_status.into(),
            stripe_customer_id: i.stripe_customer_id,
            subscription_id: i.subscription_id,
            usage: Usage { counts: i.usage, last_request_at: i.last_request_at },
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

impl From<&KeyEntry> for KeyItem {
    fn from(e: &KeyEntry) -> Self {
        Self {
            pk: key_pk(&e.digest),
            user_id: e.user_id.clone(),
            kind: e.kind,
            scoped_key_id: e.scoped_key_id.clone(),
            generation: e.generation,
            expires_at: e.expires_at,
            enabled: e.enabled,
            monthly_limit: e.monthly_limit,
            daily_limit: e.daily_limit,
            scoped_client_id: e.scoped_client_id.clone(),
            scoped_user_id: e.scoped_user_id.clone(),
            scoped_client_ids: e.scoped_client_ids.clone(),
            scoped_user_ids: e.scoped_user_ids.clone(),
            scopes: e.grant.code(),
            usage: e.usage.counts.clone(),
        }
    }
}

impl From<&ScopedKey> for ScopedKeyItem {
    fn from(k: &ScopedKey) -> Self {
        Self {
            user_id: k.user_id.clone(),
            key_id: k.id.clone(),
            name: k.name.clone(),
            key_digest: k.digest.0.clone(),
            key_prefix: k.prefix.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            scoped_client_ids: k.scoped_client_ids.clone(),
            scoped_user_ids: k.scoped_user_ids.clone(),
            scopes: k.grant.stored(),
            monthly_limit: k.monthly_limit,
            daily_limit: k.daily_limit,
            expires_at: k.expires_at,
            foundry_url: k.foundry_url.clone(),
            foundry_username: k.foundry_username.clone(),
            foundry_password_ciphertext: k.foundry_password_ciphertext.clone(),
            enabled: k.enabled,
            generation: k.generation,
            created_at: k.created_at,
            updated_at: k.updated_at,
        }
    }
}

impl From<ScopedKeyItem> for ScopedKey {
    fn from(i: ScopedKeyItem) -> Self {
        Self {
            id: i.key_id,
            user_id: i.user_id,
            name: i.name,
            digest: KeyDigest(i.key_digest),
            prefix: i.key_prefix,
            scoped_client_id: i.scoped_client_id,
            scoped_user_id: i.scoped_user_id,
            scoped_client_ids: i.scoped_client_ids,
            scoped_user_ids: i.scoped_user_ids,
            grant: Grant::from_stored(i.scopes.as_deref()),
            monthly_limit: i.monthly_limit,
            daily_limit: i.daily_limit,
            expires_at: i.expires_at,
            foundry_url: i.foundry_url,
            foundry_username: i.foundry_username,
            foundry_password_ciphertext: i.foundry_password_ciphertext,
            enabled: i.enabled,
            generation: i.generation,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

impl KeyItem {
    /// The attributes of a scoped key's entry that decide its requests, copied from the
    /// key: what changing the key's settings rewrites (the counters stay).
    pub(crate) const RESTRICTIONS: &'static [&'static str] = &[
        "expiresAt",
        "enabled",
        "monthlyLimit",
        "dailyLimit",
        "scopedClientId",
        "scopedUserId",
        "scopedClientIds",
        "scopedUserIds",
        "scopes",
    ];

    pub(crate) fn into_entry(self, digest: &KeyDigest) -> KeyEntry {
        KeyEntry {
            digest: digest.clone(),
            user_id: self.user_id,
            kind: self.kind,
            scoped_key_id: self.scoped_key_id,
            generation: self.generation,
            expires_at: self.expires_at,
            enabled: self.enabled,
            monthly_limit: self.monthly_limit,
            daily_limit: self.daily_limit,
            scoped_client_id: self.scoped_client_id,
            scoped_user_id: self.scoped_user_id,
            scoped_client_ids: self.scoped_client_ids,
            scoped_user_ids: self.scoped_user_ids,
            grant: Grant::from_code(self.scopes.as_deref()),
            usage: Usage { counts: self.usage, last_request_at: None },
        }
    }

    /// The index entry of an account's master key.
    pub(crate) fn master(user_id: &str, digest: &KeyDigest, generation: u64) -> Self {
        Self::from(&KeyEntry::master(user_id, digest, generation))
    }
}

impl TokenItem {
    pub(crate) fn from_stored(token: &StoredResetToken) -> Self {
        Self {
            token_hash: token.digest.clone(),
            user_id: token.user_id.clone(),
            expires_at: token.expires_at.timestamp(),
            purpose: match token.purpose {
                Purpose::Reset => None,
                Purpose::VerifyEmail => Some(VERIFY_EMAIL.to_owned()),
            },
        }
    }

    pub(crate) fn into_stored(self) -> Option<StoredResetToken> {
        let expires_at = Utc.timestamp_opt(self.expires_at, 0).single()?;
        let purpose = match self.purpose.as_deref() {
            None => Purpose::Reset,
            Some(VERIFY_EMAIL) => Purpose::VerifyEmail,
            // A marker this version does not know: never redeemable as either kind.
            Some(_) => return None,
        };
        Some(StoredResetToken { digest: self.token_hash, user_id: self.user_id, expires_at, purpose })
    }
}

/// One security event in its account's log (activity table: `userId` + `at`, the event's
/// sort key; `expiresAt`, epoch seconds, its TTL attribute).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActivityItem {
    pub(crate) user_id: String,
    pub(crate) at: String,
    pub(crate) event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_agent: Option<String>,
    pub(crate) expires_at: i64,
}

impl From<&Event> for ActivityItem {
    fn from(event: &Event) -> Self {
        Self {
            user_id: event.user_id.clone(),
            at: event.sort_key(),
            event: event.kind.name().to_owned(),
            subject: event.subject.clone(),
            request_id: event.origin.request_id.clone(),
            address: event.origin.address.clone(),
            user_agent: event.origin.user_agent.clone(),
            expires_at: event.expires_at().timestamp(),
        }
    }
}

impl ActivityItem {
    /// The event, unless it expired at `now` (a TTL deletes late) or is of a kind this
    /// version does not know.
    pub(crate) fn into_event(self, now: DateTime<Utc>) -> Option<Event> {
        if self.expires_at <= now.timestamp() {
            return None;
        }
        let (time, id) = self.at.split_once('#')?;
        Some(Event {
            user_id: self.user_id,
            at: DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc),
            id: id.to_owned(),
            kind: Activity::from_name(&self.event)?,
            subject: self.subject,
            origin: Origin { request_id: self.request_id, address: self.address, user_agent: self.user_agent },
        })
    }
}
