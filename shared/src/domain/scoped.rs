//! Scoped keys: keys with a name, a Foundry client/user scope, optional monthly and daily caps,
//! expiry and stored Foundry credentials, created and revoked by the master key.

use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::audit::Activity;
use crate::domain::auth::Caller;
use crate::domain::error::{AuthError, Field, PortError};
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::model::ScopedKey;
use crate::domain::ports::EncryptionContext;
use crate::domain::scopes::{Grant, ScopeSet};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;

/// The longest name of a scoped key, in characters after trimming.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest free-text field (scoped client and user, Foundry username and password).
pub const MAX_TEXT_CHARS: usize = 256;
/// The longest Foundry URL, in characters.
pub const MAX_URL_CHARS: usize = MAX_TEXT_CHARS * 8;
/// The most Foundry clients one key may serve (`scopedClientIds`, `scopedUserIds`).
pub const MAX_CLIENTS: usize = 20;

/// A scoped key as requested; empty optional strings count as absent.
#[derive(Default)]
pub struct NewScopedKey {
    pub name: Option<String>,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    pub monthly_limit: Option<u64>,
    pub daily_limit: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub foundry_url: Option<String>,
    pub foundry_username: Option<String>,
    pub foundry_password: Option<SecretString>,
    /// Scope names; `None`: the default set ([`crate::domain::scopes::Scope::DEFAULT`]).
    pub scopes: Option<Vec<String>>,
    pub scoped_client_ids: Option<Vec<String>>,
    pub scoped_user_ids: Option<BTreeMap<String, String>>,
}

/// A change to a key's settings: what is `None` stays as it is; `Some(None)` removes a cap
/// or the expiry.
#[derive(Default)]
pub struct ScopedKeyChange {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub monthly_limit: Option<Option<u64>>,
    pub daily_limit: Option<Option<u64>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub enabled: Option<bool>,
    pub scoped_client_ids: Option<Vec<String>>,
    pub scoped_user_ids: Option<BTreeMap<String, String>>,
}

/// A created key with its plaintext, shown this once.
#[derive(Debug)]
pub struct Created {
    pub record: ScopedKey,
    pub key: ApiKey,
}

pub async fn create(app: &App, caller: &Caller, new: NewScopedKey) -> Result<Created, AuthError> {
    if caller.key.kind() != KeyKind::Master {
        return Err(AuthError::ScopedKeyCannotCreateKeys);
    }
    let cap = app.settings.scoped_keys_per_account;
    if caller.user.scoped_key_count >= cap {
        return Err(AuthError::ScopedKeyLimit(cap));
    }
    let name = name(new.name.as_deref())?;
    let monthly_limit = request_cap(new.monthly_limit, Field::MonthlyLimit)?;
    let daily_limit = request_cap(new.daily_limit, Field::DailyLimit)?;
    let now = app.clock.now();
    let expires_at = expiry(new.expires_at, now)?;
    // A URL holds no white space: its length counts as sent, as the document's `maxLength` does.
    let sent_url = new.foundry_url.as_deref();
    let foundry_url = sent_url.map(str::trim).filter(|u| !u.is_empty());
    if foundry_url.is_some_and(|u| !is_http_url(u)) || sent_url.is_some_and(|u| u.chars().count() > MAX_URL_CHARS) {
        return Err(AuthError::InvalidField(Field::FoundryUrl));
    }
    let scoped_client_id = text("scopedClientId", new.scoped_client_id)?;
    let scoped_user_id = text("scopedUserId", new.scoped_user_id)?;
    let foundry_username = text("foundryUsername", new.foundry_username)?;
    let foundry_password = new.foundry_password.filter(|p| !p.expose_secret().is_empty());
    if foundry_password.as_ref().is_some_and(|p| p.expose_secret().chars().count() > MAX_TEXT_CHARS) {
        return Err(AuthError::InvalidField(Field::TooLong("foundryPassword")));
    }
    let grant = new.scopes.map_or(Ok(Grant::Only(ScopeSet::default_set())), |names| grant(&names))?;
    let scoped_client_ids = new.scoped_client_ids.map(client_ids).transpose()?.unwrap_or_default();
    let scoped_user_ids = new.scoped_user_ids.map(user_ids).transpose()?.unwrap_or_default();

    let user = &caller.user;
    let id = uuid::Uuid::new_v4().to_string();
    let key = ApiKey::generate(KeyKind::Scoped);
    let foundry_password_ciphertext = match foundry_password {
        Some(password) => Some(
            app.cipher
                .encrypt(password.expose_secret().as_bytes(), &EncryptionContext::foundry_password(&user.id, &id))
                .await?,
        ),
        None => None,
    };
    let record = ScopedKey {
        id,
        user_id: user.id.clone(),
        name,
        digest: key.digest(),
        prefix: key.display_prefix(),
        scoped_client_id,
        scoped_user_id,
        scoped_client_ids,
        scoped_user_ids,
        grant,
        monthly_limit,
        daily_limit,
        expires_at,
        foundry_url: foundry_url.map(str::to_owned),
        foundry_username,
        foundry_password_ciphertext,
        enabled: true,
        generation: user.key_generation,
        created_at: now,
        updated_at: now,
    };
    match app.store.create_scoped_key(user, &record, cap).await {
        Ok(()) => {
            activity::record_about(app, &user.id, Activity::ScopedKeyCreated, Some(&record.id)).await;
            Ok(Created { record, key })
        }
        // The master key was replaced or the account deleted while we worked, or
        // concurrent creations took the last places.
        Err(PortError::Conflict) => match app.store.user(&user.id).await? {
            Some(now) if now.key_generation == user.key_generation && now.scoped_key_count >= cap => {
                Err(AuthError::ScopedKeyLimit(cap))
            }
            Some(now) if now.key_generation == user.key_generation => {
                Err(AuthError::from(PortError::Other("scoped key id or digest already taken".into())))
            }
            _ => Err(AuthError::InvalidApiKey),
        },
        Err(e) => Err(e.into()),
    }
}

