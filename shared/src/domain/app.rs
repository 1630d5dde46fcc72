//! The application state: every port and setting, built once per process.

use crate::domain::clock::Clock;
use crate::domain::hasher::PasswordHasher;
use crate::domain::pool::HashPool;
use crate::domain::ports::{Cipher, Mailer, Store};
use crate::domain::settings::Settings;
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub cipher: Arc<dyn Cipher>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Where every hash and verification runs: bounded workers, bounded queue.
    pub hash_pool: Arc<HashPool>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
}
