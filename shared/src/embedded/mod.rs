//! In-process adapters for running the whole API on one machine with no AWS account:
//! an embedded store (redb) with the DynamoDB store's semantics, a mailer that writes
//! `.eml` files into an outbox, and an AES-256-GCM cipher whose key lives beside the data.

pub mod cipher;
pub mod mailer;
pub mod store;

use crate::app::App;
use crate::config::Settings;
use crate::domain::clock::SystemClock;
use crate::domain::error::PortError;
use crate::domain::password::Argon2Hasher;
use std::path::Path;
use std::sync::Arc;

/// The database file and the cipher key inside the data directory.
pub const DATABASE_FILE: &str = "auth.redb";
pub const CIPHER_KEY_FILE: &str = "cipher.key";

/// Builds the app state over the embedded adapters, creating the data directory, the
/// database and the cipher key on first run.
pub fn build_app(data_dir: &Path, outbox: &Path, email_from: &str, settings: Settings) -> Result<App, PortError> {
    std::fs::create_dir_all(data_dir).map_err(|e| PortError::Other(format!("{}: {e}", data_dir.display())))?;
    Ok(App {
        store: Arc::new(store::EmbeddedStore::open(&data_dir.join(DATABASE_FILE))?),
        mailer: Arc::new(mailer::OutboxMailer::new(outbox, email_from)?),
        cipher: Arc::new(cipher::LocalCipher::open_or_create(&data_dir.join(CIPHER_KEY_FILE))?),
        hasher: Arc::new(Argon2Hasher::new()),
        clock: Arc::new(SystemClock),
        settings,
    })
}
