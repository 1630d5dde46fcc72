//! The AWS adapters: DynamoDB for the store, SES v2 for mail, KMS for encryption.

pub mod dynamo;
pub mod kms;
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
        mailer: Arc::new(ses::SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), config.email_from.clone())),
        cipher: Arc::new(kms::KmsCipher::new(aws_sdk_kms::Client::new(&sdk), config.kms_key_id.clone())),
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
