//! Accounts: register, log in, regenerate the master key, change the password, delete.

use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::audit::Activity;
use crate::domain::auth::Caller;
use crate::domain::email::{normalise, Email};
use crate::domain::error::{AuthError, PortError};
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::limits::Rule;
use crate::domain::metrics::{self, Counter};
use crate::domain::model::{ScopedKey, StoredMasterKey, Subscription, Usage, User};
use crate::domain::ports::EncryptionContext;
use crate::domain::throttle;
use crate::domain::{notify, password, verification, with_current_user};
use chrono::{DateTime, Utc};

/// A new account with its master key, shown this once.
#[derive(Debug)]
pub struct Registered {
    pub user: User,
    pub key: ApiKey,
}

pub async fn register(app: &App, email: &str, password: &str, address: Option<&str>) -> Result<Registered, AuthError> {
    throttle::per_address(app, Rule::AuthPerAddress, address).await?;
    if !app.settings.registration_enabled {
        return Err(AuthError::RegistrationDisabled);
    }
    let email = Email::parse(email)?;
    password::check_rules(password)?;
    let password_hash = password::hash_on_pool(app, password).await?;
    let now = app.clock.now();
    let id = uuid::Uuid::new_v4().to_string();
    let key = ApiKey::generate(KeyKind::Master);
    let user = User {
        master_key: seal_master_key(app, &id, &key, now).await?,
        id,
        email: email.as_str().to_owned(),
        email_normalised: email.normalised().to_owned(),
        password_hash: password_hash.into(),
        key_generation: 0,
        reset_token_digest: None,
        email_verified: !app.settings.require_email_verification,
        verification_token_digest: None,
        scoped_key_count: 0,
        subscription_status: Subscription::Free,
        stripe_customer_id: None,
        subscription_id: None,
        usage: Usage::default(),
        created_at: now,
        updated_at: now,
    };
    match app.store.create_user(&user).await {
        Ok(()) => {}
        Err(PortError::Conflict) => return Err(AuthError::UserExists),
        Err(e) => return Err(e.into()),
    }
    if !user.email_verified {
        // The account exists: a failed link is logged, and the owner can ask again.
        if let Err(error) = verification::send_link(app, user.clone()).await {
            tracing::error!(user_id = %user.id, error = %crate::domain::error::Chain(&error), "sending the verification link failed");
        }
    }
    Ok(Registered { user, key })
}

/// Checks an email and password. An unknown (or malformed) email runs the same argon2
/// verification as a wrong password, and both answer `InvalidCredentials`. The check is
/// reserved from the email's budget of password checks before any hashing (at most `N`
/// per window whatever the concurrency, counted alike for emails with and without an
/// account); a locked email is refused before any hashing.
pub async fn check_credentials(
    app: &App,
    email: &str,
    password: &str,
    address: Option<&str>,
) -> Result<User, AuthError> {
    let normalised = normalise(email);
    let check = throttle::reserve_password_check(app, &normalised, address).await?;
    let user = app.store.user_by_email(&normalised).await?;
    let stored = user.as_ref().map(|u| u.password_hash.expose());
    let correct = password::verify_on_pool(app, password, stored).await?;
    throttle::settle_password_check(app, check, correct).await;
    let user = match (correct, user) {
        (true, Some(user)) => user,
        _ => {
            metrics::count(Counter::LoginFailed);
            return Err(AuthError::InvalidCredentials);
        }
    };
    metrics::count(Counter::LoginSucceeded);
    upgrade_hash_if_weak(app, &user, password).await;
    Ok(user)
}

/// Checks the password of an account already identified by its key (change-password,
/// delete account), from the same budget as logins.
async fn check_own_password(app: &App, user: &User, password: &str, address: Option<&str>) -> Result<bool, AuthError> {
    let check = throttle::reserve_password_check(app, &user.email_normalised, address).await?;
    let correct = password::verify_on_pool(app, password, Some(user.password_hash.expose())).await?;
    throttle::settle_password_check(app, check, correct).await;
    Ok(correct)
}

/// A logged-in account with its master key, when the service can show it.
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    /// `None` when the key was never seen here (see [`StoredMasterKey::is_available`]):
    /// it works, but only a regenerated key can be shown.
    pub key: Option<ApiKey>,
}

