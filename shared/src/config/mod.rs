//! Settings read from the environment once, at init: each variable typed by one set of
//! helpers (`Env`), and each function asking only for what it uses ([`Needs`]).

use crate::domain::limits::{parse_limits, Limit, Throttling};
use crate::domain::scopes::RouteScopes;
use crate::domain::service_key::ServiceKeyDigests;
use crate::domain::settings::{
    Settings, DEFAULT_DAILY_REQUEST_LIMIT, DEFAULT_MONTHLY_REQUEST_LIMIT, DEFAULT_SCOPED_KEYS_PER_ACCOUNT,
};
use crate::http::Endpoint;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;
use url::Url;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// What a function reads from its environment. What its [`Needs`] leave out is `None`
/// (and not read at all): the adapter it would feed then fails closed, logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tables: Tables,
    /// `KMS_KEY_ID`: the key that seals master keys and Foundry passwords.
    pub kms_key_id: Option<String>,
    /// `EMAIL_FROM`: the sender of every email.
    pub email_from: Option<String>,
    /// Where the AWS clients send their calls (`AWS_ENDPOINT_URL` and its service-specific kin).
    pub endpoints: Endpoints,
    pub settings: Settings,
}

/// The DynamoDB tables, each named by its variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    /// `USERS_TABLE`: accounts, email reservations, the key index and the meters.
    pub users: Option<String>,
    /// `SCOPED_KEYS_TABLE`
    pub scoped_keys: Option<String>,
    /// `RESET_TOKENS_TABLE`
    pub reset_tokens: Option<String>,
    /// `THROTTLE_TABLE`: the throttles' counts and blocks, and their secret.
    pub throttle: Option<String>,
    /// `ACTIVITY_TABLE`: each account's security events, for its owner.
    pub activity: Option<String>,
}

impl Tables {
    pub fn users(&self) -> Result<&str, ConfigError> {
        named(&self.users, "USERS_TABLE")
    }

    pub fn scoped_keys(&self) -> Result<&str, ConfigError> {
        named(&self.scoped_keys, "SCOPED_KEYS_TABLE")
    }

    pub fn reset_tokens(&self) -> Result<&str, ConfigError> {
        named(&self.reset_tokens, "RESET_TOKENS_TABLE")
    }

    pub fn throttle(&self) -> Result<&str, ConfigError> {
        named(&self.throttle, "THROTTLE_TABLE")
    }

    pub fn activity(&self) -> Result<&str, ConfigError> {
        named(&self.activity, "ACTIVITY_TABLE")
    }
}

fn named<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or(ConfigError::Missing(name))
}

/// The variables a function cannot start without: the tables it reads or writes, and
/// the KMS key, sender and reset page of the adapters its route calls. They match the
/// function's permissions in `template.yaml` (a test compares them). Every function reads
/// the optional settings, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub users_table: bool,
    pub scoped_keys_table: bool,
    pub reset_tokens_table: bool,
    pub throttle_table: bool,
    /// `ACTIVITY_TABLE`: where the owner's copy of a security event is written or read.
    pub activity_table: bool,
    /// `KMS_KEY_ID`: the cipher (master keys sealed at register and regenerate-key and
    /// opened at login; Foundry passwords sealed at create-api-key and opened at verify).
    pub kms_key: bool,
    /// `EMAIL_FROM`: the mailer (the reset link; the notice of a changed password).
    pub email_sender: bool,
    /// `RESET_URL`: the page the reset link opens (forgot-password).
    pub reset_url: bool,
    /// `VERIFY_EMAIL_URL`: the page the verification link opens (register,
    /// resend-verification), required only while `REQUIRE_EMAIL_VERIFICATION` is on.
    pub verify_url: bool,
}

impl Needs {
    /// Everything: the local server and the importer serve or write every part.
    pub const ALL: Needs = Needs {
        users_table: true,
        scoped_keys_table: true,
        reset_tokens_table: true,
        throttle_table: true,
        activity_table: true,
        kms_key: true,
        email_sender: true,
        reset_url: true,
        verify_url: true,
    };

    /// The users table alone: every function reads it, most need more.
    const USERS: Needs = Needs {
        users_table: true,
        scoped_keys_table: false,
        reset_tokens_table: false,
        throttle_table: false,
        activity_table: false,
        kms_key: false,
        email_sender: false,
        reset_url: false,
        verify_url: false,
    };

