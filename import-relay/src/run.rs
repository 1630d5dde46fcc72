//! The import: each relay account read, checked against the store, sealed with this
//! service's cipher and written whole (one store transaction) or not at all, and what
//! became of every row of the relay's `Users`, `ApiKeys` and (relay 3.x) `Credentials`.

use crate::relay::{
    plan_credential, plan_user, plan_user_v3, CredentialsKey, PlannedCredential, PlannedMaster, PlannedUser, Problem,
    Reason,
};
use crate::source::{Kind, Relay, Row};
use chrono::{DateTime, Utc};
use shared::domain::app::App;
use shared::domain::audit::Activity;
use shared::domain::error::PortError;
use shared::domain::keys::KeyDigest;
use shared::domain::model::{day_period, month_period, ImportedAccount, ScopedKey, StoredMasterKey, Usage, User};
use shared::domain::ports::EncryptionContext;
use std::collections::{BTreeMap, HashMap, HashSet};

pub struct Options {
    pub credentials_key: Option<CredentialsKey>,
    /// Check everything, read the store, write nothing.
    pub dry_run: bool,
    /// What "today" and "this month" are for the relay's counters.
    pub now: DateTime<Utc>,
}

/// The relay table a row is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Users,
    ApiKeys,
    Credentials,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "Users",
            Table::ApiKeys => "ApiKeys",
            Table::Credentials => "Credentials",
        }
    }
}

/// What became of one relay row (`Users id=3`, `ApiKeys id=5`, `Credentials id=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub table: Table,
    pub row: String,
    pub result: Result<(), Problem>,
}

