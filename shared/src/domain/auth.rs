//! Who is calling: the `x-api-key` resolved to an account, with the fewest reads possible.

use crate::domain::app::App;
use crate::domain::error::AuthError;
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::meter::{is_expired, legacy_keys_ended, Decision};
use crate::domain::metrics::{self, Counter};
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
    identify(app, presented).await?.map_err(|refusal| match refusal {
        Decision::Missing => AuthError::MissingApiKey,
        _ => AuthError::InvalidApiKey,
    })
}

/// As [`authenticate`], with the reason of a refusal (for the authorizer's metrics):
/// `Missing`, `Malformed`, `Legacy` (a relay key after `LEGACY_KEYS_UNTIL`, refused before
/// any store call), `Unknown`, `Revoked`, `Disabled` or `Expired`.
pub async fn identify(app: &App, presented: Option<&str>) -> Result<Result<Caller, Decision>, AuthError> {
    let Some(presented) = presented else {
        return Ok(Err(Decision::Missing));
    };
    let Some(key) = ApiKey::parse(presented.trim()) else {
        return Ok(Err(Decision::Malformed));
    };
    if key.is_legacy() && legacy_keys_ended(app.settings.legacy_keys_until, app.clock.now()) {
        return Ok(Err(Decision::Legacy));
    }
    let digest = key.digest();
    let Some((entry, user)) = app.store.key_entry_and_account(&digest).await? else {
        return Ok(Err(Decision::Unknown));
    };
    // A key imported from the relay is of the kind its entry names.
    let key = key.with_kind(entry.kind);
    let (true, Some(user)) = (entry.kind == key.kind(), user) else {
        return Ok(Err(Decision::Unknown));
    };
    let refusal = match entry.kind {
        KeyKind::Master => (user.master_key.digest != digest).then_some(Decision::Revoked),
        KeyKind::Scoped if entry.generation != user.key_generation => Some(Decision::Revoked),
        KeyKind::Scoped if !entry.enabled => Some(Decision::Disabled),
        KeyKind::Scoped => {
            entry.expires_at.is_some_and(|at| is_expired(at, app.clock.now())).then_some(Decision::Expired)
        }
    };
    Ok(match refusal {
        Some(reason) => Err(reason),
        None => {
            if key.is_legacy() {
                metrics::count(Counter::LegacyKeyUses);
            }
            Ok(Caller { user, key, entry })
        }
    })
}

/// As [`authenticate`], for routes that only the master key may use.
pub async fn authenticate_master(app: &App, presented: Option<&str>) -> Result<Caller, AuthError> {
    let caller = authenticate(app, presented).await?;
    match caller.key.kind() {
        KeyKind::Master => Ok(caller),
        KeyKind::Scoped => Err(AuthError::MasterKeyRequired),
    }
}
