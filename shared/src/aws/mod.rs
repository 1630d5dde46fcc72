//! The AWS adapters: DynamoDB for the store, SES v2 for mail, KMS for encryption.

pub mod dynamo;
mod failure;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "ses")]
pub mod ses;
pub mod xray;

use crate::config::Config;
use crate::domain::app::App;
use crate::domain::clock::SystemClock;
use crate::domain::error::PortError;
use crate::domain::hasher::Argon2Hasher;
use crate::domain::pool::HashPool;
use crate::domain::ports::{Cipher, EncryptionContext, Mailer, OutgoingEmail, PortResult};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{proxy::ProxyConfig, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use std::sync::Arc;

/// Builds the app state over AWS with the SDK's whole configuration chain (profiles,
/// SSO, assumed roles, ...), as on a developer's machine or in the tests.
/// `AWS_ENDPOINT_URL` points every client at an emulator, `AWS_ENDPOINT_URL_DYNAMODB`
/// (`_KMS`, `_SESV2`) one of them ([`crate::config::Endpoints`]).
pub async fn build_app(config: &Config) -> App {
    build_app_with(config, &sdk_config().load().await)
}

/// What every client's configuration adds to the environment's: time-outs, so that a
/// dependency that hangs is answered 503 in seconds, well within API Gateway's 30 s,
/// instead of holding the function until its own limit; and the lazily built HTTPS
/// client (see [`LazyHttpsClient`]).
fn time_outs() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build()
}

/// The SDK configuration with the SDK's whole chain (profiles, SSO, assumed roles, ...),
/// as on a developer's machine or in the tests.
pub fn sdk_config() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(LazyHttpsClient::default()))
        .timeout_config(time_outs())
}

/// The SDK configuration of a Lambda function, from its environment alone: Lambda gives
/// every function its region and its role's credentials there (`AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), so nothing else is
/// consulted: no profile file is read and the code of the other credential sources (STS,
/// web identity, SSO, ...) is not linked. The endpoints (`AWS_ENDPOINT_URL` and the
/// service-specific ones) are the configuration's, which [`build_app_with`] applies.
/// The time-outs are ours; retries and the identity cache are the clients' defaults for
/// the behaviour version.
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).map(aws_config::Region::new))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(SharedHttpClient::new(LazyHttpsClient::default()))
        .timeout_config(time_outs())
        .build()
}

/// Builds the app state over AWS from an SDK configuration. Clients are built, not used:
/// no network call here, and no certificate read either (see [`LazyHttpsClient`]).
/// Under X-Ray active tracing every client reports its calls as subsegments ([`xray`]).
/// A client whose endpoint the configuration names ([`crate::config::Endpoints`]) calls
/// it, whatever `sdk` says; the others keep `sdk`'s.
pub fn build_app_with(config: &Config, sdk: &aws_config::SdkConfig) -> App {
    let traced = xray::interceptor();
    let endpoints = &config.endpoints;
    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = &endpoints.dynamodb {
        dynamodb.set_endpoint_url(Some(url.clone()));
    }
    #[cfg(feature = "ses")]
    let mut sesv2 = aws_sdk_sesv2::config::Builder::from(sdk);
    #[cfg(feature = "ses")]
    if let Some(url) = &endpoints.sesv2 {
        sesv2.set_endpoint_url(Some(url.clone()));
    }
    #[cfg(feature = "kms")]
    let mut kms = aws_sdk_kms::config::Builder::from(sdk);
    #[cfg(feature = "kms")]
    if let Some(url) = &endpoints.kms {
        kms.set_endpoint_url(Some(url.clone()));
    }
    if let Some(traced) = traced {
        dynamodb.push_interceptor(traced.clone());
        #[cfg(feature = "ses")]
        sesv2.push_interceptor(traced.clone());
        #[cfg(feature = "kms")]
        kms.push_interceptor(traced);
    }
    #[cfg(feature = "ses")]
    let mailer: Arc<dyn Mailer> = match &config.email_from {
        Some(from) => Arc::new(ses::SesMailer::new(aws_sdk_sesv2::Client::from_conf(sesv2.build()), from.clone())),
        None => Arc::new(Absent("this function was configured without EMAIL_FROM")),
    };
    #[cfg(not(feature = "ses"))]
    let mailer: Arc<dyn Mailer> = Arc::new(Absent("this function was built without the SES client"));
    #[cfg(feature = "kms")]
    let cipher: Arc<dyn Cipher> = match &config.kms_key_id {
        Some(key) => Arc::new(kms::KmsCipher::new(aws_sdk_kms::Client::from_conf(kms.build()), key.clone())),
        None => Arc::new(Absent("this function was configured without KMS_KEY_ID")),
    };
    #[cfg(not(feature = "kms"))]
    let cipher: Arc<dyn Cipher> = Arc::new(Absent("this function was built without the KMS client"));
    App {
        store: Arc::new(dynamo::DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            config.tables.clone(),
        )),
        mailer,
        cipher,
        hasher: Arc::new(Argon2Hasher::new()),
        hash_pool: Arc::new(HashPool::new(config.settings.hash_workers, config.settings.hash_queue)),
        clock: Arc::new(SystemClock),
        settings: config.settings.clone(),
    }
}

/// The SDK's HTTPS client: hyper with rustls over ring (smaller than aws-lc), the system's
/// root certificates and the proxy settings of the environment, as the SDK's default
/// client has them. Unlike the default client, nothing is built when an SDK client is
/// built: the connector, and with it the read of the certificates, comes with the first
/// request, so a function's init does no file I/O for TLS.
#[derive(Debug)]
pub struct LazyHttpsClient(SharedHttpClient);

impl Default for LazyHttpsClient {
    fn default() -> Self {
        Self(aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
            let mut connector = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }))
    }
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps its default (nothing), where the wrapped
    // client would build a connector, reading every root certificate, at init.

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The mailer or cipher of a function that does not use it: built without its client
/// (cargo features `ses`, `kms`) or configured without its variable (`EMAIL_FROM`,
/// `KMS_KEY_ID`; see `config::Needs`). Its routes never call it; a call that does fails
/// closed, and is logged with this reason where the request is answered.
struct Absent(&'static str);

#[async_trait::async_trait]
impl Mailer for Absent {
    async fn send(&self, _: &OutgoingEmail) -> PortResult<()> {
        Err(PortError::Other(self.0.to_owned()))
    }
}

#[async_trait::async_trait]
impl Cipher for Absent {
    async fn encrypt(&self, _: &[u8], _: &EncryptionContext) -> PortResult<Vec<u8>> {
        Err(PortError::Other(self.0.to_owned()))
    }

    async fn decrypt(&self, _: &[u8], _: &EncryptionContext) -> PortResult<zeroize::Zeroizing<Vec<u8>>> {
        Err(PortError::Other(self.0.to_owned()))
    }
}