/// A successful login answers the current master key, decrypted from its KMS ciphertext,
/// or none for an account whose key the service never saw.
pub async fn login(app: &App, email: &str, password: &str, address: Option<&str>) -> Result<LoggedIn, AuthError> {
    throttle::per_address(app, Rule::AuthPerAddress, address).await?;
    let checked = check_credentials(app, email, password, address).await;
    let user = activity::checked(app, email, Some(Activity::LoginSucceeded), checked).await?;
    if !user.master_key.is_available() {
        return Ok(LoggedIn { user, key: None });
    }
    let plaintext = app.cipher.decrypt(&user.master_key.ciphertext, &EncryptionContext::master_key(&user.id)).await?;
    let key = std::str::from_utf8(&plaintext)
        .ok()
        .and_then(ApiKey::parse)
        .filter(|key| key.digest() == user.master_key.digest)
        .ok_or_else(|| {
            AuthError::Internal(PortError::Other(format!(
                "the stored master key of account {} does not decrypt to the indexed key",
                user.id
            )))
        })?;
    Ok(LoggedIn { user, key: Some(key) })
}

/// A new master key. The old one and every scoped key of the account stop working in the
/// same write; the scoped keys are then marked disabled.
pub async fn regenerate_key(
    app: &App,
    email: &str,
    password: &str,
    address: Option<&str>,
) -> Result<ApiKey, AuthError> {
    throttle::per_address(app, Rule::AuthPerAddress, address).await?;
    let checked = check_credentials(app, email, password, address).await;
    let first = activity::checked(app, email, None, checked).await?;
    let key = ApiKey::generate(KeyKind::Master);
    let key_ref = &key;
    let user_id = first.id.clone();
    let user = with_current_user(
        first,
        || reread(app, &user_id),
        |user| async move {
            let now = app.clock.now();
            let sealed = seal_master_key(app, &user.id, key_ref, now).await?;
            app.store.replace_master_key(&user, &sealed, now).await.map(|()| user)
        },
    )
    .await?;
    // Keys minted under the new master key in the meantime stay as they are.
    retire_scoped_keys(app, &user.id, user.key_generation + 1).await;
    activity::record(app, &user.id, Activity::MasterKeyRegenerated).await;
    Ok(key)
}

/// Change the password of the calling account; voids every reset token and notifies.
pub async fn change_password(
    app: &App,
    caller: &Caller,
    current: &str,
    new: &str,
    address: Option<&str>,
) -> Result<(), AuthError> {
    throttle::per_account(app, &caller.user.id).await?;
    if !check_own_password(app, &caller.user, current, address).await? {
        return Err(AuthError::CurrentPasswordIncorrect);
    }
    password::check_rules(new)?;
    let new_hash = password::hash_on_pool(app, new).await?;
    let new_hash = &new_hash;
    // The write is conditional on the hash that was checked: a password changed meanwhile
    // (another change, a reset) was not the one the caller proved to know.
    let checked = caller.user.password_hash.expose();
    with_current_user(
        caller.user.clone(),
        || async move {
            let user = reread_caller(app, caller).await?;
            match user.password_hash.expose() == checked {
                true => Ok(user),
                false => Err(AuthError::CurrentPasswordIncorrect),
            }
        },
        |user| async move { app.store.set_password(&user, new_hash, app.clock.now()).await },
    )
    .await?;
    activity::record(app, &caller.user.id, Activity::PasswordChanged).await;
    notify::send_logged(app, notify::password_changed_email(&caller.user.email), "password-changed").await;
    Ok(())
}