/// Changes one of the caller's keys (master key only): the same rules as [`create`]; the
/// key, its id and its counters stay. Unknown and malformed ids, other accounts' keys and
/// keys retired with an older master key are all "not found". A concurrent change is
/// read again and this one applied over it.
pub async fn update(app: &App, caller: &Caller, key_id: &str, change: ScopedKeyChange) -> Result<ScopedKey, AuthError> {
    if caller.key.kind() != KeyKind::Master {
        return Err(AuthError::MasterKeyRequired);
    }
    let name = change.name.as_deref().map(|n| name(Some(n))).transpose()?;
    let monthly_limit = change.monthly_limit.map(|c| request_cap(c, Field::MonthlyLimit)).transpose()?;
    let daily_limit = change.daily_limit.map(|c| request_cap(c, Field::DailyLimit)).transpose()?;
    let now = app.clock.now();
    let expires_at = change.expires_at.map(|at| expiry(at, now)).transpose()?;
    let grant = change.scopes.as_deref().map(grant).transpose()?;
    let scoped_client_ids = change.scoped_client_ids.map(client_ids).transpose()?;
    let scoped_user_ids = change.scoped_user_ids.map(user_ids).transpose()?;
    if uuid::Uuid::try_parse(key_id).is_err() {
        return Err(AuthError::ApiKeyNotFound);
    }
    for _ in 0..3 {
        let before = app.store.scoped_key(&caller.user.id, key_id).await?.ok_or(AuthError::ApiKeyNotFound)?;
        if before.generation != caller.user.key_generation {
            return Err(AuthError::ApiKeyNotFound);
        }
        let mut after = before.clone();
        after.name = name.clone().unwrap_or(after.name);
        after.monthly_limit = monthly_limit.unwrap_or(after.monthly_limit);
        after.daily_limit = daily_limit.unwrap_or(after.daily_limit);
        after.expires_at = expires_at.unwrap_or(after.expires_at);
        after.grant = grant.unwrap_or(after.grant);
        after.enabled = change.enabled.unwrap_or(after.enabled);
        after.scoped_client_ids = scoped_client_ids.clone().unwrap_or(after.scoped_client_ids);
        after.scoped_user_ids = scoped_user_ids.clone().unwrap_or(after.scoped_user_ids);
        // Later than the version it replaces, even on a clock that has not moved: the
        // store's condition tells versions apart by it.
        after.updated_at = now.max(before.updated_at + chrono::Duration::milliseconds(1));
        match app.store.update_scoped_key(&before, &after).await {
            Ok(()) => {
                activity::record_about(app, &caller.user.id, Activity::ScopedKeyChanged, Some(key_id)).await;
                return Ok(after);
            }
            Err(PortError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PortError::Conflict.into())
}

/// A key's name: trimmed, given, and not too long (also the rule `import-relay` reads a
/// relay key's name by).
pub fn name(raw: Option<&str>) -> Result<String, AuthError> {
    let name = raw.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AuthError::NameRequired);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AuthError::InvalidField(Field::NameTooLong));
    }
    Ok(name.to_owned())
}

