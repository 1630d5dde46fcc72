//! Scoped keys: keys with a name, a Foundry client/user scope, optional monthly and daily caps,
//! expiry and stored Foundry credentials, created and revoked by the master key.

use crate::domain::app::App;
use crate::domain::auth::Caller;
use crate::domain::error::{AuthError, Field, PortError};
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::model::ScopedKey;
use crate::domain::ports::EncryptionContext;
use crate::domain::scopes::{Grant, ScopeSet};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

/// The longest name of a scoped key, in characters after trimming.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest free-text field (scoped client and user, Foundry username and password).
pub const MAX_TEXT_CHARS: usize = 256;
/// The longest Foundry URL, in characters.
pub const MAX_URL_CHARS: usize = MAX_TEXT_CHARS * 8;

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
    let name = new.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(AuthError::NameRequired);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AuthError::InvalidField(Field::NameTooLong));
    }
    if new.monthly_limit == Some(0) {
        return Err(AuthError::InvalidField(Field::MonthlyLimit));
    }
    if new.daily_limit == Some(0) {
        return Err(AuthError::InvalidField(Field::DailyLimit));
    }
    let now = app.clock.now();
    if new.expires_at.is_some_and(|at| at <= now) {
        return Err(AuthError::InvalidField(Field::ExpiresAt));
    }
    let foundry_url = new.foundry_url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if foundry_url.is_some_and(|u| !is_http_url(u)) {
        return Err(AuthError::InvalidField(Field::FoundryUrl));
    }
    let scoped_client_id = text("scopedClientId", new.scoped_client_id)?;
    let scoped_user_id = text("scopedUserId", new.scoped_user_id)?;
    let foundry_username = text("foundryUsername", new.foundry_username)?;
    let foundry_password = new.foundry_password.filter(|p| !p.expose_secret().is_empty());
    if foundry_password.as_ref().is_some_and(|p| p.expose_secret().chars().count() > MAX_TEXT_CHARS) {
        return Err(AuthError::InvalidField(Field::TooLong("foundryPassword")));
    }

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
        name: name.to_owned(),
        digest: key.digest(),
        prefix: key.display_prefix(),
        scoped_client_id,
        scoped_user_id,
        scoped_client_ids: Vec::new(),
        scoped_user_ids: Default::default(),
        grant: Grant::Only(ScopeSet::default_set()),
        monthly_limit: new.monthly_limit,
        daily_limit: new.daily_limit,
        expires_at: new.expires_at,
        foundry_url: foundry_url.map(str::to_owned),
        foundry_username,
        foundry_password_ciphertext,
        enabled: true,
        generation: user.key_generation,
        created_at: now,
        updated_at: now,
    };
    match app.store.create_scoped_key(user, &record, cap).await {
        Ok(()) => Ok(Created { record, key }),
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

/// Deletes one of the caller's keys. Unknown ids, malformed ids and other accounts' keys
/// are all "not found".
pub async fn delete(app: &App, caller: &Caller, key_id: &str) -> Result<(), AuthError> {
    if uuid::Uuid::try_parse(key_id).is_err() {
        return Err(AuthError::ApiKeyNotFound);
    }
    let key = app.store.scoped_key(&caller.user.id, key_id).await?.ok_or(AuthError::ApiKeyNotFound)?;
    match app.store.delete_scoped_key(&key).await {
        Ok(()) => Ok(()),
        Err(PortError::Conflict) => Err(AuthError::ApiKeyNotFound),
        Err(e) => Err(e.into()),
    }
}

fn is_http_url(candidate: &str) -> bool {
    url::Url::parse(candidate)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
        && candidate.chars().count() <= MAX_URL_CHARS
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
        for ok in ["http://localhost:30000", "https://foundry.example.io/game", "http://10.0.0.5:30000/"] {
            assert!(is_http_url(ok), "{ok}");
        }
        for junk in
            ["localhost:30000", "ftp://example.io", "javascript:alert(1)", "not a url", "http://", "file:///etc/passwd"]
        {
            assert!(!is_http_url(junk), "{junk}");
        }
    }

    #[test]
    fn optional_text_is_trimmed_empty_is_absent_and_long_is_refused() {
        assert_eq!(text("f", Some("  abc ".into())), Ok(Some("abc".into())));
        assert_eq!(text("f", Some("   ".into())), Ok(None));
        assert_eq!(text("f", None), Ok(None));
        assert_eq!(text("f", Some("x".repeat(MAX_TEXT_CHARS + 1))), Err(AuthError::InvalidField(Field::TooLong("f"))));
    }
}
