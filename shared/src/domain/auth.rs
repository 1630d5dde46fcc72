//! Who is calling: the `x-api-key` resolved to an account, with the fewest reads possible.

use crate::app::App;
use crate::domain::error::AuthError;
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::model::{KeyEntry, User};

/// An authenticated caller: the account and the key it presented.
#[derive(Debug)]
pub struct Caller {
    pub user: User,
    pub key: ApiKey,
    pub entry: KeyEntry,
}

/// Resolves a presented key. A malformed key (format or checksum) is refused before any
/// store call (a relay key, 64 hex characters, has no checksum to check); a valid one
/// costs two consistent reads (index entry, then account). Unknown, revoked, disabled and
/// expired keys are refused alike.
pub async fn authenticate(app: &App, presented: Option<&str>) -> Result<Caller, AuthError> {
    let presented = presented.ok_or(AuthError::MissingApiKey)?;
    let key = ApiKey::parse(presented.trim()).ok_or(AuthError::InvalidApiKey)?;
    let digest = key.digest();
    let (entry, user) = app.store.key_entry_and_account(&digest).await?.ok_or(AuthError::InvalidApiKey)?;
    // A key imported from the relay is of the kind its entry names.
    let key = key.with_kind(entry.kind);
    if entry.kind != key.kind() {
        return Err(AuthError::InvalidApiKey);
    }
    let user = user.ok_or(AuthError::InvalidApiKey)?;
    let live = match entry.kind {
        KeyKind::Master => user.master_key.digest == digest,
        KeyKind::Scoped => {
            entry.enabled
                && entry.generation == user.key_generation
                && entry.expires_at.is_none_or(|at| app.clock.now() < at)
        }
    };
    if !live {
        return Err(AuthError::InvalidApiKey);
    }
    Ok(Caller { user, key, entry })
}

/// As [`authenticate`], for routes that only the master key may use.
pub async fn authenticate_master(app: &App, presented: Option<&str>) -> Result<Caller, AuthError> {
    let caller = authenticate(app, presented).await?;
    match caller.key.kind() {
        KeyKind::Master => Ok(caller),
        KeyKind::Scoped => Err(AuthError::MasterKeyRequired),
    }
}
