//! What a relay row means here: the relay's columns (the Node relay's or the relay 3.x's)
//! read into an account to import, with every value checked, and the Foundry passwords
//! decrypted with the relay's `CREDENTIALS_ENCRYPTION_KEY`. Nothing here writes or seals.

use crate::source::Row;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use sha2::{Digest as _, Sha256};
use shared::domain::email::Email;
use shared::domain::keys::{ApiKey, KeyDigest};
use shared::domain::scoped::{self, is_http_url, MAX_TEXT_CHARS};
use shared::domain::scopes::{Grant, Scope, ScopeSet};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The highest bcrypt cost imported: every login until the first one here (which moves
/// the hash to argon2id) runs it, and cost 15 is already seconds of CPU.
pub const MAX_BCRYPT_COST: u32 = 14;

/// Why a row was skipped or could not be imported: what the summary counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Skipped: the account is already here with this very master key (an earlier run).
    AlreadyImported,
    /// Skipped: the email belongs to another account here (or to an earlier relay row).
    EmailTaken,
    InvalidEmail,
    /// Skipped: the relay 3.x account is disabled (`disabled = 1`).
    Disabled,
    /// The password column is not a bcrypt hash: nobody could ever log in with it.
    NotBcrypt,
    /// A bcrypt hash above [`MAX_BCRYPT_COST`].
    BcryptCostTooHigh,
    InvalidMasterKey,
    InvalidScopedKey,
    /// A relay 3.x digest column (`apiKeyHash`, `keyHash`) that is not 64 lowercase hex
    /// characters.
    InvalidDigest,
    /// A relay 3.x key names a scope this service does not know (named in the detail): the
    /// key is refused rather than imported with less or more than it had.
    UnknownScope,
    /// A value that cannot be read (the column is named in the detail).
    InvalidValue,
    /// A scoped key has a Foundry password and no credentials key was given.
    NoCredentialsKey,
    FoundryPasswordUndecryptable,
    /// A key of the account is already in use here by another account.
    KeyTaken,
    /// An `ApiKeys` row whose `userId` names no `Users` row.
    NoSuchUser,
    /// An `ApiKeys` or `Credentials` row of an account that was not imported (the
    /// account's row says why).
    AccountNotImported,
    /// Skipped: a relay 3.x credential that no imported scoped key's client uses.
    ServesNoKey,
    /// The store or the cipher failed.
    WriteFailed,
}

impl Reason {
    pub fn is_skip(self) -> bool {
        matches!(self, Reason::AlreadyImported | Reason::EmailTaken | Reason::Disabled | Reason::ServesNoKey)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::AlreadyImported => "already imported",
            Reason::EmailTaken => "email belongs to another account",
            Reason::InvalidEmail => "invalid email",
            Reason::Disabled => "disabled",
            Reason::NotBcrypt => "password is not a bcrypt hash",
            Reason::BcryptCostTooHigh => return write!(f, "bcrypt cost above {MAX_BCRYPT_COST}"),
            Reason::InvalidMasterKey => "apiKey is not 64 hex characters",
            Reason::InvalidScopedKey => "scoped key is not 64 hex characters",
            Reason::InvalidDigest => "key digest is not 64 lowercase hex characters",
            Reason::UnknownScope => "unknown scope",
            Reason::InvalidValue => "unreadable value",
            Reason::NoCredentialsKey => "Foundry password but no credentials key given",
            Reason::FoundryPasswordUndecryptable => "Foundry password does not decrypt",
            Reason::KeyTaken => "key already in use by another account",
            Reason::NoSuchUser => "row of no user",
            Reason::AccountNotImported => "its account was not imported",
            Reason::ServesNoKey => "serves no scoped key's client",
            Reason::WriteFailed => "write failed",
        })
    }
}

/// A reason with the row it concerns and what exactly was wrong; never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub detail: Option<String>,
}

impl Problem {
    pub fn new(reason: Reason) -> Self {
        Self { reason, detail: None }
    }

    pub fn with(reason: Reason, detail: impl Into<String>) -> Self {
        Self { reason, detail: Some(detail.into()) }
    }
}

/// The relay's `CREDENTIALS_ENCRYPTION_KEY`: 32 bytes, given as 64 hex characters or as
/// base64, as the relay accepts it.
pub struct CredentialsKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CredentialsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsKey(..)")
    }
}

impl CredentialsKey {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        };
        let bytes = Zeroizing::new(bytes.ok_or("the credentials key is neither hex nor base64")?);
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err("the credentials key is not 32 bytes long");
        }
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// The relay's sealing: AES-256-GCM, hex ciphertext, 12-byte IV and 16-byte tag in
    /// hex, no associated data.
    fn open(&self, ciphertext: &str, iv: &str, tag: &str) -> Option<Zeroizing<String>> {
        let iv = hex::decode(iv.trim()).ok().filter(|iv| iv.len() == 12)?;
        let tag = hex::decode(tag.trim()).ok().filter(|tag| tag.len() == 16)?;
        let mut sealed = hex::decode(ciphertext.trim()).ok()?;
        sealed.extend_from_slice(&tag);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_slice()));
        let plain = Zeroizing::new(cipher.decrypt(Nonce::from_slice(&iv), sealed.as_slice()).ok()?);
        std::str::from_utf8(&plain).ok().map(|s| Zeroizing::new(s.to_owned()))
    }
}

