//! The clients call the endpoints the environment names, as the AWS SDKs resolve them:
//! `AWS_ENDPOINT_URL_DYNAMODB` points DynamoDB alone elsewhere (DynamoDB Local, say) while
//! `AWS_ENDPOINT_URL` still serves the other clients. The environment is handed over as a
//! lookup, so the process's own stays as the test script set it.

use shared::aws::{build_app_with, lambda_sdk_config, sdk_config};
use shared::config::{Config, Needs};
use shared::domain::error::PortError;
use shared::domain::ports::EncryptionContext;

/// Nothing listens there: a call is refused at once.
const NOWHERE: &str = "http://127.0.0.1:9";

/// The test script's environment, with every client sent nowhere but DynamoDB, which is
/// sent to the emulator by its service-specific variable.
fn dynamodb_alone_on_the_emulator(name: &str) -> Option<String> {
    match name {
        "AWS_ENDPOINT_URL" => Some(NOWHERE.to_owned()),
        "AWS_ENDPOINT_URL_DYNAMODB" => std::env::var("AWS_ENDPOINT_URL").ok(),
        _ => std::env::var(name).ok(),
    }
}

#[tokio::test]
#[ignore = "needs the AWS emulator that scripts/test.sh starts"]
async fn the_service_specific_endpoint_wins_over_the_general_one_on_both_paths() {
    let config = Config::from_lookup(Needs::ALL, dynamodb_alone_on_the_emulator).expect("run through scripts/test.sh");
    for (path, sdk) in [("lambda", lambda_sdk_config()), ("developer", sdk_config().load().await)] {
        let app = build_app_with(&config, &sdk);

        let found = app.store.user("no-such-account").await;
        assert!(matches!(found, Ok(None)), "{path}: DynamoDB answered from the emulator: {found:?}");

        let sealed = app.cipher.encrypt(b"secret", &EncryptionContext::master_key("no-such-account")).await;
        assert!(
            matches!(sealed, Err(PortError::Unavailable(_))),
            "{path}: KMS was sent to AWS_ENDPOINT_URL, where nothing listens: {sealed:?}"
        );
    }
}