/// A cap on requests: positive, or none.
fn request_cap(cap: Option<u64>, field: Field) -> Result<Option<u64>, AuthError> {
    if cap == Some(0) {
        return Err(AuthError::InvalidField(field));
    }
    Ok(cap)
}

/// An expiry: in the future, or none.
fn expiry(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, AuthError> {
    if at.is_some_and(|at| at <= now) {
        return Err(AuthError::InvalidField(Field::ExpiresAt));
    }
    Ok(at)
}

/// The scopes asked for: catalogue names, none twice (`[]`: nothing).
fn grant(names: &[String]) -> Result<Grant, AuthError> {
    ScopeSet::parse(names).map(Grant::Only).map_err(AuthError::InvalidScopes)
}

/// A Foundry client or user id in a list or map: not only whitespace, not too long, kept
/// as given (ids are opaque; the relay compares them exactly).
fn is_id(id: &str) -> bool {
    !id.trim().is_empty() && id.chars().count() <= MAX_TEXT_CHARS
}

/// Client ids: each an id, each once, not too many (also `import-relay`'s rule).
pub fn client_ids(ids: Vec<String>) -> Result<Vec<String>, AuthError> {
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    if ids.len() > MAX_CLIENTS || distinct.len() != ids.len() || !ids.iter().all(|id| is_id(id)) {
        return Err(AuthError::InvalidField(Field::ClientIds));
    }
    Ok(ids)
}

/// Client id → user id: both ids; not too many (also `import-relay`'s rule).
pub fn user_ids(map: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AuthError> {
    if map.len() > MAX_CLIENTS || !map.iter().all(|(client, user)| is_id(client) && is_id(user)) {
        return Err(AuthError::InvalidField(Field::UserIds));
    }
    Ok(map)
}

/// Deletes one of the caller's keys. Unknown ids, malformed ids and other accounts' keys
/// are all "not found".
pub async fn delete(app: &App, caller: &Caller, key_id: &str) -> Result<(), AuthError> {
    if uuid::Uuid::try_parse(key_id).is_err() {
        return Err(AuthError::ApiKeyNotFound);
    }
    let key = app.store.scoped_key(&caller.user.id, key_id).await?.ok_or(AuthError::ApiKeyNotFound)?;
    match app.store.delete_scoped_key(&key).await {
        Ok(()) => {
            activity::record_about(app, &caller.user.id, Activity::ScopedKeyDeleted, Some(key_id)).await;
            Ok(())
        }
        Err(PortError::Conflict) => Err(AuthError::ApiKeyNotFound),
        Err(e) => Err(e.into()),
    }
}

/// The grammar of a Foundry URL, unanchored, in the syntax that `regex-lite` and the
/// OpenAPI document's ECMA-262 patterns read alike, so that the service and its document
/// take exactly the same URLs: `http` or `https`; a host that is a name whose last label
/// starts with a letter (`localhost`, `foundry.example.com`), a dotted IPv4 address or a
/// bracketed IPv6 one; a port from 1 to 65535; a path of unreserved or percent-encoded
/// characters. No user info, query or fragment: a relay needs none of them.
pub const HTTP_URL: &str = concat!(
    r"https?://",
    r"(([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])",
    r"|\[[0-9A-Fa-f:.]+\])",
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",
    r"(/([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)*",
);

/// A Foundry URL this service takes: one of [`HTTP_URL`]'s grammar that is also a URL by
/// the WHATWG rules (which refuse, say, a malformed IPv6 address), and not too long.
pub fn is_http_url(candidate: &str) -> bool {
    // The tests compile it; were it ever not to, no URL would be taken (closed, not open).
    static GRAMMAR: std::sync::LazyLock<Option<regex_lite::Regex>> =
        std::sync::LazyLock::new(|| regex_lite::Regex::new(&format!("^({HTTP_URL})$")).ok());
    candidate.chars().count() <= MAX_URL_CHARS
        && GRAMMAR.as_ref().is_some_and(|grammar| grammar.is_match(candidate))
        && url::Url::parse(candidate).is_ok()
}

fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, AuthError> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT_CHARS) {
        return Err(AuthError::InvalidField(Field::TooLong(field)));
    }
    Ok(value)
}

