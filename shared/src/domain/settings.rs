//! The settings the domain runs by; `config` reads them from the environment.

use crate::domain::limits::Throttling;
use crate::domain::scopes::RouteScopes;
use crate::domain::service_key::ServiceKeyDigests;
use chrono::{DateTime, Utc};
use std::time::Duration;
use url::Url;

/// `DAILY_REQUEST_LIMIT` when unset: an account's requests per UTC day.
pub const DEFAULT_DAILY_REQUEST_LIMIT: u64 = 1000;
/// `MONTHLY_REQUEST_LIMIT` when unset: an account's requests per UTC month, unless its
/// subscription is active.
pub const DEFAULT_MONTHLY_REQUEST_LIMIT: u64 = 100;
/// `SCOPED_KEYS_PER_ACCOUNT` when unset.
pub const DEFAULT_SCOPED_KEYS_PER_ACCOUNT: u64 = 100;

/// What the domain needs to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The page the reset link opens; `None` in a function that sends none (it is
    /// configured only where forgot-password runs).
    pub reset_url: Option<Url>,
    /// `REQUIRE_EMAIL_VERIFICATION` (default off): register sends a verification link,
    /// and until it is used the account's keys are refused on the relay's routes (the
    /// authorizer and verify, reason `unverified`); its `/auth` routes keep working.
    pub require_email_verification: bool,
    /// The page the verification link opens (`VERIFY_EMAIL_URL`); the token is appended
    /// as `?verify-token=`. Read only where a link is sent while verification is required.
    pub verify_url: Option<Url>,
    pub registration_enabled: bool,
    pub daily_request_limit: u64,
    pub monthly_request_limit: u64,
    /// How many scoped keys one account may have.
    pub scoped_keys_per_account: u64,
    /// The limits in force; `None` when `THROTTLING=off`.
    pub throttling: Option<Throttling>,
    /// forgot-password answers no sooner than this after it started, for known and
    /// unknown emails alike, so its timing reveals nothing.
    pub reset_response_floor: Duration,
    /// Password hashes computed at once (`HASH_WORKERS`); `None`: one per core.
    pub hash_workers: Option<usize>,
    /// Hashes that may wait for a worker (`HASH_QUEUE`) before requests are answered 503.
    pub hash_queue: usize,
    /// The service keys `POST /auth/verify` accepts (`SERVICE_KEY_DIGESTS`); none: the
    /// route answers 404.
    pub service_key_digests: ServiceKeyDigests,
    /// Which scope each relay route needs (`ROUTE_SCOPES` over the relay 3.x's table).
    pub route_scopes: RouteScopes,
    /// Whether a master key may call the relay's routes (`MASTER_KEY_RELAY_ACCESS`: `all`,
    /// the default, or `none`, as the relay 3.x); it always manages its account.
    pub master_key_relay_access: bool,
    /// When keys imported from the Node relay (64 hex characters) stop working
    /// (`LEGACY_KEYS_UNTIL`, RFC 3339); `None`: they never do.
    pub legacy_keys_until: Option<DateTime<Utc>>,
}
