//! The import: each relay account read, checked against the store, sealed with this
//! service's cipher and written whole (one store transaction) or not at all.

use crate::relay::{plan_user, CredentialsKey, PlannedUser, Problem, Reason};
use crate::source::{Relay, Row};
use chrono::{DateTime, Utc};
use shared::domain::app::App;
use shared::domain::error::PortError;
use shared::domain::keys::KeyDigest;
use shared::domain::model::{day_period, month_period, ImportedAccount, ScopedKey, StoredMasterKey, Usage, User};
use shared::domain::ports::EncryptionContext;
use shared::domain::scopes::Grant;
use std::collections::{BTreeMap, HashMap, HashSet};

pub struct Options {
    pub credentials_key: Option<CredentialsKey>,
    /// Check everything, read the store, write nothing.
    pub dry_run: bool,
    /// What "today" and "this month" are for the relay's counters.
    pub now: DateTime<Utc>,
}

/// What became of one relay row (`Users id=3`, or an `ApiKeys` row of no user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub row: String,
    pub result: Result<(), Problem>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.result {
            Ok(()) => write!(f, "imported {}", self.row),
            Err(problem) => {
                let verb = if problem.reason.is_skip() { "skipped" } else { "failed" };
                write!(f, "{verb} {}: {}", self.row, problem.reason)?;
                match &problem.detail {
                    Some(detail) => write!(f, " ({detail})"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub dry_run: bool,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn imported(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }

    pub fn by_reason(&self) -> BTreeMap<Reason, usize> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            if let Err(problem) = &outcome.result {
                *counts.entry(problem.reason).or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn skipped(&self) -> usize {
        self.by_reason().iter().filter(|(r, _)| r.is_skip()).map(|(_, n)| n).sum()
    }

    pub fn failed(&self) -> usize {
        self.by_reason().iter().filter(|(r, _)| !r.is_skip()).map(|(_, n)| n).sum()
    }

    /// `imported 3, skipped 1, failed 1` and a line per reason.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would import" } else { "imported" };
        let mut out = format!("{verb} {}, skipped {}, failed {}", self.imported(), self.skipped(), self.failed());
        for (reason, n) in self.by_reason() {
            let kind = if reason.is_skip() { "skipped" } else { "failed" };
            out.push_str(&format!("\n  {kind}: {reason}: {n}"));
        }
        out
    }
}

/// Imports every account of `relay`, one after the other, calling `done` after each row.
pub async fn import(app: &App, relay: &Relay, options: &Options, mut done: impl FnMut(&Outcome)) -> Report {
    let mut report = Report { dry_run: options.dry_run, outcomes: Vec::new() };
    let mut record = |outcome: Outcome| {
        done(&outcome);
        report.outcomes.push(outcome);
    };
    let mut keys_of: HashMap<&str, Vec<&Row>> = HashMap::new();
    for key in &relay.api_keys {
        keys_of.entry(key.get("userId").unwrap_or_default()).or_default().push(key);
    }
    let user_ids: HashSet<&str> = relay.users.iter().filter_map(|u| u.get("id")).collect();
    let mut emails_seen = HashSet::new();
    for user in &relay.users {
        let id = user.get("id").unwrap_or_default();
        let keys = keys_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let result = import_user(app, user, keys, options, &mut emails_seen).await;
        record(Outcome { row: format!("Users id={id}"), result });
    }
    for key in relay.api_keys.iter().filter(|k| !user_ids.contains(k.get("userId").unwrap_or_default())) {
        let row = format!("ApiKeys id={}", key.get("id").unwrap_or_default());
        record(Outcome { row, result: Err(Problem::new(Reason::NoSuchUser)) });
    }
    report
}

async fn import_user(
    app: &App,
    user: &Row,
    keys: &[&Row],
    options: &Options,
    emails_seen: &mut HashSet<String>,
) -> Result<(), Problem> {
    let planned = plan_user(user, keys, options.credentials_key.as_ref(), options.now)?;
    if !emails_seen.insert(planned.email.normalised().to_owned()) {
        return Err(Problem::with(Reason::EmailTaken, "an earlier relay row has this email"));
    }
    if let Some(problem) = already_here(app, &planned).await? {
        return Err(problem);
    }
    if options.dry_run {
        return Ok(());
    }
    let account = seal(app, &planned, options.now).await?;
    match app.store.import_account(&account).await {
        Ok(()) => Ok(()),
        // Written meanwhile, by another run or a registration.
        Err(PortError::Conflict) => {
            Err(already_here(app, &planned).await?.unwrap_or(Problem::with(Reason::WriteFailed, "write conflict")))
        }
        Err(e) => Err(write_failed(&e)),
    }
}

/// Whether the account, its email or one of its keys is already in the store: the same
/// account from an earlier run (skipped), another account's email (skipped) or keys.
async fn already_here(app: &App, planned: &PlannedUser) -> Result<Option<Problem>, Problem> {
    let master = planned.master_key.digest();
    if let Some(existing) = app.store.user_by_email(planned.email.normalised()).await.map_err(|e| write_failed(&e))? {
        return Ok(Some(Problem::new(if existing.master_key.digest == master {
            Reason::AlreadyImported
        } else {
            Reason::EmailTaken
        })));
    }
    let digests: Vec<KeyDigest> =
        std::iter::once(master).chain(planned.scoped_keys.iter().map(|k| k.key.digest())).collect();
    let distinct: HashSet<&KeyDigest> = digests.iter().collect();
    if distinct.len() != digests.len() {
        return Ok(Some(Problem::with(Reason::KeyTaken, "the same key twice in the account")));
    }
    let entries = app.store.key_entries(&digests).await.map_err(|e| write_failed(&e))?;
    Ok(entries.iter().any(Option::is_some).then(|| Problem::new(Reason::KeyTaken)))
}

/// The account as this service keeps it: new ids, the master key and every Foundry
/// password sealed with this service's cipher under their encryption contexts.
async fn seal(app: &App, planned: &PlannedUser, now: DateTime<Utc>) -> Result<ImportedAccount, Problem> {
    let id = uuid::Uuid::new_v4().to_string();
    let master = &planned.master_key;
    let ciphertext = app
        .cipher
        .encrypt(master.expose().as_bytes(), &EncryptionContext::master_key(&id))
        .await
        .map_err(|e| write_failed(&e))?;
    let mut usage = Usage { counts: BTreeMap::new(), last_request_at: planned.last_request_at };
    if planned.requests_today > 0 {
        usage.counts.insert(day_period(now), planned.requests_today);
    }
    if planned.requests_this_month > 0 {
        usage.counts.insert(month_period(now), planned.requests_this_month);
    }
    let user = User {
        id: id.clone(),
        email: planned.email.as_str().to_owned(),
        email_normalised: planned.email.normalised().to_owned(),
        password_hash: planned.password_hash.clone().into(),
        master_key: StoredMasterKey {
            digest: master.digest(),
            ciphertext,
            prefix: master.display_prefix(),
            created_at: planned.created_at,
        },
        key_generation: 0,
        reset_token_digest: None,
        scoped_key_count: planned.scoped_keys.len() as u64,
        subscription_status: planned.subscription_status.clone().into(),
        stripe_customer_id: planned.stripe_customer_id.clone(),
        subscription_id: planned.subscription_id.clone(),
        usage,
        created_at: planned.created_at,
        updated_at: planned.updated_at,
    };
    let mut scoped_keys = Vec::with_capacity(planned.scoped_keys.len());
    for key in &planned.scoped_keys {
        let key_id = uuid::Uuid::new_v4().to_string();
        let foundry_password_ciphertext = match &key.foundry_password {
            Some(password) => Some(
                app.cipher
                    .encrypt(password.as_bytes(), &EncryptionContext::foundry_password(&id, &key_id))
                    .await
                    .map_err(|e| write_failed(&e))?,
            ),
            None => None,
        };
        let mut usage = Usage::default();
        if key.requests_today > 0 {
            usage.counts.insert(day_period(now), key.requests_today);
        }
        let record = ScopedKey {
            id: key_id,
            user_id: id.clone(),
            name: key.name.clone(),
            digest: key.key.digest(),
            prefix: key.key.display_prefix(),
            scoped_client_id: key.scoped_client_id.clone(),
            scoped_user_id: key.scoped_user_id.clone(),
            scoped_client_ids: Vec::new(),
            scoped_user_ids: Default::default(),
            // The Node relay's keys predate scopes: they keep doing all they did.
            grant: Grant::Unrestricted,
            monthly_limit: None,
            daily_limit: key.daily_limit,
            expires_at: key.expires_at,
            foundry_url: key.foundry_url.clone(),
            foundry_username: key.foundry_username.clone(),
            foundry_password_ciphertext,
            enabled: key.enabled,
            generation: 0,
            created_at: key.created_at,
            updated_at: key.updated_at,
        };
        scoped_keys.push((record, usage));
    }
    Ok(ImportedAccount { user, scoped_keys })
}

fn write_failed(error: &PortError) -> Problem {
    Problem::with(Reason::WriteFailed, error.to_string())
}
