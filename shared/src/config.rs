//! Settings read from the environment once, at init: each variable typed by one set of
//! helpers (`Env`), and each function asking only for what it uses ([`Needs`]).

use crate::domain::limits::{parse_limits, Limit, Throttling};
use crate::domain::service_key::ServiceKeyDigests;
use crate::domain::settings::Settings;
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
    /// `KMS_KEY_ID`: the cipher (master keys sealed at register and regenerate-key and
    /// opened at login; Foundry passwords sealed at create-api-key and opened at verify).
    pub kms_key: bool,
    /// `EMAIL_FROM`: the mailer (the reset link; the notice of a changed password).
    pub email_sender: bool,
    /// `RESET_URL`: the page the reset link opens (forgot-password).
    pub reset_url: bool,
}

impl Needs {
    /// Everything: the local server and the importer serve or write every part.
    pub const ALL: Needs = Needs {
        users_table: true,
        scoped_keys_table: true,
        reset_tokens_table: true,
        throttle_table: true,
        kms_key: true,
        email_sender: true,
        reset_url: true,
    };

    /// The users table alone: every function reads it, most need more.
    const USERS: Needs = Needs {
        users_table: true,
        scoped_keys_table: false,
        reset_tokens_table: false,
        throttle_table: false,
        kms_key: false,
        email_sender: false,
        reset_url: false,
    };

    /// The authorizer: keys and meters, all in the users table.
    pub const AUTHORIZER: Needs = Needs::USERS;

