//! The AWS adapters: DynamoDB for the store, SES v2 for mail, KMS for encryption.

pub mod dynamo;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "ses")]
pub mod ses;

use crate::app::App;
use crate::config::Config;
use crate::domain::clock::SystemClock;
use crate::domain::error::PortError;
use crate::domain::password::Argon2Hasher;
use crate::domain::pool::HashPool;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;

/// Builds the app state over AWS. Clients are built, not used: no network call here.
/// `AWS_ENDPOINT_URL` (read by the SDK) points every client at an emulator.
pub async fn build_app(config: &Config) -> App {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    App {
        store: Arc::new(dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), dynamo::Tables::from(config))),
        #[cfg(feature = "ses")]
        mailer: Arc::new(ses::SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), config.email_from.clone())),
        #[cfg(not(feature = "ses"))]
        mailer: Arc::new(NotLinked("SES")),
        #[cfg(feature = "kms")]
        cipher: Arc::new(kms::KmsCipher::new(aws_sdk_kms::Client::new(&sdk), config.kms_key_id.clone())),
        #[cfg(not(feature = "kms"))]
        cipher: Arc::new(NotLinked("KMS")),
        hasher: Arc::new(Argon2Hasher::new()),
        hash_pool: Arc::new(HashPool::new(config.settings.hash_workers, config.settings.hash_queue)),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}

/// Throttling and transport failures are "unavailable" (503); everything else is logged
/// with its detail and answered 500.
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    const THROTTLED: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "KMSInternalException",
    ];
    let unavailable = matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || err.code().is_some_and(|code| THROTTLED.contains(&code));
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if unavailable {
        PortError::Unavailable(detail)
    } else {
        PortError::Other(detail)
    }
}

/// The mailer or cipher of a function built without that client (cargo features `ses`,
/// `kms`): its routes never call it, and a call that does fails closed, logged.
#[cfg(not(all(feature = "ses", feature = "kms")))]
struct NotLinked(&'static str);

#[cfg(not(all(feature = "ses", feature = "kms")))]
impl NotLinked {
    fn refuse<T>(&self) -> crate::ports::PortResult<T> {
        Err(PortError::Other(format!("this function was built without the {} client", self.0)))
    }
}

#[cfg(not(feature = "ses"))]
#[async_trait::async_trait]
impl crate::ports::Mailer for NotLinked {
    async fn send(&self, _: &crate::ports::OutgoingEmail) -> crate::ports::PortResult<()> {
        self.refuse()
    }
}

#[cfg(not(feature = "kms"))]
#[async_trait::async_trait]
impl crate::ports::Cipher for NotLinked {
    async fn encrypt(&self, _: &[u8], _: &crate::ports::EncryptionContext) -> crate::ports::PortResult<Vec<u8>> {
        self.refuse()
    }

    async fn decrypt(
        &self,
        _: &[u8],
        _: &crate::ports::EncryptionContext,
    ) -> crate::ports::PortResult<zeroize::Zeroizing<Vec<u8>>> {
        self.refuse()
    }
}