    /// The authorizer: keys and meters, all in the users table.
    pub const AUTHORIZER: Needs = Needs::USERS;

    /// What the function of `endpoint` uses.
    pub fn of(endpoint: Endpoint) -> Needs {
        use Endpoint::*;
        let users = Needs::USERS;
        // The routes that record or read security events (see `domain::activity`).
        let logged = Needs { activity_table: true, ..users };
        match endpoint {
            // The verification link, when verification is required.
            Register => Needs {
                reset_tokens_table: true,
                throttle_table: true,
                kms_key: true,
                email_sender: true,
                verify_url: true,
                ..users
            },
            ResendVerification => {
                Needs { reset_tokens_table: true, throttle_table: true, email_sender: true, verify_url: true, ..users }
            }
            VerifyEmail => Needs { reset_tokens_table: true, throttle_table: true, ..users },
            Login => Needs { throttle_table: true, kms_key: true, ..logged },
            RegenerateKey => Needs { scoped_keys_table: true, throttle_table: true, kms_key: true, ..logged },
            Verify => Needs { scoped_keys_table: true, throttle_table: true, kms_key: true, ..users },
            UserData => users,
            Activity => logged,
            ExportData => Needs { scoped_keys_table: true, throttle_table: true, ..logged },
            DeleteAccount => {
                Needs { scoped_keys_table: true, reset_tokens_table: true, throttle_table: true, ..logged }
            }
            ChangePassword => Needs { reset_tokens_table: true, throttle_table: true, email_sender: true, ..logged },
            // With `revokeKeys`, a reset seals a new master key (KMS) and retires the scoped keys.
            ResetPassword => Needs {
                scoped_keys_table: true,
                reset_tokens_table: true,
                throttle_table: true,
                kms_key: true,
                email_sender: true,
                ..logged
            },
            ForgotPassword => {
                Needs { reset_tokens_table: true, throttle_table: true, email_sender: true, reset_url: true, ..logged }
            }
            ValidateResetToken => Needs { reset_tokens_table: true, throttle_table: true, ..users },
            CreateApiKey => Needs { scoped_keys_table: true, kms_key: true, ..logged },
            ListApiKeys => Needs { scoped_keys_table: true, ..users },
            UpdateApiKey | DeleteApiKey => Needs { scoped_keys_table: true, ..logged },
        }
    }
}

impl Config {
    /// What a function with these needs reads from the process environment.
    pub fn from_env(needs: Needs) -> Result<Self, ConfigError> {
        Self::from_lookup(needs, |name| std::env::var(name).ok())
    }

    pub fn from_lookup(needs: Needs, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let reset_url = env.needed(needs.reset_url, "RESET_URL")?.map(|url| parse_reset_url(&url)).transpose()?;
        let verifies = needs.verify_url && env.switch("REQUIRE_EMAIL_VERIFICATION", false)?;
        let verify_url = env.needed(verifies, "VERIFY_EMAIL_URL")?.map(|url| parse_verify_url(&url)).transpose()?;
        Ok(Self {
            tables: Tables {
                users: env.needed(needs.users_table, "USERS_TABLE")?,
                scoped_keys: env.needed(needs.scoped_keys_table, "SCOPED_KEYS_TABLE")?,
                reset_tokens: env.needed(needs.reset_tokens_table, "RESET_TOKENS_TABLE")?,
                throttle: env.needed(needs.throttle_table, "THROTTLE_TABLE")?,
                activity: env.needed(needs.activity_table, "ACTIVITY_TABLE")?,
            },
            kms_key_id: env.needed(needs.kms_key, "KMS_KEY_ID")?,
            email_from: env.needed(needs.email_sender, "EMAIL_FROM")?,
            endpoints: Endpoints::read(&env)?,
            settings: settings(reset_url, verify_url, &env)?,
        })
    }
}