impl Outcome {
    fn of(table: Table, row: &Row, result: Result<(), Problem>) -> Self {
        Self { table, row: format!("{} id={}", table.name(), row.get("id").unwrap_or_default()), result }
    }
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
    pub kind: Kind,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    fn of(&self, table: Option<Table>) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(move |o| table.is_none_or(|t| o.table == t))
    }

    /// Rows imported, of one table or of all.
    pub fn imported(&self, table: Option<Table>) -> usize {
        self.of(table).filter(|o| o.result.is_ok()).count()
    }

    /// Rows not imported, by reason, of one table or of all.
    pub fn by_reason(&self, table: Option<Table>) -> BTreeMap<Reason, usize> {
        let mut counts = BTreeMap::new();
        for outcome in self.of(table) {
            if let Err(problem) = &outcome.result {
                *counts.entry(problem.reason).or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn skipped(&self, table: Option<Table>) -> usize {
        self.by_reason(table).iter().filter(|(r, _)| r.is_skip()).map(|(_, n)| n).sum()
    }

    pub fn failed(&self, table: Option<Table>) -> usize {
        self.by_reason(table).iter().filter(|(r, _)| !r.is_skip()).map(|(_, n)| n).sum()
    }

    /// A line per table (`Users: imported 3, skipped 1, failed 1`), each followed by a
    /// line per reason.
    pub fn summary(&self) -> String {
        let verb = if self.dry_run { "would import" } else { "imported" };
        let mut tables = vec![Table::Users, Table::ApiKeys];
        if self.kind == Kind::V3 {
            tables.push(Table::Credentials);
        }
        let mut lines = Vec::new();
        for table in tables {
            let (imported, skipped, failed) =
                (self.imported(Some(table)), self.skipped(Some(table)), self.failed(Some(table)));
            lines.push(format!("{}: {verb} {imported}, skipped {skipped}, failed {failed}", table.name()));
            for (reason, n) in self.by_reason(Some(table)) {
                let kind = if reason.is_skip() { "skipped" } else { "failed" };
                lines.push(format!("  {kind}: {reason}: {n}"));
            }
        }
        lines.join("\n")
    }
}

/// Imports every account of `relay`, one after the other, calling `done` after each row.
pub async fn import(app: &App, relay: &Relay, options: &Options, mut done: impl FnMut(&Outcome)) -> Report {
    let mut report = Report { dry_run: options.dry_run, kind: relay.kind, outcomes: Vec::new() };
    let mut record = |outcome: Outcome| {
        done(&outcome);
        report.outcomes.push(outcome);
    };
    match relay.kind {
        Kind::Node => import_node(app, relay, options, &mut record).await,
        Kind::V3 => import_v3(app, relay, options, &mut record).await,
    }
    report
}

fn keys_by_user(relay: &Relay) -> HashMap<&str, Vec<&Row>> {
    let mut keys_of: HashMap<&str, Vec<&Row>> = HashMap::new();
    for key in &relay.api_keys {
        keys_of.entry(key.get("userId").unwrap_or_default()).or_default().push(key);
    }
    keys_of
}

/// What becomes of a row that belongs to an account (a key, a credential): the account's
/// skip, or "its account was not imported".
fn as_part_of(account: &Result<(), Problem>) -> Result<(), Problem> {
    match account {
        Ok(()) => Ok(()),
        Err(problem) if problem.reason.is_skip() => Err(Problem::new(problem.reason)),
        Err(_) => Err(Problem::new(Reason::AccountNotImported)),
    }
}

async fn import_node(app: &App, relay: &Relay, options: &Options, record: &mut impl FnMut(Outcome)) {
    let keys_of = keys_by_user(relay);
    let user_ids: HashSet<&str> = relay.users.iter().filter_map(|u| u.get("id")).collect();
    let mut emails_seen = HashSet::new();
    for user in &relay.users {
        let id = user.get("id").unwrap_or_default();
        let keys = keys_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let result = match plan_user(user, keys, options.credentials_key.as_ref(), options.now) {
            Ok(planned) => write_account(app, &planned, options, &mut emails_seen).await,
            Err(problem) => Err(problem),
        };
        record(Outcome::of(Table::Users, user, result.clone()));
        for key in keys {
            record(Outcome::of(Table::ApiKeys, key, as_part_of(&result)));
        }
    }
    for key in relay.api_keys.iter().filter(|k| !user_ids.contains(k.get("userId").unwrap_or_default())) {
        record(Outcome::of(Table::ApiKeys, key, Err(Problem::new(Reason::NoSuchUser))));
    }
}

/// The relay 3.x: accounts with their keys, each key given the Foundry credential of the
/// client it serves (`KnownClients.credentialId`), then what became of each credential.
async fn import_v3(app: &App, relay: &Relay, options: &Options, record: &mut impl FnMut(Outcome)) {
    let keys_of = keys_by_user(relay);
    let user_ids: HashSet<&str> = relay.users.iter().filter_map(|u| u.get("id")).collect();
    let credentials: Vec<Result<PlannedCredential, Problem>> =
        relay.credentials.iter().map(|row| plan_credential(row, options.credentials_key.as_ref())).collect();
    let credential_at: HashMap<&str, usize> =
        relay.credentials.iter().enumerate().filter_map(|(i, row)| Some((row.get("id")?, i))).collect();
    // The credential a client of an account starts its sessions with.
    let mut credential_of: HashMap<(&str, &str), usize> = HashMap::new();
    for client in &relay.known_clients {
        let (Some(user), Some(client_id), Some(credential)) =
            (client.get("userId"), client.get("clientId"), client.get("credentialId"))
        else {
            continue;
        };
        let Some(&at) = credential_at.get(credential.trim()) else {
            continue;
        };
        // Only a credential of the client's own account.
        if relay.credentials[at].get("userId") == Some(user) {
            credential_of.entry((user, client_id.trim())).or_insert(at);
        }
    }
    let mut used = vec![false; relay.credentials.len()];
    let mut accounts: HashMap<&str, Result<(), Problem>> = HashMap::new();
    let mut emails_seen = HashSet::new();
    for user in &relay.users {
        let id = user.get("id").unwrap_or_default();
        let keys = keys_of.get(id).map(Vec::as_slice).unwrap_or_default();
        let (result, mut refused) = match plan_user_v3(user, keys, options.now) {
            Ok((mut planned, refused)) => {
                let mut serving = Vec::new();
                for key in &mut planned.scoped_keys {
                    let found = key.clients().into_iter().find_map(|client| {
                        let at = *credential_of.get(&(id, client))?;
                        credentials[at].as_ref().ok().map(|credential| (at, credential))
                    });
                    if let Some((at, credential)) = found {
                        key.foundry_url = credential.foundry_url.clone();
                        key.foundry_username = credential.foundry_username.clone();
                        key.foundry_password = Some(credential.foundry_password.clone());
                        serving.push(at);
                    }
                }
                let result = write_account(app, &planned, options, &mut emails_seen).await;
                if result.is_ok() {
                    for at in serving {
                        used[at] = true;
                    }
                }
                (result, refused.into_iter().collect::<HashMap<_, _>>())
            }
            Err(problem) => (Err(problem), HashMap::new()),
        };
        record(Outcome::of(Table::Users, user, result.clone()));
        for key in keys {
            let result = match refused.remove(key.get("id").unwrap_or_default()) {
                Some(problem) => Err(problem),
                None => as_part_of(&result),
            };
            record(Outcome::of(Table::ApiKeys, key, result));
        }
        accounts.insert(id, result);
    }
    for key in relay.api_keys.iter().filter(|k| !user_ids.contains(k.get("userId").unwrap_or_default())) {
        record(Outcome::of(Table::ApiKeys, key, Err(Problem::new(Reason::NoSuchUser))));
    }
    for (at, (row, planned)) in relay.credentials.iter().zip(&credentials).enumerate() {
        let result = match accounts.get(row.get("userId").unwrap_or_default()) {
            None => Err(Problem::new(Reason::NoSuchUser)),
            Some(Err(problem)) => as_part_of(&Err(problem.clone())),
            Some(Ok(())) => match planned {
                Err(problem) => Err(problem.clone()),
                Ok(_) if used[at] => Ok(()),
                Ok(_) => Err(Problem::new(Reason::ServesNoKey)),
            },
        };
        record(Outcome::of(Table::Credentials, row, result));
    }
}

/// Writes a planned account unless its email or keys are already here (or in an earlier
/// row of this run); a dry run stops before sealing.
async fn write_account(
    app: &App,
    planned: &PlannedUser,
    options: &Options,
    emails_seen: &mut HashSet<String>,
) -> Result<(), Problem> {
    if !emails_seen.insert(planned.email.normalised().to_owned()) {
        return Err(Problem::with(Reason::EmailTaken, "an earlier relay row has this email"));
    }
    if let Some(problem) = already_here(app, planned).await? {
        return Err(problem);
    }
    if options.dry_run {
        return Ok(());
    }
    let account = seal(app, planned, options.now).await?;
    match app.store.import_account(&account).await {
        Ok(()) => {
            shared::domain::activity::record(app, &account.user.id, Activity::AccountImported).await;
            Ok(())
        }
        // Written meanwhile, by another run or a registration.
        Err(PortError::Conflict) => {
            Err(already_here(app, planned).await?.unwrap_or(Problem::with(Reason::WriteFailed, "write conflict")))
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
        std::iter::once(master).chain(planned.scoped_keys.iter().map(|k| k.digest.clone())).collect();
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
    // A relay 3.x key was never seen: its digest alone, nothing for login to show.
    let (ciphertext, prefix) = match &planned.master_key {
        PlannedMaster::Key(key) => (
            app.cipher
                .encrypt(key.expose().as_bytes(), &EncryptionContext::master_key(&id))
                .await
                .map_err(|e| write_failed(&e))?,
            key.display_prefix(),
        ),
        PlannedMaster::Digest(_) => (Vec::new(), String::new()),
    };
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
            digest: planned.master_key.digest(),
            ciphertext,
            prefix,
            created_at: planned.created_at,
        },
        key_generation: 0,
        reset_token_digest: None,
        // The relay's owners registered there: an imported account counts as verified.
        email_verified: true,
        verification_token_digest: None,
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
        if key.requests_this_month > 0 {
            usage.counts.insert(month_period(now), key.requests_this_month);
        }
        let record = ScopedKey {
            id: key_id,
            user_id: id.clone(),
            name: key.name.clone(),
            digest: key.digest.clone(),
            prefix: key.prefix.clone(),
            scoped_client_id: key.scoped_client_id.clone(),
            scoped_user_id: key.scoped_user_id.clone(),
            scoped_client_ids: key.scoped_client_ids.clone(),
            scoped_user_ids: key.scoped_user_ids.clone(),
            grant: key.grant,
            monthly_limit: key.monthly_limit,
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
