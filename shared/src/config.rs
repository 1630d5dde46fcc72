//! Settings read from the environment once, at init.

use crate::domain::service_key::ServiceKeyDigests;
use crate::domain::settings::Settings;
use crate::domain::throttle::{parse_limits, Limit, Throttling};
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

/// Everything a function reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub users_table: String,
    pub scoped_keys_table: String,
    pub reset_tokens_table: String,
    pub throttle_table: String,
    pub kms_key_id: String,
    pub email_from: String,
    /// Where the AWS clients send their calls (`AWS_ENDPOINT_URL` and its service-specific kin).
    pub endpoints: Endpoints,
    pub settings: Settings,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required =
            |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name));
        let reset_url = parse_reset_url(&required("RESET_URL")?)?;
        Ok(Self {
            users_table: required("USERS_TABLE")?,
            scoped_keys_table: required("SCOPED_KEYS_TABLE")?,
            reset_tokens_table: required("RESET_TOKENS_TABLE")?,
            throttle_table: required("THROTTLE_TABLE")?,
            kms_key_id: required("KMS_KEY_ID")?,
            email_from: required("EMAIL_FROM")?,
            endpoints: Endpoints::from_lookup(&lookup)?,
            settings: Settings::from_lookup(reset_url, &lookup)?,
        })
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
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ignored = match lookup("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ConfigError::Invalid {
                    name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                    reason: format!("expected true or false, got {v:?}"),
                })
            }
        };
        let endpoint = |service: &str| {
            let set = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            (!ignored)
                .then(|| set(&format!("AWS_ENDPOINT_URL_{service}")).or_else(|| set("AWS_ENDPOINT_URL")))
                .flatten()
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
    /// The optional settings (switches and limits), with their defaults.
    pub fn from_lookup(reset_url: Url, lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let number = |name: &'static str, default: u64| match lookup(name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|e| invalid(name, e.to_string())),
        };
        let registration_enabled = match lookup("REGISTRATION_ENABLED").as_deref().map(str::trim) {
            None | Some("") => true,
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => true,
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => false,
            Some(v) => return Err(invalid("REGISTRATION_ENABLED", format!("expected true or false, got {v:?}"))),
        };
        Ok(Self {
            reset_url,
            registration_enabled,
            daily_request_limit: number("DAILY_REQUEST_LIMIT", 1000)?,
            monthly_request_limit: number("MONTHLY_REQUEST_LIMIT", 100)?,
            scoped_keys_per_account: number("SCOPED_KEYS_PER_ACCOUNT", 100)?,
            throttling: throttling(lookup)?,
            reset_response_floor: Duration::from_millis(number("RESET_RESPONSE_FLOOR_MS", 1000)?),
            hash_workers: match lookup("HASH_WORKERS") {
                None => None,
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => return Err(invalid("HASH_WORKERS", format!("expected a positive number, got {v:?}"))),
                },
            },
            hash_queue: usize::try_from(number("HASH_QUEUE", DEFAULT_HASH_QUEUE)?)
                .map_err(|e| invalid("HASH_QUEUE", e.to_string()))?,
            service_key_digests: ServiceKeyDigests::parse(lookup("SERVICE_KEY_DIGESTS").as_deref())
                .map_err(|e| invalid("SERVICE_KEY_DIGESTS", e.to_string()))?,
        })
    }

    /// The optional settings from the process environment.
    pub fn from_env(reset_url: Url) -> Result<Self, ConfigError> {
        Self::from_lookup(reset_url, &|name| std::env::var(name).ok())
    }
}