/// Deletes the account and everything of it, in an order that a retry can always finish:
/// first every scoped key stops working (the key generation moves on), then the scoped
/// keys and their index entries go, then the account with its email reservation, master
/// key and reset token, in one last write. A failure at any step leaves the account and
/// its master key in place, so the client's retry completes the job.
pub async fn delete_account(
    app: &App,
    caller: &Caller,
    confirm_email: Option<&str>,
    password: Option<&str>,
    address: Option<&str>,
) -> Result<(), AuthError> {
    throttle::per_account(app, &caller.user.id).await?;
    let confirmed = confirm_email.is_some_and(|e| normalise(e) == caller.user.email_normalised);
    if !confirmed {
        return Err(AuthError::EmailConfirmationRequired);
    }
    let password = password.ok_or(AuthError::PasswordRequired)?;
    if !check_own_password(app, &caller.user, password, address).await? {
        return Err(AuthError::InvalidPassword);
    }
    match app.store.revoke_scoped_keys(&caller.user, app.clock.now()).await {
        Ok(()) => {}
        // The master key changed meanwhile: the caller's key no longer works.
        Err(PortError::Conflict) => return Err(AuthError::InvalidApiKey),
        Err(e) => return Err(e.into()),
    }
    for key in app.store.scoped_keys(&caller.user.id).await? {
        match app.store.delete_scoped_key(&key).await {
            Ok(()) | Err(PortError::Conflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    activity::forget(app, &caller.user.id).await?;
    let first = reread_caller(app, caller).await?;
    with_current_user(
        first,
        || reread_caller(app, caller),
        |user| async move {
            // The master key works until this last step, so a scoped key may have been made
            // since the listing above: the account's write refuses to go while one is left
            // (its count changed), and such keys go first.
            if user.scoped_key_count > 0 {
                let left = app.store.scoped_keys(&user.id).await?;
                if !left.is_empty() {
                    for key in left {
                        match app.store.delete_scoped_key(&key).await {
                            Ok(()) | Err(PortError::Conflict) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    return Err(PortError::Conflict);
                }
            }
            app.store.delete_user(&user).await
        },
    )
    .await?;
    tracing::info!(user_id = %caller.user.id, "account deleted");
    activity::account_deleted(app, &caller.user.id).await;
    Ok(())
}

/// The caller's scoped keys, oldest first, each with the requests it made this month
/// (counted on its index entry; a revoked key has none left).
pub async fn scoped_keys_of(app: &App, user: &User) -> Result<Vec<(ScopedKey, u64)>, AuthError> {
    let mut keys = app.store.scoped_keys(&user.id).await?;
    keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
    let digests: Vec<_> = keys.iter().map(|k| k.digest.clone()).collect();
    let entries = app.store.key_entries(&digests).await?;
    let now = app.clock.now();
    Ok(keys.into_iter().zip(entries).map(|(key, entry)| (key, entry.map_or(0, |e| e.usage.this_month(now)))).collect())
}

pub(crate) async fn seal_master_key(
    app: &App,
    user_id: &str,
    key: &ApiKey,
    now: DateTime<Utc>,
) -> Result<StoredMasterKey, PortError> {
    let ciphertext = app.cipher.encrypt(key.expose().as_bytes(), &EncryptionContext::master_key(user_id)).await?;
    Ok(StoredMasterKey { digest: key.digest(), ciphertext, prefix: key.display_prefix(), created_at: now })
}

/// The caller's account as it is now; gone means its key no longer works.
async fn reread_caller(app: &App, caller: &Caller) -> Result<User, AuthError> {
    app.store.user(&caller.user.id).await?.ok_or(AuthError::InvalidApiKey)
}

async fn reread(app: &App, user_id: &str) -> Result<User, AuthError> {
    app.store.user(user_id).await?.ok_or(AuthError::InvalidCredentials)
}

async fn upgrade_hash_if_weak(app: &App, user: &User, password: &str) {
    if !app.hasher.needs_rehash(user.password_hash.expose()) {
        return;
    }
    let result = match password::hash_on_pool(app, password).await {
        Ok(new_hash) => app
            .store
            .upgrade_password_hash(&user.id, user.password_hash.expose(), &new_hash)
            .await
            .map_err(AuthError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            tracing::info!(user_id = %user.id, "password hash upgraded to the current parameters")
        }
        Err(error) => {
            tracing::warn!(user_id = %user.id, error = %crate::domain::error::Chain(&error), "password hash upgrade failed")
        }
    }
}

/// Best effort after a master key change: the keys of older generations already stopped
/// working; they are marked disabled and lose their index entries.
pub(crate) async fn retire_scoped_keys(app: &App, user_id: &str, current_generation: u64) {
    let keys = match app.store.scoped_keys(user_id).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%user_id, error = %crate::domain::error::Chain(&error), "listing scoped keys to retire failed");
            return;
        }
    };
    let now = app.clock.now();
    for key in keys.iter().filter(|k| k.enabled && k.generation < current_generation) {
        if let Err(error) = app.store.retire_scoped_key(key, now).await {
            tracing::warn!(%user_id, scoped_key_id = %key.id, error = %crate::domain::error::Chain(&error), "retiring a scoped key failed");
        }
    }
}
