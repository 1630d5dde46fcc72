//! In-process adapters for running the whole API on one machine with no AWS account:
//! an embedded store (redb) with the DynamoDB store's semantics, a mailer that writes
//! `.eml` files into an outbox, and an AES-256-GCM cipher whose key lives beside the data.

pub mod cipher;
pub mod mailer;
mod private;
pub mod store;

use crate::domain::app::App;
use crate::domain::clock::SystemClock;
use crate::domain::error::PortError;
use crate::domain::hasher::Argon2Hasher;
use crate::domain::pool::HashPool;
use crate::domain::settings::Settings;
use private::{private_dir, private_file};
use std::path::Path;
use std::sync::Arc;

/// The database file and the cipher key inside the data directory.
pub const DATABASE_FILE: &str = "auth.redb";
pub const CIPHER_KEY_FILE: &str = "cipher.key";

/// Builds the app state over the embedded adapters, creating the data directory, the
/// database and the cipher key on first run.
pub fn build_app(data_dir: &Path, outbox: &Path, email_from: &str, settings: Settings) -> Result<App, PortError> {
    private_dir(data_dir)?;
    let database = data_dir.join(DATABASE_FILE);
    private_file(&database)?;
    Ok(App {
        store: Arc::new(store::EmbeddedStore::open(&database)?),
        mailer: Arc::new(mailer::OutboxMailer::new(outbox, email_from)?),
        cipher: Arc::new(cipher::LocalCipher::open_or_create(&data_dir.join(CIPHER_KEY_FILE))?),
        hasher: Arc::new(Argon2Hasher::new()),
        hash_pool: Arc::new(HashPool::new(settings.hash_workers, settings.hash_queue)),
        clock: Arc::new(SystemClock),
        settings,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An app over the embedded adapters in `dir`, throttles off, with a hashing pool of
    /// `workers` workers and room for `queue` waiting jobs.
    pub fn app(dir: &Path, workers: usize, queue: usize) -> App {
        let reset_url = url::Url::parse("http://localhost:3000/reset-password").unwrap();
        let mut settings = Settings::from_lookup(reset_url, &|_| None).unwrap();
        settings.throttling = None;
        settings.hash_workers = Some(workers);
        settings.hash_queue = queue;
        build_app(dir, &dir.join("outbox"), "no-reply@localhost", settings).unwrap()
    }

    #[tokio::test]
    async fn verifying_for_no_account_never_matches() {
        use crate::domain::password::{hash_on_pool, verify_on_pool};
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), 1, 4);
        assert!(!verify_on_pool(&app, "", None).await.unwrap());
        let stored = hash_on_pool(&app, "Real-Pass-1").await.unwrap();
        assert!(verify_on_pool(&app, "Real-Pass-1", Some(&stored)).await.unwrap());
        assert!(!verify_on_pool(&app, "Real-Pass-2", Some(&stored)).await.unwrap());
    }
}
