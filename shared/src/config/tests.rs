//! The configuration read from a lookup of variables, as from the environment.

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
    ("ACTIVITY_TABLE", "activity"),
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
    const ACTIVITY: &str = "ACTIVITY_TABLE";
    const KMS: &str = "KMS_KEY_ID";
    const FROM: &str = "EMAIL_FROM";
    const RESET: &str = "RESET_URL";
    // login opens the master key (KMS) but sends no mail: it starts without EMAIL_FROM.
    starts_with_exactly(Login, &[USERS, THROTTLE, ACTIVITY, KMS]);
    // register sends the verification link when verification is required.
    starts_with_exactly(Register, &[USERS, TOKENS, THROTTLE, KMS, FROM]);
    starts_with_exactly(VerifyEmail, &[USERS, TOKENS, THROTTLE]);
    starts_with_exactly(ResendVerification, &[USERS, TOKENS, THROTTLE, FROM]);
    starts_with_exactly(RegenerateKey, &[USERS, SCOPED, THROTTLE, ACTIVITY, KMS]);
    starts_with_exactly(UserData, &[USERS]);
    starts_with_exactly(Activity, &[USERS, ACTIVITY]);
    // The export lists scoped keys without their Foundry passwords: no KMS.
    starts_with_exactly(ExportData, &[USERS, SCOPED, THROTTLE, ACTIVITY]);
    starts_with_exactly(DeleteAccount, &[USERS, SCOPED, TOKENS, THROTTLE, ACTIVITY]);
    starts_with_exactly(ChangePassword, &[USERS, TOKENS, THROTTLE, ACTIVITY, FROM]);
    starts_with_exactly(ForgotPassword, &[USERS, TOKENS, THROTTLE, ACTIVITY, FROM, RESET]);
    // revokeKeys seals a new master key and retires the scoped keys.
    starts_with_exactly(ResetPassword, &[USERS, SCOPED, TOKENS, THROTTLE, ACTIVITY, KMS, FROM]);
    starts_with_exactly(ValidateResetToken, &[USERS, TOKENS, THROTTLE]);
    starts_with_exactly(CreateApiKey, &[USERS, SCOPED, ACTIVITY, KMS]);
    starts_with_exactly(ListApiKeys, &[USERS, SCOPED]);
    starts_with_exactly(UpdateApiKey, &[USERS, SCOPED, ACTIVITY]);
    starts_with_exactly(DeleteApiKey, &[USERS, SCOPED, ACTIVITY]);
    starts_with_exactly(Verify, &[USERS, SCOPED, THROTTLE, KMS]);
}

#[test]
fn the_verification_page_is_required_only_while_verification_is() {
    let off = Config::from_lookup(Needs::of(Endpoint::Register), env(FULL)).unwrap();
    assert!(!off.settings.require_email_verification, "off by default");
    assert_eq!(off.settings.verify_url, None);
    let mut on = FULL.to_vec();
    on.push(("REQUIRE_EMAIL_VERIFICATION", "true"));
    for endpoint in [Endpoint::Register, Endpoint::ResendVerification] {
        let err = Config::from_lookup(Needs::of(endpoint), env(&on)).unwrap_err();
        assert_eq!(err, ConfigError::Missing("VERIFY_EMAIL_URL"), "{endpoint:?}");
    }
    let login = Config::from_lookup(Needs::of(Endpoint::Login), env(&on)).unwrap();
    assert!(login.settings.require_email_verification, "the authorizer's rule applies everywhere");
    on.push(("VERIFY_EMAIL_URL", "javascript:alert(1)"));
    let invalid = Config::from_lookup(Needs::of(Endpoint::Register), env(&on));
    assert!(matches!(invalid, Err(ConfigError::Invalid { name: "VERIFY_EMAIL_URL", .. })));
    on.pop();
    on.push(("VERIFY_EMAIL_URL", "https://relay.example.io/verify-email"));
    let register = Config::from_lookup(Needs::of(Endpoint::Register), env(&on)).unwrap();
    assert_eq!(register.settings.verify_url.unwrap().as_str(), "https://relay.example.io/verify-email");
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
        ("THROTTLE_ACCOUNT_FAILURES_ALL", "7/70"),
        ("THROTTLE_RESET_EMAILS_ALL", "3/300"),
    ]);
    let settings = Config::from_lookup(Needs::ALL, env(&pairs)).unwrap().settings;
    assert!(!settings.registration_enabled);
    assert_eq!((settings.daily_request_limit, settings.monthly_request_limit), (5, 50));
    let throttling = settings.throttling.unwrap();
    assert_eq!(throttling.account_failures, Limit::new(3, 60));
    assert_eq!(throttling.reset_emails, vec![Limit::new(2, 60), Limit::new(4, 600)]);
    assert_eq!(throttling.account_failures_all, Limit::new(7, 70));
    assert_eq!(throttling.reset_emails_all, vec![Limit::new(3, 300)]);
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
    let dynamodb_local =
        endpoints(&[("AWS_ENDPOINT_URL", "http://emulator:5000"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb:8000")]);
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

#[test]
fn legacy_keys_until_is_an_instant_or_a_day_and_unset_means_no_end() {
    let until = |value: Option<&str>| {
        let mut pairs = FULL.to_vec();
        pairs.extend(value.map(|v| ("LEGACY_KEYS_UNTIL", v)));
        Config::from_lookup(Needs::ALL, env(&pairs)).map(|c| c.settings.legacy_keys_until)
    };
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    assert_eq!(until(None), Ok(None));
    assert_eq!(until(Some(" ")), Ok(None));
    assert_eq!(until(Some("2027-03-01T12:30:00+02:00")), Ok(Some(at("2027-03-01T10:30:00Z"))));
    assert_eq!(until(Some("2027-03-01")), Ok(Some(at("2027-03-01T00:00:00Z"))));
    assert!(matches!(until(Some("next spring")), Err(ConfigError::Invalid { name: "LEGACY_KEYS_UNTIL", .. })));
}