/// The account's master key as the relay kept it.
pub enum PlannedMaster {
    /// The Node relay's key in plain text: sealed here, so login shows it.
    Key(ApiKey),
    /// The relay 3.x's SHA-256 digest: the key works here, and login cannot show it.
    Digest(KeyDigest),
}

impl PlannedMaster {
    pub fn digest(&self) -> KeyDigest {
        match self {
            PlannedMaster::Key(key) => key.digest(),
            PlannedMaster::Digest(digest) => digest.clone(),
        }
    }
}

/// A relay user read and checked, ready to be sealed and written.
pub struct PlannedUser {
    pub relay_id: String,
    pub email: Email,
    pub password_hash: String,
    pub master_key: PlannedMaster,
    pub subscription_status: String,
    pub stripe_customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub requests_today: u64,
    pub requests_this_month: u64,
    pub last_request_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub scoped_keys: Vec<PlannedKey>,
}

/// A relay scoped key read and checked, its Foundry password in plain text (wiped when
/// dropped) until it is sealed.
pub struct PlannedKey {
    pub relay_id: String,
    pub digest: KeyDigest,
    /// The key's first characters; empty when the relay kept only its digest.
    pub prefix: String,
    pub name: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    pub scoped_client_ids: Vec<String>,
    pub scoped_user_ids: BTreeMap<String, String>,
    pub grant: Grant,
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub requests_today: u64,
    pub requests_this_month: u64,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub foundry_password: Option<Zeroizing<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PlannedKey {
    /// The Foundry clients the key serves: its list, or else its one client.
    pub fn clients(&self) -> Vec<&str> {
        if self.scoped_client_ids.is_empty() {
            self.scoped_client_id.iter().map(String::as_str).collect()
        } else {
            self.scoped_client_ids.iter().map(String::as_str).collect()
        }
    }
}

/// Reads a `Users` row and its `ApiKeys` rows. Counters are kept only when the relay's
/// `lastRequestDate` falls in `now`'s UTC day (requests today) or month.
pub fn plan_user(
    user: &Row,
    keys: &[&Row],
    credentials: Option<&CredentialsKey>,
    now: DateTime<Utc>,
) -> Result<PlannedUser, Problem> {
    let email = Email::parse(user.get("email").unwrap_or_default()).map_err(|_| Problem::new(Reason::InvalidEmail))?;
    let password_hash = bcrypt_hash(user)?;
    let master_key = legacy_key(user.get("apiKey")).ok_or(Problem::new(Reason::InvalidMasterKey))?;
    let scoped_keys = keys.iter().map(|row| plan_key(row, credentials, now)).collect::<Result<Vec<_>, _>>()?;
    plan_account(user, email, password_hash, PlannedMaster::Key(master_key), scoped_keys, now)
}

/// Reads a relay 3.x `Users` row and its `ApiKeys` rows. A disabled account is not
/// imported; a key row that does not pass is refused alone (returned with its problem)
/// and the account imported without it. An account whose key must be rotated
/// (`apiKeyRotationRequired`) is imported with a master key nobody holds: its owner logs
/// in and regenerates it.
#[allow(clippy::type_complexity)]
pub fn plan_user_v3(
    user: &Row,
    keys: &[&Row],
    now: DateTime<Utc>,
) -> Result<(PlannedUser, Vec<(String, Problem)>), Problem> {
    if flag(user, "disabled", false)? {
        return Err(Problem::new(Reason::Disabled));
    }
    let email = Email::parse(user.get("email").unwrap_or_default()).map_err(|_| Problem::new(Reason::InvalidEmail))?;
    let password_hash = bcrypt_hash(user)?;
    let digest = relay_digest(user, "apiKeyHash")?.ok_or(Problem::with(Reason::InvalidDigest, "apiKeyHash"))?;
    let master = if flag(user, "apiKeyRotationRequired", false)? { unusable_digest(&digest) } else { digest };
    let mut planned = Vec::new();
    let mut refused = Vec::new();
    for row in keys {
        let relay_id = row.get("id").unwrap_or_default().to_owned();
        match plan_key_v3(row, now) {
            Ok(key) => planned.push(key),
            Err(problem) => refused.push((relay_id, problem)),
        }
    }
    let account = plan_account(user, email, password_hash, PlannedMaster::Digest(master), planned, now)?;
    Ok((account, refused))
}

/// What both relays' `Users` rows share: counters (kept only when `lastRequestDate` falls
/// in `now`'s UTC day or month), billing and dates.
fn plan_account(
    user: &Row,
    email: Email,
    password_hash: String,
    master_key: PlannedMaster,
    scoped_keys: Vec<PlannedKey>,
    now: DateTime<Utc>,
) -> Result<PlannedUser, Problem> {
    let last_request_at = optional_time(user, "lastRequestDate")?;
    let today = last_request_at.is_some_and(|at| at.date_naive() == now.date_naive());
    let this_month = last_request_at.is_some_and(|at| same_month(at, now));
    let created_at = required_time(user, "createdAt")?;
    Ok(PlannedUser {
        relay_id: user.get("id").unwrap_or_default().to_owned(),
        email,
        password_hash,
        master_key,
        subscription_status: text(user, "subscriptionStatus").unwrap_or_else(|| "free".to_owned()),
        stripe_customer_id: text(user, "stripeCustomerId"),
        subscription_id: text(user, "subscriptionId"),
        requests_today: if today { count(user, "requestsToday")? } else { 0 },
        requests_this_month: if this_month { count(user, "requestsThisMonth")? } else { 0 },
        last_request_at,
        created_at,
        updated_at: optional_time(user, "updatedAt")?.unwrap_or(created_at),
        scoped_keys,
    })
}

fn plan_key(row: &Row, credentials: Option<&CredentialsKey>, now: DateTime<Utc>) -> Result<PlannedKey, Problem> {
    let relay_id = row.get("id").unwrap_or_default().to_owned();
    let in_key = |problem: Problem| Problem {
        reason: problem.reason,
        detail: Some(match problem.detail {
            Some(detail) => format!("ApiKeys id={relay_id}: {detail}"),
            None => format!("ApiKeys id={relay_id}"),
        }),
    };
    let key = legacy_key(row.get("key")).ok_or_else(|| in_key(Problem::new(Reason::InvalidScopedKey)))?;
    let last_request_at = optional_time(row, "lastRequestDate").map_err(in_key)?;
    let today = last_request_at.is_some_and(|at| at.date_naive() == now.date_naive());
    let daily_limit = match row.get("dailyLimit").map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| in_key(Problem::with(Reason::InvalidValue, "dailyLimit")))?,
        ),
    };
    let sealed = text(row, "encryptedFoundryPassword");
    let foundry_password = match (sealed, credentials) {
        (None, _) => None,
        (Some(_), None) => return Err(in_key(Problem::new(Reason::NoCredentialsKey))),
        (Some(sealed), Some(credentials)) => Some(
            credentials
                .open(
                    &sealed,
                    row.get("passwordIv").unwrap_or_default(),
                    row.get("passwordAuthTag").unwrap_or_default(),
                )
                .ok_or_else(|| in_key(Problem::new(Reason::FoundryPasswordUndecryptable)))?,
        ),
    };
    if foundry_password.as_ref().is_some_and(|password| password.chars().count() > MAX_TEXT_CHARS) {
        return Err(in_key(Problem::with(Reason::InvalidValue, "encryptedFoundryPassword (too long)")));
    }
    let foundry_url = text(row, "foundryUrl");
    if foundry_url.as_deref().is_some_and(|url| !is_http_url(url)) {
        return Err(in_key(Problem::with(Reason::InvalidValue, "foundryUrl")));
    }
    let enabled = flag(row, "enabled", true).map_err(in_key)?;
    let created_at = required_time(row, "createdAt").map_err(in_key)?;
    Ok(PlannedKey {
        digest: key.digest(),
        prefix: key.display_prefix(),
        name: key_name(row).map_err(in_key)?,
        scoped_client_id: text(row, "scopedClientId")
            .map(|id| bounded(&id, "scopedClientId"))
            .transpose()
            .map_err(in_key)?,
        scoped_user_id: text(row, "scopedUserId").map(|id| bounded(&id, "scopedUserId")).transpose().map_err(in_key)?,
        scoped_client_ids: Vec::new(),
        scoped_user_ids: BTreeMap::new(),
        // The Node relay's keys predate scopes: they keep doing all they did.
        grant: Grant::Unrestricted,
        monthly_limit: None,
        daily_limit,
        requests_today: if today { count(row, "requestsToday").map_err(in_key)? } else { 0 },
        requests_this_month: 0,
        foundry_url,
        foundry_username: text(row, "foundryUsername")
            .map(|username| bounded(&username, "foundryUsername"))
            .transpose()
            .map_err(in_key)?,
        foundry_password,
        expires_at: optional_time(row, "expiresAt").map_err(in_key)?,
        enabled,
        created_at,
        updated_at: optional_time(row, "updatedAt").map_err(in_key)?.unwrap_or(created_at),
        relay_id,
    })
}