/// The environment, typed: every variable is read through one of these, so a blank value
/// counts as unset everywhere and every error names its variable.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The trimmed value; `None` when unset or blank.
    fn value(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// When `needed`, the value or the error naming it; otherwise not read at all.
    fn needed(&self, needed: bool, name: &'static str) -> Result<Option<String>, ConfigError> {
        if !needed {
            return Ok(None);
        }
        self.value(name).map(Some).ok_or(ConfigError::Missing(name))
    }

    /// The value parsed by `parse`, `None` when unset.
    fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.value(name).map(|v| parse(&v).map_err(|reason| ConfigError::Invalid { name, reason })).transpose()
    }

    /// A number, `default` when unset.
    fn number<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.parsed(name, |v| v.parse().map_err(|e: T::Err| e.to_string()))?.unwrap_or(default))
    }

    /// `true`/`false` (any case) or `1`/`0`, `default` when unset.
    fn switch(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let parse = |v: &str| match v {
            _ if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            _ if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            _ => Err(format!("expected true or false, got {v:?}")),
        };
        Ok(self.parsed(name, parse)?.unwrap_or(default))
    }

    /// Limits of the form `N/SECONDS`, comma-separated; `default` when unset.
    fn limits(&self, name: &'static str, default: Vec<Limit>) -> Result<Vec<Limit>, ConfigError> {
        let parse = |v: &str| parse_limits(v).ok_or_else(|| format!("expected N/SECONDS, got {v:?}"));
        Ok(self.parsed(name, parse)?.unwrap_or(default))
    }

    /// One `N/SECONDS` limit; `default` when unset.
    fn limit(&self, name: &'static str, default: Limit) -> Result<Limit, ConfigError> {
        match self.limits(name, vec![default])?.as_slice() {
            [limit] => Ok(*limit),
            _ => Err(ConfigError::Invalid { name, reason: "expected one N/SECONDS limit".into() }),
        }
    }
}

/// The endpoint each AWS client calls when the environment names one, resolved as the AWS
/// SDKs document it ("Service-specific endpoints"): `AWS_ENDPOINT_URL_<SERVICE>` (the
/// service id in capitals: `DYNAMODB`, `KMS`, `SESV2`) before `AWS_ENDPOINT_URL`, and
/// neither when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is true. `None`: the client keeps
/// what its SDK configuration has (AWS's own endpoint in a function; a developer's
/// profile may name one). Both ways of building the clients apply it (`aws::build_app_with`),
/// so DynamoDB alone can be pointed at DynamoDB Local.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub dynamodb: Option<String>,
    pub kms: Option<String>,
    pub sesv2: Option<String>,
}

impl Endpoints {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env(lookup))
    }

    fn read(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let ignored = env.parsed("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", |v| match v {
            _ if v.eq_ignore_ascii_case("true") => Ok(true),
            _ if v.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(format!("expected true or false, got {v:?}")),
        })?;
        let endpoint = |service: &str| {
            let url = env.value(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| env.value("AWS_ENDPOINT_URL"));
            url.filter(|_| ignored != Some(true))
        };
        Ok(Self { dynamodb: endpoint("DYNAMODB"), kms: endpoint("KMS"), sesv2: endpoint("SESV2") })
    }
}

/// The reset page must be an http(s) URL: the emailed link is built from it alone.
pub fn parse_reset_url(raw: &str) -> Result<Url, ConfigError> {
    parse_page_url("RESET_URL", raw)
}

/// The verification page, as the reset page.
pub fn parse_verify_url(raw: &str) -> Result<Url, ConfigError> {
    parse_page_url("VERIFY_EMAIL_URL", raw)
}

fn parse_page_url(name: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("must be an http(s) URL".into()));
    }
    Ok(url)
}

/// Hashes that may wait for a worker: with two workers at about 20 ms a hash, the last
/// one waits well under a second.
pub const DEFAULT_HASH_QUEUE: u64 = 64;

impl Settings {
    /// The optional settings (switches and limits), with their defaults, for a server
    /// that sends reset links to `reset_url` (and verification links to
    /// `VERIFY_EMAIL_URL`, when set).
    pub fn from_lookup(reset_url: Url, lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let verify_url = env.value("VERIFY_EMAIL_URL").map(|url| parse_verify_url(&url)).transpose()?;
        settings(Some(reset_url), verify_url, &env)
    }

    /// The optional settings from the process environment.
    pub fn from_env(reset_url: Url) -> Result<Self, ConfigError> {
        Self::from_lookup(reset_url, &|name| std::env::var(name).ok())
    }
}

