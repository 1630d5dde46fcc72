//! The service's rules and operations: pure Rust over the [`ports`], no AWS and no HTTP.
//! It owns its context: the [`app::App`] state, the [`settings::Settings`] and the port
//! traits; nothing in it imports from `http`, `aws`, `embedded`, `config` or `lambda`.
//!
//! Its modules form no cycle. Values and pure rules sit below the app state (`limits`,
//! `hasher`, `meter`, `model`, `keys`, `token`, `error`, ...); the operations over an
//! [`app::App`] sit above it (`throttle`, `password`, `accounts`, `metering`, ...). A test
//! of the crate (`module_graph`) fails on a cycle and on an import from above.

pub mod accounts;
pub mod activity;
pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod email;
pub mod error;
pub mod hasher;
pub mod keys;
pub mod limits;
pub mod meter;
pub mod metering;
pub mod metrics;
pub mod model;
pub mod named;
pub mod notify;
pub mod password;
pub mod pool;
pub mod ports;
pub mod recovery;
pub mod scoped;
pub mod scopes;
pub mod service_key;
pub mod settings;
pub mod throttle;
pub mod token;
pub mod verification;

use error::{AuthError, PortError};
use model::User;
use std::future::Future;

/// Runs an optimistic write on the account: first on the state already read, then, when
/// a concurrent change beat it (`Conflict`), on a fresh read, a few times at most.
pub(crate) async fn with_current_user<T, R, RFut, W, WFut>(first: User, reread: R, write: W) -> Result<T, AuthError>
where
    R: Fn() -> RFut,
    RFut: Future<Output = Result<User, AuthError>>,
    W: Fn(User) -> WFut,
    WFut: Future<Output = Result<T, PortError>>,
{
    const ATTEMPTS: usize = 3;
    let mut user = first;
    for _ in 1..ATTEMPTS {
        match write(user).await {
            Err(PortError::Conflict) => user = reread().await?,
            other => return other.map_err(AuthError::from),
        }
    }
    write(user).await.map_err(AuthError::from)
}