/// A relay 3.x `ApiKeys` row: its digest (`keyHash`, or the SHA-256 of `key` when that is
/// empty), its scopes, clients and users, checked as `scoped::create` checks a new key.
fn plan_key_v3(row: &Row, now: DateTime<Utc>) -> Result<PlannedKey, Problem> {
    let key = legacy_key(row.get("key"));
    let digest = match relay_digest(row, "keyHash")? {
        Some(digest) => digest,
        None => key.as_ref().map(ApiKey::digest).ok_or(Problem::with(Reason::InvalidScopedKey, "keyHash is empty"))?,
    };
    // The plain key of an old row shows its first characters, when it is the key indeed.
    let prefix = key.filter(|key| key.digest() == digest).map(|key| key.display_prefix()).unwrap_or_default();
    let name = key_name(row)?;
    let grant = Grant::Only(scopes(row.get("scopes").unwrap_or_default())?);
    let listed = row
        .get("scopedClientIds")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    let scoped_client_ids =
        scoped::client_ids(listed).map_err(|_| Problem::with(Reason::InvalidValue, "scopedClientIds"))?;
    let scoped_user_ids = user_map(row.get("scopedUserIds").unwrap_or_default())?;
    let monthly_limit = match row.get("monthlyLimit").map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            Some(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(Problem::with(Reason::InvalidValue, "monthlyLimit"))?)
        }
    };
    let created_at = required_time(row, "createdAt")?;
    // The key's counter is this month's when the relay last reset it (or made the key)
    // this month.
    let counted_since = optional_time(row, "lastResetDate")?.unwrap_or(created_at);
    let requests_this_month = if same_month(counted_since, now) { count(row, "requestsThisMonth")? } else { 0 };
    Ok(PlannedKey {
        relay_id: row.get("id").unwrap_or_default().to_owned(),
        digest,
        prefix,
        name,
        scoped_client_id: text(row, "scopedClientId").map(|id| bounded(&id, "scopedClientId")).transpose()?,
        scoped_user_id: text(row, "scopedUserId").map(|id| bounded(&id, "scopedUserId")).transpose()?,
        scoped_client_ids,
        scoped_user_ids,
        grant,
        monthly_limit,
        daily_limit: None,
        requests_today: 0,
        requests_this_month,
        foundry_url: None,
        foundry_username: None,
        foundry_password: None,
        expires_at: optional_time(row, "expiresAt")?,
        enabled: flag(row, "enabled", true)?,
        created_at,
        updated_at: optional_time(row, "updatedAt")?.unwrap_or(created_at),
    })
}

