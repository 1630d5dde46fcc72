//! The enforcement point for the relay's requests, behind both doors (the gateway's
//! authorizer and `POST /auth/verify`): resolve the key, keep every cap, count the
//! request. A refused request is never counted.

use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::audit::Activity;
use crate::domain::error::AuthError;
use crate::domain::keys::{ApiKey, KeyKind};
use crate::domain::meter::{legacy_keys_ended, user_for, AccountMeter, Decision, Meter, Metered, Refusal};
use crate::domain::metrics::{self, Counter};
use crate::domain::model::{KeyEntry, Subscription};
use crate::domain::scopes::{Grant, Need, ScopeSet};
use chrono::{DateTime, Utc};

/// One request of the relay, as the door saw it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The key the relay's client presented (`x-api-key`).
    pub key: Option<&'a str>,
    /// The Foundry client and user the request targets, when it names them.
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// What it needs of a scoped key (the route's scope).
    pub need: Need,
    /// How many requests it counts as (1 to [`crate::domain::meter::MAX_COST`]).
    pub cost: u64,
    /// `false`: decide, and count nothing.
    pub count: bool,
}

impl<'a> Ask<'a> {
    /// One request of `key`, counted.
    pub fn key(key: Option<&'a str>) -> Self {
        Self { key, client_id: None, user_id: None, need: Need::Nothing, cost: 1, count: true }
    }

    /// The request of `method` on the relay's `path`, with what its route needs
    /// (`settings.route_scopes`) and the client and user it names.
    pub fn route(app: &App, key: Option<&'a str>, method: &str, path: &str) -> Self {
        Self { need: app.settings.route_scopes.need(method, path), ..Self::key(key) }
    }
}

/// Who is calling, for the route behind the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub user_id: String,
    pub kind: KeyKind,
    pub scoped_key_id: Option<String>,
    /// The Foundry client the key is bound to: the one the request named, when the key
    /// serves several, else its one client.
    pub scoped_client_id: Option<String>,
    /// The Foundry user the key acts as for that client.
    pub scoped_user_id: Option<String>,
    /// What the key may do (every scope for a master key and for a key made before scopes).
    pub scopes: ScopeSet,
    /// The key's requests this month (scoped), or the account's (master), this one included.
    pub requests_this_month: u64,
    /// Today's requests of the key (scoped) or of the account (master), this one included.
    pub requests_today: u64,
    /// The cap behind that count, if any.
    pub monthly_limit: Option<u64>,
    /// The key's daily cap (scoped, if it has one), or the account's (master).
    pub daily_limit: Option<u64>,
    /// When the scoped key stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    pub subscription_status: Subscription,
}

impl Authorization {
    fn of(entry: KeyEntry, user: &AccountMeter, app: &App, ask: &Ask<'_>, now: DateTime<Utc>) -> Self {
        let (usage, monthly_limit, daily_limit) = match entry.kind {
            KeyKind::Master => (
                &user.usage,
                (!user.subscription_status.is_active()).then_some(app.settings.monthly_request_limit),
                Some(app.settings.daily_request_limit),
            ),
            KeyKind::Scoped => (&entry.usage, entry.monthly_limit, entry.daily_limit),
        };
        Self {
            user_id: user.user_id.clone(),
            kind: entry.kind,
            requests_this_month: usage.this_month(now),
            requests_today: usage.today(now),
            monthly_limit,
            daily_limit,
            expires_at: entry.expires_at,
            subscription_status: user.subscription_status.clone(),
            scoped_user_id: user_for(&entry, ask.client_id).map(str::to_owned),
            scoped_client_id: match (&entry.scoped_client_ids[..], ask.client_id) {
                ([], _) => entry.scoped_client_id.clone(),
                ([only], None) => Some(only.clone()),
                (_, asked) => asked.map(str::to_owned),
            },
            scopes: match entry.kind {
                KeyKind::Master => Grant::Unrestricted.scopes(),
                KeyKind::Scoped => entry.grant.scopes(),
            },
            scoped_key_id: entry.scoped_key_id,
        }
    }
}

/// `Ok(None)` for a missing, malformed, unknown, revoked, disabled or expired key, a relay
/// key after `LEGACY_KEYS_UNTIL` (refused before any store call), a key
/// bound to another client or user than the request names, and a request over any cap:
/// the key's monthly and daily limits, the account's daily limit, and the account's
/// monthly limit unless its subscription is active. Each decision is counted by its
/// reason ([`Decision`]). Costs two store calls when admitted (see the `Metering` port);
/// a malformed key costs none. No KMS and no argon2.
pub async fn authorize(app: &App, ask: Ask<'_>) -> Result<Option<Authorization>, AuthError> {
    Ok(decide(app, ask).await?.ok())
}

/// As [`authorize`], with the reason of a refusal.
pub async fn decide(app: &App, ask: Ask<'_>) -> Result<Result<Authorization, Refusal>, AuthError> {
    let decided = decide_uncounted(app, ask).await;
    metrics::count(Counter::Authorizer(match &decided {
        Ok(Ok(_)) => Decision::Admitted,
        Ok(Err(refusal)) => refusal.reason,
        Err(_) => Decision::Error,
    }));
    decided
}

async fn decide_uncounted(app: &App, ask: Ask<'_>) -> Result<Result<Authorization, Refusal>, AuthError> {
    let Some(presented) = ask.key else {
        return Ok(Err(Refusal::because(Decision::Missing)));
    };
    let Some(key) = ApiKey::parse(presented.trim()) else {
        return Ok(Err(Refusal::because(Decision::Malformed)));
    };
    let now = app.clock.now();
    if key.is_legacy() && legacy_keys_ended(app.settings.legacy_keys_until, now) {
        return Ok(Err(Refusal::because(Decision::Legacy)));
    }
    let digest = key.digest();
    let meter = Meter {
        digest: &digest,
        kind: (!key.is_legacy()).then(|| key.kind()),
        now,
        cost: ask.cost,
        count: ask.count,
        client_id: ask.client_id,
        user_id: ask.user_id,
        need: ask.need,
        master_allowed: app.settings.master_key_relay_access,
        require_verified: app.settings.require_email_verification,
        daily_limit: app.settings.daily_request_limit,
        monthly_limit: app.settings.monthly_request_limit,
    };
    Ok(match app.store.meter(&meter).await? {
        Metered::Admitted { entry, account } => {
            if key.is_legacy() {
                metrics::count(Counter::LegacyKeyUses);
                // The operators' security line only: the hot path gains no store call.
                activity::note(&entry.user_id, Activity::LegacyKeyUsed, now);
            }
            Ok(Authorization::of(entry, &account, app, &ask, now))
        }
        Metered::Refused(refusal) => Err(refusal),
    })
}
