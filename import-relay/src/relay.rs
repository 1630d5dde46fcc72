//! What a relay row means here: the relay's columns read into an account to import, with
//! every value checked, and the Foundry passwords decrypted with the relay's
//! `CREDENTIALS_ENCRYPTION_KEY`. Nothing here writes or seals.

use crate::source::Row;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use shared::domain::email::Email;
use shared::domain::keys::ApiKey;
use zeroize::Zeroizing;

/// Why a row was skipped or could not be imported: what the summary counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Skipped: the account is already here with this very master key (an earlier run).
    AlreadyImported,
    /// Skipped: the email belongs to another account here (or to an earlier relay row).
    EmailTaken,
    InvalidEmail,
    /// The password column is not a bcrypt hash: nobody could ever log in with it.
    NotBcrypt,
    InvalidMasterKey,
    InvalidScopedKey,
    /// A value that cannot be read (the column is named in the detail).
    InvalidValue,
    /// A scoped key has a Foundry password and no credentials key was given.
    NoCredentialsKey,
    FoundryPasswordUndecryptable,
    /// A key of the account is already in use here by another account.
    KeyTaken,
    /// An `ApiKeys` row whose `userId` names no `Users` row.
    NoSuchUser,
    /// The store or the cipher failed.
    WriteFailed,
}

impl Reason {
    pub fn is_skip(self) -> bool {
        matches!(self, Reason::AlreadyImported | Reason::EmailTaken)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::AlreadyImported => "already imported",
            Reason::EmailTaken => "email belongs to another account",
            Reason::InvalidEmail => "invalid email",
            Reason::NotBcrypt => "password is not a bcrypt hash",
            Reason::InvalidMasterKey => "apiKey is not 64 hex characters",
            Reason::InvalidScopedKey => "scoped key is not 64 hex characters",
            Reason::InvalidValue => "unreadable value",
            Reason::NoCredentialsKey => "Foundry password but no credentials key given",
            Reason::FoundryPasswordUndecryptable => "Foundry password does not decrypt",
            Reason::KeyTaken => "key already in use by another account",
            Reason::NoSuchUser => "scoped key of no user",
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

/// A relay user read and checked, ready to be sealed and written.
pub struct PlannedUser {
    pub relay_id: String,
    pub email: Email,
    pub password_hash: String,
    pub master_key: ApiKey,
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
    pub key: ApiKey,
    pub name: String,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    pub daily_limit: Option<u64>,
    pub requests_today: u64,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub foundry_password: Option<Zeroizing<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
    let password_hash = user.get("password").unwrap_or_default().to_owned();
    if !["$2a$", "$2b$", "$2y$"].iter().any(|p| password_hash.starts_with(p)) {
        return Err(Problem::new(Reason::NotBcrypt));
    }
    let master_key = legacy_key(user.get("apiKey")).ok_or(Problem::new(Reason::InvalidMasterKey))?;
    let last_request_at = optional_time(user, "lastRequestDate")?;
    let today = last_request_at.is_some_and(|at| at.date_naive() == now.date_naive());
    let this_month = last_request_at.is_some_and(|at| (at.year(), at.month()) == (now.year(), now.month()));
    let created_at = required_time(user, "createdAt")?;
    let scoped_keys = keys.iter().map(|row| plan_key(row, credentials, now)).collect::<Result<Vec<_>, _>>()?;
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
    let enabled = match row.get("enabled").map(|v| v.trim().to_ascii_lowercase()) {
        None => true,
        Some(v) if matches!(v.as_str(), "1" | "true" | "t") => true,
        Some(v) if matches!(v.as_str(), "0" | "false" | "f") => false,
        Some(_) => return Err(in_key(Problem::with(Reason::InvalidValue, "enabled"))),
    };
    let created_at = required_time(row, "createdAt").map_err(in_key)?;
    Ok(PlannedKey {
        key,
        name: row.get("name").unwrap_or_default().trim().to_owned(),
        scoped_client_id: text(row, "scopedClientId"),
        scoped_user_id: text(row, "scopedUserId"),
        daily_limit,
        requests_today: if today { count(row, "requestsToday").map_err(in_key)? } else { 0 },
        foundry_url: text(row, "foundryUrl"),
        foundry_username: text(row, "foundryUsername"),
        foundry_password,
        expires_at: optional_time(row, "expiresAt").map_err(in_key)?,
        enabled,
        created_at,
        updated_at: optional_time(row, "updatedAt").map_err(in_key)?.unwrap_or(created_at),
        relay_id,
    })
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
        assert!(planned.master_key.is_legacy());
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
}