/// A relay 3.x credential read and checked, its Foundry password in plain text (wiped
/// when dropped).
pub struct PlannedCredential {
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub foundry_password: Zeroizing<String>,
}

/// Reads a `Credentials` row: its password opened with the relay's key, its URL and
/// username checked as `scoped::create` checks them.
pub fn plan_credential(row: &Row, credentials: Option<&CredentialsKey>) -> Result<PlannedCredential, Problem> {
    let credentials = credentials.ok_or(Problem::new(Reason::NoCredentialsKey))?;
    let foundry_password = credentials
        .open(
            row.get("encryptedFoundryPassword").unwrap_or_default(),
            row.get("passwordIv").unwrap_or_default(),
            row.get("passwordAuthTag").unwrap_or_default(),
        )
        .ok_or(Problem::new(Reason::FoundryPasswordUndecryptable))?;
    if foundry_password.chars().count() > MAX_TEXT_CHARS {
        return Err(Problem::with(Reason::InvalidValue, "encryptedFoundryPassword (too long)"));
    }
    let foundry_url = text(row, "foundryUrl");
    if foundry_url.as_deref().is_some_and(|url| !is_http_url(url)) {
        return Err(Problem::with(Reason::InvalidValue, "foundryUrl"));
    }
    let foundry_username = text(row, "foundryUsername").map(|u| bounded(&u, "foundryUsername")).transpose()?;
    Ok(PlannedCredential { foundry_url, foundry_username, foundry_password })
}

/// The relay 3.x's scope list: comma-separated, empty for none. A name outside the
/// catalogue refuses the key (with the name: scope names are not secret).
fn scopes(list: &str) -> Result<ScopeSet, Problem> {
    let mut names = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        names.push(Scope::parse(name).ok_or_else(|| {
            let shown: String = name.chars().take(40).collect();
            Problem::with(Reason::UnknownScope, format!("scopes: {shown:?}"))
        })?);
    }
    Ok(ScopeSet::of(names))
}

/// The relay 3.x's `scopedUserIds`: a JSON object of client id to Foundry user id; empty
/// or null for none.
fn user_map(json: &str) -> Result<BTreeMap<String, String>, Problem> {
    let invalid = || Problem::with(Reason::InvalidValue, "scopedUserIds");
    let json = json.trim();
    if json.is_empty() || json == "null" {
        return Ok(BTreeMap::new());
    }
    let serde_json::Value::Object(object) = serde_json::from_str(json).map_err(|_| invalid())? else {
        return Err(invalid());
    };
    let mut map = BTreeMap::new();
    for (client, user) in object {
        let serde_json::Value::String(user) = user else {
            return Err(invalid());
        };
        let (client, user) = (client.trim(), user.trim());
        if client.is_empty() || user.is_empty() {
            continue;
        }
        map.insert(client.to_owned(), user.to_owned());
    }
    scoped::user_ids(map).map_err(|_| invalid())
}

/// A key's `name`, by `scoped::create`'s rule (given, not too long).
fn key_name(row: &Row) -> Result<String, Problem> {
    scoped::name(row.get("name")).map_err(|_| Problem::with(Reason::InvalidValue, "name"))
}

/// A free-text value within `scoped::create`'s bound.
fn bounded(value: &str, column: &'static str) -> Result<String, Problem> {
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(Problem::with(Reason::InvalidValue, column));
    }
    Ok(value.to_owned())
}

/// A relay 3.x digest column: `None` when empty, refused when not 64 lowercase hex.
fn relay_digest(row: &Row, column: &'static str) -> Result<Option<KeyDigest>, Problem> {
    match row.get(column).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(Some(KeyDigest(v.to_owned())))
        }
        Some(_) => Err(Problem::with(Reason::InvalidDigest, column)),
    }
}

/// The master key digest of an account whose key must be rotated: derived from the
/// relay's digest (so that a second run recognises the account) through text that no key
/// is, so that no key presented here hashes to it.
pub fn unusable_digest(relay: &KeyDigest) -> KeyDigest {
    let mut hash = Sha256::new();
    hash.update(b"foundry-auth import-relay: rotation required\0");
    hash.update(relay.0.as_bytes());
    KeyDigest(hex::encode(hash.finalize()))
}

/// The bcrypt hash of a `Users` row, as the relays write it (`$2a$`, `$2b$`, `$2y$`, a
/// two-digit cost, 22 characters of salt and 31 of hash), of a cost this service will run
/// at login.
fn bcrypt_hash(user: &Row) -> Result<String, Problem> {
    let hash = user.get("password").unwrap_or_default();
    if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        return Err(Problem::new(Reason::NotBcrypt));
    }
    let cost = hash.get(4..6).and_then(|c| c.parse::<u32>().ok()).ok_or(Problem::new(Reason::NotBcrypt))?;
    let salt_and_hash = hash.get(7..).unwrap_or_default();
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    // Below cost 4 (bcrypt's least) or cut short, no password would ever match it.
    if hash.get(6..7) != Some("$") || cost < 4 || salt_and_hash.len() != 53 || !salt_and_hash.bytes().all(base64) {
        return Err(Problem::new(Reason::NotBcrypt));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(Problem::new(Reason::BcryptCostTooHigh));
    }
    Ok(hash.to_owned())
}

