//! `run(endpoint)`: the whole of a function's `main`.

use crate::aws::build_app;
use crate::config::Config;
use crate::http::Endpoint;
use lambda_http::{service_fn, Request};
use std::convert::Infallible;
use std::sync::Arc;

pub type Error = lambda_http::Error;

/// Sets up JSON logs (format and level from the Lambda environment: `AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`, default INFO), builds the app state once, and serves `endpoint`
/// until the runtime stops. A missing or invalid setting stops the function here, with a
/// message naming it.
pub async fn run(endpoint: Endpoint) -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|error| {
        tracing::error!(%error, function = endpoint.function_name(), "configuration invalid");
    })?;
    let app = Arc::new(build_app(&config).await);
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(endpoint.handle(&app, req).await) }
    }))
    .await
}