    /// What the function of `endpoint` uses.
    pub fn of(endpoint: Endpoint) -> Needs {
        use Endpoint::*;
        let users = Needs::USERS;
        match endpoint {
            Register | Login => Needs { throttle_table: true, kms_key: true, ..users },
            RegenerateKey | Verify => Needs { scoped_keys_table: true, throttle_table: true, kms_key: true, ..users },
            UserData => users,
            ExportData => Needs { scoped_keys_table: true, throttle_table: true, ..users },
            DeleteAccount => Needs { scoped_keys_table: true, reset_tokens_table: true, throttle_table: true, ..users },
            ChangePassword | ResetPassword => {
                Needs { reset_tokens_table: true, throttle_table: true, email_sender: true, ..users }
            }
            ForgotPassword => {
                Needs { reset_tokens_table: true, throttle_table: true, email_sender: true, reset_url: true, ..users }
            }
            ValidateResetToken => Needs { reset_tokens_table: true, throttle_table: true, ..users },
            CreateApiKey => Needs { scoped_keys_table: true, kms_key: true, ..users },
            ListApiKeys | DeleteApiKey => Needs { scoped_keys_table: true, ..users },
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
        Ok(Self {
            tables: Tables {
                users: env.needed(needs.users_table, "USERS_TABLE")?,
                scoped_keys: env.needed(needs.scoped_keys_table, "SCOPED_KEYS_TABLE")?,
                reset_tokens: env.needed(needs.reset_tokens_table, "RESET_TOKENS_TABLE")?,
                throttle: env.needed(needs.throttle_table, "THROTTLE_TABLE")?,
            },
            kms_key_id: env.needed(needs.kms_key, "KMS_KEY_ID")?,
            email_from: env.needed(needs.email_sender, "EMAIL_FROM")?,
            endpoints: Endpoints::read(&env)?,
            settings: settings(reset_url, &env)?,
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
    let invalid = |reason: String| ConfigError::Invalid { name: "RESET_URL", reason };
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
    /// that sends reset links to `reset_url`.
    pub fn from_lookup(reset_url: Url, lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        settings(Some(reset_url), &Env(lookup))
    }

    /// The optional settings from the process environment.
    pub fn from_env(reset_url: Url) -> Result<Self, ConfigError> {
        Self::from_lookup(reset_url, &|name| std::env::var(name).ok())
    }
}

fn settings(reset_url: Option<Url>, env: &Env<impl Fn(&str) -> Option<String>>) -> Result<Settings, ConfigError> {
    let hash_workers = env.parsed("HASH_WORKERS", |v| match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive number, got {v:?}")),
    })?;
    let service_key_digests =
        env.parsed("SERVICE_KEY_DIGESTS", |v| ServiceKeyDigests::parse([v]).map_err(|e| e.to_string()))?;
    Ok(Settings {
        reset_url,
        registration_enabled: env.switch("REGISTRATION_ENABLED", true)?,
        daily_request_limit: env.number("DAILY_REQUEST_LIMIT", 1000)?,
        monthly_request_limit: env.number("MONTHLY_REQUEST_LIMIT", 100)?,
        scoped_keys_per_account: env.number("SCOPED_KEYS_PER_ACCOUNT", 100)?,
        throttling: throttling(env)?,
        reset_response_floor: Duration::from_millis(env.number("RESET_RESPONSE_FLOOR_MS", 1000)?),
        hash_workers,
        hash_queue: env.number("HASH_QUEUE", DEFAULT_HASH_QUEUE as usize)?,
        service_key_digests: service_key_digests.unwrap_or_default(),
    })
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
        max_lockout: Duration::from_secs(env.number("THROTTLE_MAX_LOCKOUT_SECONDS", defaults.max_lockout.as_secs())?),
        auth_per_address: env.limit("THROTTLE_AUTH_PER_ADDRESS", defaults.auth_per_address)?,
        reset_per_address: env.limit("THROTTLE_RESET_PER_ADDRESS", defaults.reset_per_address)?,
        reset_emails: env.limits("THROTTLE_RESET_EMAILS", defaults.reset_emails)?,
        account_management: env.limit("THROTTLE_ACCOUNT_MANAGEMENT", defaults.account_management)?,
        service_key_failures: env.limit("THROTTLE_SERVICE_KEY_FAILURES", defaults.service_key_failures)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("USERS_TABLE", "users"),
        ("SCOPED_KEYS_TABLE", "scoped"),
        ("RESET_TOKENS_TABLE", "tokens"),
        ("THROTTLE_TABLE", "throttle"),
        ("KMS_KEY_ID", "alias/auth"),
        ("EMAIL_FROM", "no-reply@example.io"),
        ("RESET_URL", "https://relay.example.io/reset"),
    ];

    #[test]
    fn defaults_apply_when_optional_variables_are_absent() {
        let config = Config::from_lookup(Needs::ALL, env(FULL)).unwrap();
        assert_eq!(config.tables.users(), Ok("users"));
        assert!(config.settings.registration_enabled);
        assert_eq!(config.settings.daily_request_limit, 1000);
        assert_eq!(config.settings.monthly_request_limit, 100);
        assert_eq!(config.settings.scoped_keys_per_account, 100);
        assert_eq!(config.settings.throttling, Some(Throttling::default()));
    }

    #[test]
    fn a_missing_required_variable_is_named() {
        for (name, _) in FULL {
            let without: Vec<_> = FULL.iter().copied().filter(|(n, _)| n != name).collect();
            let err = Config::from_lookup(Needs::ALL, env(&without)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    /// The function of `endpoint` starts with exactly what `needs` names, and without any
    /// one of them fails naming it.
    fn starts_with_exactly(endpoint: Endpoint, needed: &[&'static str]) {
        let given: Vec<_> = FULL.iter().copied().filter(|(name, _)| needed.contains(name)).collect();
        assert_eq!(given.len(), needed.len(), "{endpoint:?}: {needed:?} are all variables of FULL");
        let config = Config::from_lookup(Needs::of(endpoint), env(&given))
            .unwrap_or_else(|e| panic!("{endpoint:?} starts with {needed:?} alone: {e}"));
        assert_eq!(config.kms_key_id.is_some(), needed.contains(&"KMS_KEY_ID"), "{endpoint:?}");
        assert_eq!(config.email_from.is_some(), needed.contains(&"EMAIL_FROM"), "{endpoint:?}");
        assert_eq!(config.settings.reset_url.is_some(), needed.contains(&"RESET_URL"), "{endpoint:?}");
        for name in needed {
            let without: Vec<_> = given.iter().copied().filter(|(n, _)| n != name).collect();
            let err = Config::from_lookup(Needs::of(endpoint), env(&without)).unwrap_err();
            assert_eq!(err, ConfigError::Missing(name), "{endpoint:?}");
        }
    }

    #[test]
    fn each_function_requires_only_what_its_route_uses() {
        use Endpoint::*;
        const USERS: &str = "USERS_TABLE";
        const SCOPED: &str = "SCOPED_KEYS_TABLE";
        const TOKENS: &str = "RESET_TOKENS_TABLE";
        const THROTTLE: &str = "THROTTLE_TABLE";
        const KMS: &str = "KMS_KEY_ID";
        const FROM: &str = "EMAIL_FROM";
        const RESET: &str = "RESET_URL";
        // login opens the master key (KMS) but sends no mail: it starts without EMAIL_FROM.
        starts_with_exactly(Login, &[USERS, THROTTLE, KMS]);
        starts_with_exactly(Register, &[USERS, THROTTLE, KMS]);
        starts_with_exactly(RegenerateKey, &[USERS, SCOPED, THROTTLE, KMS]);
        starts_with_exactly(UserData, &[USERS]);
        // The export lists scoped keys without their Foundry passwords: no KMS.
        starts_with_exactly(ExportData, &[USERS, SCOPED, THROTTLE]);
        starts_with_exactly(DeleteAccount, &[USERS, SCOPED, TOKENS, THROTTLE]);
        starts_with_exactly(ChangePassword, &[USERS, TOKENS, THROTTLE, FROM]);
        starts_with_exactly(ForgotPassword, &[USERS, TOKENS, THROTTLE, FROM, RESET]);
        starts_with_exactly(ResetPassword, &[USERS, TOKENS, THROTTLE, FROM]);
        starts_with_exactly(ValidateResetToken, &[USERS, TOKENS, THROTTLE]);
        starts_with_exactly(CreateApiKey, &[USERS, SCOPED, KMS]);
        starts_with_exactly(ListApiKeys, &[USERS, SCOPED]);
        starts_with_exactly(DeleteApiKey, &[USERS, SCOPED]);
        starts_with_exactly(Verify, &[USERS, SCOPED, THROTTLE, KMS]);
    }

    #[test]
    fn the_authorizer_needs_the_users_table_alone() {
        let config = Config::from_lookup(Needs::AUTHORIZER, env(&[("USERS_TABLE", "users")])).unwrap();
        assert_eq!(config.tables.users(), Ok("users"));
        assert_eq!(config.tables.throttle(), Err(ConfigError::Missing("THROTTLE_TABLE")), "absent, and named");
        assert_eq!(Config::from_lookup(Needs::AUTHORIZER, env(&[])).unwrap_err(), ConfigError::Missing("USERS_TABLE"));
    }

    #[test]
    fn what_a_function_does_not_need_is_not_read() {
        let mut pairs = FULL.to_vec();
        pairs.retain(|(n, _)| *n != "RESET_URL");
        pairs.push(("RESET_URL", "javascript:alert(1)"));
        let login = Config::from_lookup(Needs::of(Endpoint::Login), env(&pairs)).unwrap();
        assert_eq!(login.settings.reset_url, None);
        assert_eq!(login.email_from, None);
        let forgot = Config::from_lookup(Needs::of(Endpoint::ForgotPassword), env(&pairs));
        assert!(matches!(forgot, Err(ConfigError::Invalid { name: "RESET_URL", .. })));
    }

    #[test]
    fn a_blank_value_counts_as_unset() {
        let mut pairs = FULL.to_vec();
        pairs.extend([("DAILY_REQUEST_LIMIT", " "), ("REGISTRATION_ENABLED", ""), ("HASH_WORKERS", "")]);
        let settings = Config::from_lookup(Needs::ALL, env(&pairs)).unwrap().settings;
        assert_eq!(
            (settings.daily_request_limit, settings.registration_enabled, settings.hash_workers),
            (1000, true, None)
        );
        let blank_table = [("USERS_TABLE", "  ")];
        assert_eq!(Config::from_lookup(Needs::AUTHORIZER, env(&blank_table)), Err(ConfigError::Missing("USERS_TABLE")));
    }

    #[test]
    fn switches_and_limits_are_read() {
        let mut pairs = FULL.to_vec();
        pairs.extend([
            ("REGISTRATION_ENABLED", "false"),
            ("DAILY_REQUEST_LIMIT", "5"),
            ("MONTHLY_REQUEST_LIMIT", "50"),
            ("THROTTLING", "off"),
        ]);
        let settings = Config::from_lookup(Needs::ALL, env(&pairs)).unwrap().settings;
        assert_eq!(settings.throttling, None);
        let mut pairs = FULL.to_vec();
        pairs.extend([
            ("REGISTRATION_ENABLED", "false"),
            ("DAILY_REQUEST_LIMIT", "5"),
            ("MONTHLY_REQUEST_LIMIT", "50"),
            ("THROTTLE_ACCOUNT_FAILURES", "3/60"),
            ("THROTTLE_RESET_EMAILS", "2/60,4/600"),
        ]);
        let settings = Config::from_lookup(Needs::ALL, env(&pairs)).unwrap().settings;
        assert!(!settings.registration_enabled);
        assert_eq!((settings.daily_request_limit, settings.monthly_request_limit), (5, 50));
        let throttling = settings.throttling.unwrap();
        assert_eq!(throttling.account_failures, Limit::new(3, 60));
        assert_eq!(throttling.reset_emails, vec![Limit::new(2, 60), Limit::new(4, 600)]);
        assert_eq!(throttling.auth_per_address, Throttling::default().auth_per_address);
    }

    #[test]
    fn service_key_digests_are_read_and_bad_ones_named_without_their_value() {
        let settings = Config::from_lookup(Needs::ALL, env(FULL)).unwrap().settings;
        assert!(!settings.service_key_digests.is_open(), "closed unless configured");
        let digest = "ab".repeat(32);
        let mut pairs = FULL.to_vec();
        pairs.push(("SERVICE_KEY_DIGESTS", &digest));
        assert!(Config::from_lookup(Needs::ALL, env(&pairs)).unwrap().settings.service_key_digests.is_open());
        let mut pairs = FULL.to_vec();
        pairs.push(("SERVICE_KEY_DIGESTS", "fsv_secretsecret"));
        let err = Config::from_lookup(Needs::ALL, env(&pairs)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "SERVICE_KEY_DIGESTS", .. }));
        assert!(!err.to_string().contains("secretsecret"), "{err}");
    }

    #[test]
    fn a_service_specific_endpoint_comes_before_the_general_one() {
        let endpoints = |pairs: &[(&str, &str)]| Endpoints::from_lookup(env(pairs)).unwrap();
        assert_eq!(endpoints(&[]), Endpoints::default(), "no endpoint named: the SDK's own");
        let general = endpoints(&[("AWS_ENDPOINT_URL", "http://emulator:5000")]);
        assert_eq!(general.dynamodb.as_deref(), Some("http://emulator:5000"));
        assert_eq!(general.kms.as_deref(), Some("http://emulator:5000"));
        assert_eq!(general.sesv2.as_deref(), Some("http://emulator:5000"));
        let dynamodb_local = endpoints(&[
            ("AWS_ENDPOINT_URL", "http://emulator:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:8000"),
        ]);
        assert_eq!(dynamodb_local.dynamodb.as_deref(), Some("http://ddb:8000"));
        assert_eq!(dynamodb_local.kms.as_deref(), Some("http://emulator:5000"));
        assert_eq!(dynamodb_local.sesv2.as_deref(), Some("http://emulator:5000"));
        let each = endpoints(&[("AWS_ENDPOINT_URL_KMS", "http://kms:1"), ("AWS_ENDPOINT_URL_SESV2", "http://ses:2")]);
        assert_eq!(
            each,
            Endpoints { dynamodb: None, kms: Some("http://kms:1".into()), sesv2: Some("http://ses:2".into()) }
        );
    }

    #[test]
    fn configured_endpoints_may_be_ignored() {
        let pairs = [
            ("AWS_ENDPOINT_URL", "http://emulator:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:8000"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ];
        assert_eq!(Endpoints::from_lookup(env(&pairs)).unwrap(), Endpoints::default());
        let pairs = [("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "sometimes")];
        assert!(matches!(
            Endpoints::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid { name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", .. })
        ));
    }

    #[test]
    fn malformed_values_are_refused_with_their_name() {
        let mut pairs = FULL.to_vec();
        pairs.push(("DAILY_REQUEST_LIMIT", "lots"));
        assert!(matches!(
            Config::from_lookup(Needs::ALL, env(&pairs)),
            Err(ConfigError::Invalid { name: "DAILY_REQUEST_LIMIT", .. })
        ));
        let mut pairs = FULL.to_vec();
        pairs.retain(|(n, _)| *n != "RESET_URL");
        pairs.push(("RESET_URL", "javascript:alert(1)"));
        assert!(matches!(
            Config::from_lookup(Needs::ALL, env(&pairs)),
            Err(ConfigError::Invalid { name: "RESET_URL", .. })
        ));
    }
}