/// A 0/1 (SQLite) or boolean (PostgreSQL) column; NULL is `default`.
fn flag(row: &Row, column: &'static str, default: bool) -> Result<bool, Problem> {
    match row.get(column).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "1" | "true" | "t") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "f") => Ok(false),
        Some(_) => Err(Problem::with(Reason::InvalidValue, column)),
    }
}

fn same_month(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (at.year(), at.month()) == (now.year(), now.month())
}

/// The relay's keys are 64 hex characters, accepted here as they are.
fn legacy_key(value: Option<&str>) -> Option<ApiKey> {
    ApiKey::parse(value?.trim()).filter(ApiKey::is_legacy)
}

/// Trimmed text; empty is absent.
fn text(row: &Row, column: &str) -> Option<String> {
    row.get(column).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

fn count(row: &Row, column: &'static str) -> Result<u64, Problem> {
    match row.get(column).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v.parse::<u64>().map_err(|_| Problem::with(Reason::InvalidValue, column)),
    }
}

fn required_time(row: &Row, column: &'static str) -> Result<DateTime<Utc>, Problem> {
    optional_time(row, column)?.ok_or(Problem::with(Reason::InvalidValue, column))
}

fn optional_time(row: &Row, column: &'static str) -> Result<Option<DateTime<Utc>>, Problem> {
    match row.get(column).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse_time(v).map(Some).ok_or(Problem::with(Reason::InvalidValue, column)),
    }
}