/// A scoped key's stored Foundry login, with the password decrypted: what a relay needs to
/// start a headless Foundry session for the key.
pub struct FoundryLogin {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for FoundryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoundryLogin")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// The Foundry login of the scoped key `key_id` of account `user_id`, for the service
/// key `reader` (its fingerprint): one read and, when a password is stored, one decryption
/// under the account's and the key's encryption context. Each read is written to the log
/// as an audit line (who read whose login; never the login itself). A key gone meanwhile
/// has no login.
pub async fn foundry_login(app: &App, user_id: &str, key_id: &str, reader: &str) -> Result<FoundryLogin, AuthError> {
    let Some(key) = app.store.scoped_key(user_id, key_id).await? else {
        return Ok(FoundryLogin { url: None, username: None, password: None });
    };
    let password = match &key.foundry_password_ciphertext {
        Some(ciphertext) => {
            let context = EncryptionContext::foundry_password(user_id, key_id);
            let plaintext = app.cipher.decrypt(ciphertext, &context).await?;
            let text = std::str::from_utf8(&plaintext)
                .map_err(|_| PortError::Other(format!("the Foundry password of scoped key {key_id} is not UTF-8")))?;
            Some(zeroize::Zeroizing::new(text.to_owned()))
        }
        None => None,
    };
    tracing::info!(
        audit = "foundry-login-read",
        service_key = reader,
        user_id,
        scoped_key_id = key_id,
        has_password = password.is_some(),
        "a relay read a scoped key's Foundry login"
    );
    Ok(FoundryLogin { url: key.foundry_url, username: key.foundry_username, password })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_with_a_host_are_foundry_urls() {
        for ok in [
            "http://localhost:30000",
            "https://foundry.example.io/game",
            "http://10.0.0.5:30000/",
            "https://my-world.forge-vtt.com",
            "http://255.255.255.255:65535/a/b/",
            "http://[::1]:30000/foundry",
            "https://xn--bcher-kva.example/d%C3%A9j%C3%A0/~v1.2_x-y",
            "http://h:1",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for junk in [
            "localhost:30000",
            "ftp://example.io",
            "javascript:alert(1)",
            "not a url",
            "http://",
            "file:///etc/passwd",
            // What CI's Schemathesis run found the service taking against its document.
            "https://7KpF.MZ.ZxXgohc.TF.R.T.aya1:76//0C/R1*",
            "HTTPS://example.io",
            "https://user:pass@example.io",
            "https://example.io/?q=1",
            "https://example.io/#top",
            "http://example.io:0",
            "http://example.io:65536",
            "http://example.io:030000",
            "http://1.2.3.256",
            "http://010.0.0.1",
            "http://foundry.123",
            "http://-foundry.io",
            "http://foundry-.io",
            "http://[:::::]",
            "http://[::1",
            "https://example.io/%zz",
            " https://example.io",
        ] {
            assert!(!is_http_url(junk), "{junk}");
        }
        let long = format!("https://example.io/{}", "a".repeat(MAX_URL_CHARS));
        assert!(!is_http_url(&long));
    }

    #[test]
    fn optional_text_is_trimmed_empty_is_absent_and_long_is_refused() {
        assert_eq!(text("f", Some("  abc ".into())), Ok(Some("abc".into())));
        assert_eq!(text("f", Some("   ".into())), Ok(None));
        assert_eq!(text("f", None), Ok(None));
        assert_eq!(text("f", Some("x".repeat(MAX_TEXT_CHARS + 1))), Err(AuthError::InvalidField(Field::TooLong("f"))));
    }
}