/// The throttles: `THROTTLING=off` switches all of them off; each limit has a variable of
/// the form `N/SECONDS` (a list for the reset emails) and a default.
fn throttling(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Throttling>, ConfigError> {
    if lookup("THROTTLING").is_some_and(|v| v.trim().eq_ignore_ascii_case("off")) {
        return Ok(None);
    }
    let defaults = Throttling::default();
    let limits = |name: &'static str, default: Vec<Limit>| match lookup(name) {
        None => Ok(default),
        Some(text) => parse_limits(&text)
            .ok_or_else(|| ConfigError::Invalid { name, reason: format!("expected N/SECONDS, got {text:?}") }),
    };
    let one = |name: &'static str, default: Limit| -> Result<Limit, ConfigError> {
        match limits(name, vec![default])?.as_slice() {
            [limit] => Ok(*limit),
            _ => Err(ConfigError::Invalid { name, reason: "expected one N/SECONDS limit".into() }),
        }
    };
    let max_lockout = match lookup("THROTTLE_MAX_LOCKOUT_SECONDS") {
        None => defaults.max_lockout,
        Some(v) => Duration::from_secs(v.trim().parse().map_err(|e: std::num::ParseIntError| {
            ConfigError::Invalid { name: "THROTTLE_MAX_LOCKOUT_SECONDS", reason: e.to_string() }
        })?),
    };
    Ok(Some(Throttling {
        account_failures: one("THROTTLE_ACCOUNT_FAILURES", defaults.account_failures)?,
        max_lockout,
        auth_per_address: one("THROTTLE_AUTH_PER_ADDRESS", defaults.auth_per_address)?,
        reset_per_address: one("THROTTLE_RESET_PER_ADDRESS", defaults.reset_per_address)?,
        reset_emails: limits("THROTTLE_RESET_EMAILS", defaults.reset_emails)?,
        account_management: one("THROTTLE_ACCOUNT_MANAGEMENT", defaults.account_management)?,
        service_key_failures: one("THROTTLE_SERVICE_KEY_FAILURES", defaults.service_key_failures)?,
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
        let config = Config::from_lookup(env(FULL)).unwrap();
        assert_eq!(config.users_table, "users");
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
            let err = Config::from_lookup(env(&without)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
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
        let settings = Config::from_lookup(env(&pairs)).unwrap().settings;
        assert_eq!(settings.throttling, None);
        let mut pairs = FULL.to_vec();
        pairs.extend([
            ("REGISTRATION_ENABLED", "false"),
            ("DAILY_REQUEST_LIMIT", "5"),
            ("MONTHLY_REQUEST_LIMIT", "50"),
            ("THROTTLE_ACCOUNT_FAILURES", "3/60"),
            ("THROTTLE_RESET_EMAILS", "2/60,4/600"),
        ]);
        let settings = Config::from_lookup(env(&pairs)).unwrap().settings;
        assert!(!settings.registration_enabled);
        assert_eq!((settings.daily_request_limit, settings.monthly_request_limit), (5, 50));
        let throttling = settings.throttling.unwrap();
        assert_eq!(throttling.account_failures, Limit::new(3, 60));
        assert_eq!(throttling.reset_emails, vec![Limit::new(2, 60), Limit::new(4, 600)]);
        assert_eq!(throttling.auth_per_address, Throttling::default().auth_per_address);
    }

    #[test]
    fn service_key_digests_are_read_and_bad_ones_named_without_their_value() {
        let settings = Config::from_lookup(env(FULL)).unwrap().settings;
        assert!(!settings.service_key_digests.is_open(), "closed unless configured");
        let digest = "ab".repeat(32);
        let mut pairs = FULL.to_vec();
        pairs.push(("SERVICE_KEY_DIGESTS", &digest));
        assert!(Config::from_lookup(env(&pairs)).unwrap().settings.service_key_digests.is_open());
        let mut pairs = FULL.to_vec();
        pairs.push(("SERVICE_KEY_DIGESTS", "fsv_secretsecret"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "SERVICE_KEY_DIGESTS", .. }));
        assert!(!err.to_string().contains("secretsecret"), "{err}");
    }

    #[test]
    fn a_service_specific_endpoint_comes_before_the_general_one() {
        let endpoints = |pairs: &[(&str, &str)]| Endpoints::from_lookup(&env(pairs)).unwrap();
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
        assert_eq!(Endpoints::from_lookup(&env(&pairs)).unwrap(), Endpoints::default());
        let pairs = [("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "sometimes")];
        assert!(matches!(
            Endpoints::from_lookup(&env(&pairs)),
            Err(ConfigError::Invalid { name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", .. })
        ));
    }

    #[test]
    fn malformed_values_are_refused_with_their_name() {
        let mut pairs = FULL.to_vec();
        pairs.push(("DAILY_REQUEST_LIMIT", "lots"));
        assert!(matches!(
            Config::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid { name: "DAILY_REQUEST_LIMIT", .. })
        ));
        let mut pairs = FULL.to_vec();
        pairs.retain(|(n, _)| *n != "RESET_URL");
        pairs.push(("RESET_URL", "javascript:alert(1)"));
        assert!(matches!(Config::from_lookup(env(&pairs)), Err(ConfigError::Invalid { name: "RESET_URL", .. })));
    }
}
