//! The service's rules and operations: pure Rust over the ports, no AWS and no HTTP.

pub mod accounts;
pub mod auth;
pub mod clock;
pub mod email;
pub mod error;
pub mod keys;
pub mod metering;
pub mod model;
pub mod notify;
pub mod password;
pub mod recovery;
pub mod scoped;
pub mod throttle;
pub mod token;

use error::{AuthError, PortError};
use std::future::Future;

/// Runs an optimistic operation again (with fresh state) when a concurrent change beat it.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, AuthError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, PortError>, AuthError>>,
{
    const ATTEMPTS: usize = 3;
    for _ in 1..ATTEMPTS {
        match attempt().await? {
            Err(PortError::Conflict) => continue,
            other => return other.map_err(AuthError::from),
        }
    }
    attempt().await?.map_err(AuthError::from)
}