fn settings(
    reset_url: Option<Url>,
    verify_url: Option<Url>,
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> Result<Settings, ConfigError> {
    let hash_workers = env.parsed("HASH_WORKERS", |v| match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, got {v:?}")),
    })?;
    let service_key_digests =
        env.parsed("SERVICE_KEY_DIGESTS", |v| ServiceKeyDigests::parse([v]).map_err(|e| e.to_string()))?;
    let legacy_keys_until = env.parsed("LEGACY_KEYS_UNTIL", parse_instant)?;
    Ok(Settings {
        reset_url,
        require_email_verification: env.switch("REQUIRE_EMAIL_VERIFICATION", false)?,
        verify_url,
        registration_enabled: env.switch("REGISTRATION_ENABLED", true)?,
        daily_request_limit: env.number("DAILY_REQUEST_LIMIT", DEFAULT_DAILY_REQUEST_LIMIT)?,
        monthly_request_limit: env.number("MONTHLY_REQUEST_LIMIT", DEFAULT_MONTHLY_REQUEST_LIMIT)?,
        scoped_keys_per_account: env.number("SCOPED_KEYS_PER_ACCOUNT", DEFAULT_SCOPED_KEYS_PER_ACCOUNT)?,
        throttling: throttling(env)?,
        reset_response_floor: Duration::from_millis(env.number("RESET_RESPONSE_FLOOR_MS", 1000)?),
        hash_workers,
        hash_queue: env.number("HASH_QUEUE", DEFAULT_HASH_QUEUE as usize)?,
        service_key_digests: service_key_digests.unwrap_or_default(),
        route_scopes: env.parsed("ROUTE_SCOPES", RouteScopes::with_setting)?.unwrap_or_default(),
        master_key_relay_access: env
            .parsed("MASTER_KEY_RELAY_ACCESS", |v| match v {
                "all" => Ok(true),
                "none" => Ok(false),
                _ => Err(format!("expected all or none, got {v:?}")),
            })?
            .unwrap_or(true),
        legacy_keys_until,
    })
}

/// An RFC 3339 date and time (`2027-01-01T00:00:00Z`), or a date alone for the start of
/// that day in UTC (`2027-01-01`).
fn parse_instant(v: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|at| at.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(|day| day.and_time(chrono::NaiveTime::MIN).and_utc())
        })
        .map_err(|_| format!("expected an RFC 3339 date and time such as 2027-01-01T00:00:00Z, or a date, got {v:?}"))
}

/// The throttles: `THROTTLING=off` switches all of them off; each limit has a variable of
/// the form `N/SECONDS` (a list for the reset emails) and a default.
fn throttling(env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Option<Throttling>, ConfigError> {
    if env.value("THROTTLING").is_some_and(|v| v.eq_ignore_ascii_case("off")) {
        return Ok(None);
    }
    let defaults = Throttling::default();
    Ok(Some(Throttling {
        account_failures: env.limit("THROTTLE_ACCOUNT_FAILURES", defaults.account_failures)?,
        account_failures_all: env.limit("THROTTLE_ACCOUNT_FAILURES_ALL", defaults.account_failures_all)?,
        max_lockout: Duration::from_secs(env.number("THROTTLE_MAX_LOCKOUT_SECONDS", defaults.max_lockout.as_secs())?),
        auth_per_address: env.limit("THROTTLE_AUTH_PER_ADDRESS", defaults.auth_per_address)?,
        reset_per_address: env.limit("THROTTLE_RESET_PER_ADDRESS", defaults.reset_per_address)?,
        reset_emails: env.limits("THROTTLE_RESET_EMAILS", defaults.reset_emails)?,
        reset_emails_all: env.limits("THROTTLE_RESET_EMAILS_ALL", defaults.reset_emails_all)?,
        account_management: env.limit("THROTTLE_ACCOUNT_MANAGEMENT", defaults.account_management)?,
        verification_emails: env.limit("THROTTLE_VERIFICATION_EMAILS", defaults.verification_emails)?,
        service_key_failures: env.limit("THROTTLE_SERVICE_KEY_FAILURES", defaults.service_key_failures)?,
    }))
}

#[cfg(test)]
mod tests;
