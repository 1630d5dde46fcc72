//! The AWS adapters: DynamoDB for the store, SES v2 for mail, KMS for encryption.

pub mod dynamo;
pub mod kms;
pub mod ses;

use crate::app::App;
use crate::config::Config;
use crate::domain::clock::SystemClock;
use crate::domain::error::PortError;
use crate::domain::password::Argon2Hasher;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::sync::Arc;

/// Builds the app state over AWS. Clients are built, not used: no network call here.
/// `AWS_ENDPOINT_URL` (read by the SDK) points every client at an emulator.
pub async fn build_app(config: &Config) -> App {
    build_app_on(config, &sdk_config().load().await)
}

/// The SDK configuration of every client: the environment's (region, credentials,
/// endpoint), with time-outs so that a dependency that hangs is answered 503 in seconds,
/// well within API Gateway's 30 s, instead of holding the function until its own limit.
pub fn sdk_config() -> aws_config::ConfigLoader {
    use std::time::Duration;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts)
}

/// Builds the app state over AWS with a given SDK configuration.
pub fn build_app_on(config: &Config, sdk: &aws_config::SdkConfig) -> App {
    let sdk = sdk.clone();
    App {
        store: Arc::new(dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), dynamo::Tables::from(config))),
        mailer: Arc::new(ses::SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), config.email_from.clone())),
        cipher: Arc::new(kms::KmsCipher::new(aws_sdk_kms::Client::new(&sdk), config.kms_key_id.clone())),
        hasher: Arc::new(Argon2Hasher::new()),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}

/// Throttling, contention, time-outs, transport failures and the service's own 5xx are
/// "unavailable" (503, worth retrying); everything else is logged with its detail and
/// answered 500.
pub(crate) fn sdk_error<E>(err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
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
        "DependencyTimeoutException",
        "TransactionConflictException",
    ];
    let server_error = err.raw_response().is_some_and(|r| r.status().is_server_error());
    let unavailable =
        matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
            || server_error
            || err.code().is_some_and(|code| THROTTLED.contains(&code));
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if unavailable {
        PortError::Unavailable(detail)
    } else {
        PortError::Other(detail)
    }
}
