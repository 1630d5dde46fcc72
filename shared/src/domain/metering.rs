//! The enforcement point for the relay's own routes: resolve the key, keep every cap,
//! count the request. A refused request is never counted.

use crate::domain::app::App;
use crate::domain::auth::identify;
use crate::domain::error::AuthError;
use crate::domain::keys::KeyKind;
use crate::domain::metrics::{self, Counter, Decision};
use crate::domain::ports::Metered;

/// Who is calling, for the route behind the authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub user_id: String,
    pub kind: KeyKind,
    pub scoped_key_id: Option<String>,
    pub scoped_client_id: Option<String>,
    pub scoped_user_id: Option<String>,
    /// The key's requests this month (scoped), or the account's (master), this one included.
    pub requests_this_month: u64,
    /// The cap behind that count, if any.
    pub monthly_limit: Option<u64>,
    /// The key's daily cap (scoped, if it has one), or the account's (master).
    pub daily_limit: Option<u64>,
}

/// `Ok(None)` for a missing, malformed, unknown, revoked, disabled or expired key and for
/// a request over any cap: the key's monthly and daily limits, the account's daily limit,
/// and the account's monthly limit unless its subscription is active. Costs the two reads of
/// authentication and one conditional write per counter item (the account; for a scoped
/// key its index entry too), no transaction: a busy key's requests never conflict with
/// each other. No KMS and no argon2.
/// Each decision is counted by its reason ([`Decision`]).
pub async fn authorize(app: &App, presented: Option<&str>) -> Result<Option<Authorization>, AuthError> {
    let decided = decide(app, presented).await;
    metrics::count(Counter::Authorizer(match &decided {
        Ok(Ok(_)) => Decision::Admitted,
        Ok(Err(reason)) => *reason,
        Err(_) => Decision::Error,
    }));
    decided.map(Result::ok)
}

/// As [`authorize`], with the reason of a refusal, and uncounted.
pub async fn decide(app: &App, presented: Option<&str>) -> Result<Result<Authorization, Decision>, AuthError> {
    let caller = match identify(app, presented).await? {
        Ok(caller) => caller,
        Err(reason) => return Ok(Err(reason)),
    };
    let now = app.clock.now();
    let account_monthly_limit =
        (!caller.user.subscription_status.is_active()).then_some(app.settings.monthly_request_limit);
    let request = Metered {
        user: &caller.user,
        entry: &caller.entry,
        now,
        daily_limit: app.settings.daily_request_limit,
        monthly_limit: account_monthly_limit,
    };
    let Some(requests_this_month) = app.store.count_request(&request).await? else {
        return Ok(Err(Decision::Cap));
    };
    let entry = &caller.entry;
    let (monthly_limit, daily_limit) = match entry.kind {
        KeyKind::Master => (account_monthly_limit, Some(app.settings.daily_request_limit)),
        KeyKind::Scoped => (entry.monthly_limit, entry.daily_limit),
    };
    Ok(Ok(Authorization {
        user_id: caller.user.id.clone(),
        kind: entry.kind,
        scoped_key_id: entry.scoped_key_id.clone(),
        scoped_client_id: entry.scoped_client_id.clone(),
        scoped_user_id: entry.scoped_user_id.clone(),
        requests_this_month,
        monthly_limit,
        daily_limit,
    }))
}