/// The relay's dates as SQLite (`2026-11-27 18:46:46.560 +00:00`, `2026-11-27`) and
/// PostgreSQL's JSON (`2026-11-27T18:46:46.56+00:00`) write them; a time without a zone
/// is UTC, a date is its midnight UTC, a number is epoch milliseconds.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    let utc = |t: DateTime<chrono::FixedOffset>| t.with_timezone(&Utc);
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(utc(t));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f %:z", "%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(value, format) {
            return Some(utc(t));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    value.parse::<i64>().ok().and_then(DateTime::from_timestamp_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use shared::domain::scoped::{MAX_CLIENTS, MAX_NAME_CHARS};

    #[test]
    fn relay_dates_of_either_database_are_read() {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 18, 46, 46).unwrap() + chrono::Duration::milliseconds(560);
        for text in [
            "2026-11-27 18:46:46.560 +00:00",
            "2026-11-27T18:46:46.56+00:00",
            "2026-11-27 19:46:46.560+01:00",
            "2026-11-27 18:46:46.56+00",
            "2026-11-27 18:46:46.560",
            "1795805206560",
        ] {
            assert_eq!(parse_time(text), Some(t), "{text}");
        }
        assert_eq!(parse_time("2026-11-27"), Some(Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap()));
        assert_eq!(parse_time("yesterday"), None);
    }

    fn row(pairs: &[(&str, &str)]) -> Row {
        Row(pairs.iter().map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned()))).collect())
    }

    fn user(overrides: &[(&str, &str)]) -> Row {
        let key = "ab".repeat(32);
        let mut pairs = vec![
            ("id", "7"),
            ("email", " GM@Example.com "),
            ("password", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"),
            ("apiKey", key.as_str()),
            ("requestsToday", "4"),
            ("requestsThisMonth", "9"),
            ("lastRequestDate", "2026-11-27"),
            ("createdAt", "2025-01-02 03:04:05.000 +00:00"),
        ];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(overrides);
        row(&pairs)
    }

    #[test]
    fn a_relay_user_is_read_with_the_counters_of_the_current_day_and_month_only() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let planned = plan_user(&user(&[]), &[], None, now).unwrap();
        assert_eq!((planned.email.as_str(), planned.email.normalised()), ("GM@Example.com", "gm@example.com"));
        assert!(matches!(&planned.master_key, PlannedMaster::Key(key) if key.is_legacy()));
        assert_eq!((planned.requests_today, planned.requests_this_month), (4, 9));
        assert_eq!(planned.subscription_status, "free");
        assert_eq!(planned.updated_at, planned.created_at);
        let later_that_month = plan_user(&user(&[]), &[], None, now + chrono::Duration::days(2)).unwrap();
        assert_eq!((later_that_month.requests_today, later_that_month.requests_this_month), (0, 9));
        let next_month = plan_user(&user(&[]), &[], None, now + chrono::Duration::days(5)).unwrap();
        assert_eq!((next_month.requests_today, next_month.requests_this_month), (0, 0));
    }

    #[test]
    fn a_relay_row_that_cannot_work_here_is_refused_with_its_reason() {
        // The day of the row's `lastRequestDate`, whose counters are read.
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let reason = |overrides: &[(&str, &str)]| plan_user(&user(overrides), &[], None, now).err().map(|p| p.reason);
        assert_eq!(reason(&[("email", "not an email")]), Some(Reason::InvalidEmail));
        assert_eq!(reason(&[("password", "plaintext")]), Some(Reason::NotBcrypt));
        assert_eq!(reason(&[("password", "$argon2id$v=19$m=19456,t=2,p=1$x$y")]), Some(Reason::NotBcrypt));
        assert_eq!(reason(&[("apiKey", "frm_short")]), Some(Reason::InvalidMasterKey));
        assert_eq!(reason(&[("apiKey", &"AB".repeat(32))]), Some(Reason::InvalidMasterKey));
        assert_eq!(reason(&[("createdAt", "")]), Some(Reason::InvalidValue));
        assert_eq!(reason(&[("requestsToday", "many")]), Some(Reason::InvalidValue));

        let key = |overrides: &[(&str, &str)]| {
            let hex = "cd".repeat(32);
            let mut pairs = vec![("id", "3"), ("key", hex.as_str()), ("name", "bot"), ("createdAt", "2026-01-01")];
            pairs.extend_from_slice(overrides);
            let key = row(&pairs);
            plan_user(&user(&[]), &[&key], None, now).err()
        };
        assert_eq!(key(&[]), None);
        let problem = key(&[("dailyLimit", "0")]).unwrap();
        assert_eq!(
            (problem.reason, problem.detail.as_deref()),
            (Reason::InvalidValue, Some("ApiKeys id=3: dailyLimit"))
        );
        assert_eq!(key(&[("enabled", "maybe")]).map(|p| p.reason), Some(Reason::InvalidValue));
        assert_eq!(key(&[("key", "short")]).map(|p| p.reason), Some(Reason::InvalidScopedKey));
        assert_eq!(key(&[("encryptedFoundryPassword", "00ff")]).map(|p| p.reason), Some(Reason::NoCredentialsKey));
    }

    #[test]
    fn a_relay_password_hash_too_costly_to_check_or_that_nothing_matches_is_refused() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let reason = |hash: &str| plan_user(&user(&[("password", hash)]), &[], None, now).err().map(|p| p.reason);
        let salted = "N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(reason(&format!("$2a${MAX_BCRYPT_COST}${salted}")), None);
        assert_eq!(reason(&format!("$2a$04${salted}")), None);
        for cost in [MAX_BCRYPT_COST + 1, 31] {
            assert_eq!(reason(&format!("$2a${cost}${salted}")), Some(Reason::BcryptCostTooHigh), "{cost}");
        }
        assert_eq!(reason(&format!("$2b$03${salted}")), Some(Reason::NotBcrypt), "below bcrypt's least cost");
        assert_eq!(reason(&format!("$2b$10${}", &salted[1..])), Some(Reason::NotBcrypt), "cut short");
        assert_eq!(reason(&format!("$2b$10${}!", &salted[1..])), Some(Reason::NotBcrypt), "not bcrypt's base64");
    }

    /// A Node relay user with one key row made of `overrides` over a valid key, planned.
    fn node_key(overrides: &[(&str, &str)], credentials: Option<&CredentialsKey>) -> Result<PlannedUser, Problem> {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let hex = "cd".repeat(32);
        let mut pairs = vec![("id", "3"), ("key", hex.as_str()), ("name", "bot"), ("createdAt", "2026-01-01")];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(overrides);
        plan_user(&user(&[]), &[&row(&pairs)], credentials, now)
    }

    #[test]
    fn a_node_relay_key_is_checked_as_a_key_created_here_is() {
        let refused = |overrides: &[(&str, &str)]| node_key(overrides, None).err().map(|p| (p.reason, p.detail));
        let invalid = |column: &str| Some((Reason::InvalidValue, Some(format!("ApiKeys id=3: {column}"))));
        let planned = node_key(&[("name", "  bot  "), ("foundryUrl", "http://10.0.0.5:30000/")], None).unwrap();
        assert_eq!(planned.scoped_keys[0].name, "bot");
        assert_eq!(refused(&[("name", "  ")]), invalid("name"));
        assert_eq!(refused(&[("name", &"n".repeat(MAX_NAME_CHARS + 1))]), invalid("name"));
        assert_eq!(refused(&[("name", &"n".repeat(MAX_NAME_CHARS))]), None);
        for junk in ["ftp://foundry.example.com", "javascript:alert(1)", "foundry.example.com"] {
            assert_eq!(refused(&[("foundryUrl", junk)]), invalid("foundryUrl"), "{junk}");
        }
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        for column in ["scopedClientId", "scopedUserId", "foundryUsername"] {
            assert_eq!(refused(&[(column, &long)]), invalid(column), "{column}");
            assert_eq!(refused(&[(column, &long[1..])]), None, "{column}");
        }
    }

    #[test]
    fn a_node_relay_key_with_a_foundry_password_longer_than_create_takes_is_refused_without_showing_it() {
        use aes_gcm::aead::AeadCore;
        let key = CredentialsKey::parse(&hex::encode([9u8; 32])).unwrap();
        let planned = |password: &str| {
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[9u8; 32]));
            let iv = Aes256Gcm::generate_nonce(&mut aes_gcm::aead::OsRng);
            let sealed = cipher.encrypt(&iv, password.as_bytes()).unwrap();
            let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
            let (c, iv, tag) = (hex::encode(ciphertext), hex::encode(iv), hex::encode(tag));
            node_key(&[("encryptedFoundryPassword", &c), ("passwordIv", &iv), ("passwordAuthTag", &tag)], Some(&key))
        };
        let fits = "p".repeat(MAX_TEXT_CHARS);
        let opened = planned(&fits).unwrap();
        assert_eq!(opened.scoped_keys[0].foundry_password.as_deref().map(String::as_str), Some(fits.as_str()));
        let long = "p".repeat(MAX_TEXT_CHARS + 1);
        let problem = planned(&long).err().unwrap();
        assert_eq!(problem.reason, Reason::InvalidValue);
        assert!(!problem.detail.unwrap_or_default().contains(&long), "the password is never shown");
    }

    #[test]
    fn the_credentials_key_is_64_hex_characters_or_base64_of_32_bytes() {
        let bytes = [7u8; 32];
        assert!(CredentialsKey::parse(&hex::encode(bytes)).is_ok());
        assert!(CredentialsKey::parse(&base64::engine::general_purpose::STANDARD.encode(bytes)).is_ok());
        assert!(CredentialsKey::parse("short").is_err());
        assert!(CredentialsKey::parse(&base64::engine::general_purpose::STANDARD.encode([7u8; 16])).is_err());
        assert_eq!(format!("{:?}", CredentialsKey::parse(&hex::encode(bytes)).unwrap()), "CredentialsKey(..)");
    }

    #[test]
    fn a_relay_sealed_password_opens_with_its_key_only() {
        use aes_gcm::aead::AeadCore;
        let key = CredentialsKey::parse(&hex::encode([9u8; 32])).unwrap();
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[9u8; 32]));
        let iv = Aes256Gcm::generate_nonce(&mut aes_gcm::aead::OsRng);
        let sealed = cipher.encrypt(&iv, b"hunter2".as_slice()).unwrap();
        let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
        let opened = key.open(&hex::encode(ciphertext), &hex::encode(iv), &hex::encode(tag)).unwrap();
        assert_eq!(opened.as_str(), "hunter2");
        let other = CredentialsKey::parse(&hex::encode([8u8; 32])).unwrap();
        assert!(other.open(&hex::encode(ciphertext), &hex::encode(iv), &hex::encode(tag)).is_none());
        assert!(key.open(&hex::encode(ciphertext), "00", &hex::encode(tag)).is_none());
    }

    fn v3_user(overrides: &[(&str, &str)]) -> Row {
        let digest = "ab".repeat(32);
        let mut pairs = vec![
            ("id", "7"),
            ("email", "gm@example.com"),
            ("password", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"),
            ("apiKeyHash", digest.as_str()),
            ("disabled", "0"),
            ("apiKeyRotationRequired", "0"),
            ("createdAt", "2025-01-02 03:04:05"),
        ];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(overrides);
        row(&pairs)
    }

    fn v3_key(overrides: &[(&str, &str)]) -> Result<PlannedKey, Problem> {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let digest = "cd".repeat(32);
        let mut pairs = vec![
            ("id", "3"),
            ("key", "dropped"),
            ("keyHash", digest.as_str()),
            ("name", "bot"),
            ("scopes", "entity:read"),
            ("requestsThisMonth", "5"),
            ("lastResetDate", "2026-11-01 00:00:00"),
            ("createdAt", "2026-01-01"),
        ];
        pairs.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        pairs.extend_from_slice(overrides);
        plan_key_v3(&row(&pairs), now)
    }

    #[test]
    fn a_relay_v3_user_keeps_its_digest_unless_its_key_must_be_rotated() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 20, 0, 0).unwrap();
        let digest = KeyDigest("ab".repeat(32));
        let (planned, refused) = plan_user_v3(&v3_user(&[]), &[], now).unwrap();
        assert!(matches!(&planned.master_key, PlannedMaster::Digest(d) if *d == digest));
        assert!(refused.is_empty());
        let (rotated, _) = plan_user_v3(&v3_user(&[("apiKeyRotationRequired", "1")]), &[], now).unwrap();
        let unusable = rotated.master_key.digest();
        assert_ne!(unusable, digest);
        assert_eq!(unusable, unusable_digest(&digest), "the same on every run");
        // The relay's digest presented as a key does not open it either.
        assert_ne!(ApiKey::parse(&digest.0).unwrap().digest(), unusable);
        let reason = |overrides: &[(&str, &str)]| plan_user_v3(&v3_user(overrides), &[], now).err().map(|p| p.reason);
        assert_eq!(reason(&[("disabled", "1")]), Some(Reason::Disabled));
        assert_eq!(reason(&[("disabled", "true")]), Some(Reason::Disabled));
        assert_eq!(reason(&[("apiKeyHash", &"AB".repeat(32))]), Some(Reason::InvalidDigest));
        assert_eq!(reason(&[("apiKeyHash", "")]), Some(Reason::InvalidDigest));
        let costly = "$2b$15$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(reason(&[("password", costly)]), Some(Reason::BcryptCostTooHigh));
        let fine = "$2b$14$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(reason(&[("password", fine)]), None);
        assert_eq!(reason(&[("password", "$2b$1x$abc")]), Some(Reason::NotBcrypt));
    }

    #[test]
    fn a_relay_v3_key_brings_its_scopes_clients_and_users() {
        let key = v3_key(&[
            ("scopes", " entity:read, roll:execute ,entity:read"),
            ("scopedClientId", "c0"),
            ("scopedClientIds", "c1, ,c2"),
            ("scopedUserIds", r#"{"c1": "u1", "c2": "u2"}"#),
            ("monthlyLimit", "50"),
        ])
        .unwrap();
        assert_eq!(key.grant, Grant::Only(ScopeSet::of([Scope::EntityRead, Scope::RollExecute])));
        assert_eq!(key.clients(), ["c1", "c2"], "the list decides over scopedClientId");
        assert_eq!(key.scoped_client_id.as_deref(), Some("c0"));
        assert_eq!(key.scoped_user_ids.get("c2").map(String::as_str), Some("u2"));
        assert_eq!((key.monthly_limit, key.requests_this_month), (Some(50), 5));
        assert_eq!(key.prefix, "", "the plain key column is not the key");
        assert_eq!(v3_key(&[("scopes", "")]).unwrap().grant, Grant::Only(ScopeSet::EMPTY));
        assert_eq!(v3_key(&[]).map(|k| k.clients().len()).unwrap(), 0);
        let last_month = v3_key(&[("lastResetDate", "2026-10-31 23:00:00")]).unwrap();
        assert_eq!(last_month.requests_this_month, 0);
        // An empty keyHash: the SHA-256 of the key, whose prefix shows.
        let plain = "ef".repeat(32);
        let from_key = v3_key(&[("keyHash", ""), ("key", &plain)]).unwrap();
        assert_eq!(from_key.digest, ApiKey::parse(&plain).unwrap().digest());
        assert_eq!(from_key.prefix, plain[..12]);

        let refused = |overrides: &[(&str, &str)]| v3_key(overrides).err().map(|p| (p.reason, p.detail));
        assert_eq!(
            refused(&[("scopes", "entity:read,fly")]),
            Some((Reason::UnknownScope, Some(r#"scopes: "fly""#.to_owned())))
        );
        assert_eq!(refused(&[("keyHash", "cd")]).map(|r| r.0), Some(Reason::InvalidDigest));
        assert_eq!(refused(&[("keyHash", ""), ("key", "short")]).map(|r| r.0), Some(Reason::InvalidScopedKey));
        assert_eq!(refused(&[("name", " ")]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("name", &"n".repeat(MAX_NAME_CHARS + 1))]).map(|r| r.0), Some(Reason::InvalidValue));
        let long = "c".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(refused(&[("scopedClientIds", &format!("a,{long}"))]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("scopedClientId", &long)]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("scopedUserIds", "[1]")]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("scopedUserIds", r#"{"c": 1}"#)]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("monthlyLimit", "0")]).map(|r| r.0), Some(Reason::InvalidValue));
        assert_eq!(refused(&[("enabled", "2")]).map(|r| r.0), Some(Reason::InvalidValue));
    }

    #[test]
    fn a_relay_v3_key_serves_at_most_as_many_clients_as_create_takes_each_once() {
        let clients = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
        let users = |n: usize| {
            let pairs: Vec<String> = (0..n).map(|i| format!(r#""c{i}": "u{i}""#)).collect();
            format!("{{{}}}", pairs.join(","))
        };
        let refused = |overrides: &[(&str, &str)]| v3_key(overrides).err().map(|p| (p.reason, p.detail));
        let invalid = |column: &str| Some((Reason::InvalidValue, Some(column.to_owned())));
        let most =
            v3_key(&[("scopedClientIds", &clients(MAX_CLIENTS).join(",")), ("scopedUserIds", &users(MAX_CLIENTS))])
                .unwrap();
        assert_eq!((most.scoped_client_ids.len(), most.scoped_user_ids.len()), (MAX_CLIENTS, MAX_CLIENTS));
        assert_eq!(refused(&[("scopedClientIds", &clients(MAX_CLIENTS + 1).join(","))]), invalid("scopedClientIds"));
        assert_eq!(refused(&[("scopedClientIds", "c1, c2 ,c1")]), invalid("scopedClientIds"));
        assert_eq!(refused(&[("scopedUserIds", &users(MAX_CLIENTS + 1))]), invalid("scopedUserIds"));
    }

    #[test]
    fn a_relay_v3_credential_opens_and_is_checked() {
        use aes_gcm::aead::AeadCore;
        let key = CredentialsKey::parse(&hex::encode([9u8; 32])).unwrap();
        let seal = |password: &str| {
            let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[9u8; 32]));
            let iv = Aes256Gcm::generate_nonce(&mut aes_gcm::aead::OsRng);
            let sealed = cipher.encrypt(&iv, password.as_bytes()).unwrap();
            let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
            (hex::encode(ciphertext), hex::encode(iv), hex::encode(tag))
        };
        let credential = |password: &str, url: &str| {
            let (c, iv, tag) = seal(password);
            row(&[
                ("id", "1"),
                ("foundryUrl", url),
                ("foundryUsername", "gm"),
                ("encryptedFoundryPassword", &c),
                ("passwordIv", &iv),
                ("passwordAuthTag", &tag),
            ])
        };
        let good = credential("hunter2", "https://foundry.example.com");
        let planned = plan_credential(&good, Some(&key)).unwrap();
        assert_eq!(planned.foundry_password.as_str(), "hunter2");
        assert_eq!(planned.foundry_url.as_deref(), Some("https://foundry.example.com"));
        let reason = |row: &Row, key: Option<&CredentialsKey>| plan_credential(row, key).err().map(|p| p.reason);
        assert_eq!(reason(&good, None), Some(Reason::NoCredentialsKey));
        let other = CredentialsKey::parse(&hex::encode([8u8; 32])).unwrap();
        assert_eq!(reason(&good, Some(&other)), Some(Reason::FoundryPasswordUndecryptable));
        assert_eq!(reason(&credential("x", "ftp://foundry.example.com"), Some(&key)), Some(Reason::InvalidValue));
        let long = "p".repeat(MAX_TEXT_CHARS + 1);
        let refused = plan_credential(&credential(&long, "https://f.example.com"), Some(&key)).err().unwrap();
        assert_eq!(refused.reason, Reason::InvalidValue);
        assert!(!refused.detail.unwrap_or_default().contains(&long), "the password is never shown");
    }
}
