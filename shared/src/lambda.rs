//! `run(endpoint)`: the whole of a function's `main`.

use crate::aws::{build_app_with, lambda_sdk_config};
use crate::config::Config;
use crate::http::Endpoint;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::{service_fn, LambdaEvent, Request};
use std::convert::Infallible;
use std::sync::Arc;

pub type Error = lambda_http::Error;

/// Sets up JSON logs (format and level from the Lambda environment: `AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`, default INFO), builds the app state once, and serves `endpoint`
/// until the runtime stops. A missing or invalid setting stops the function here, with a
/// message naming it.
pub async fn run(endpoint: Endpoint) -> Result<(), Error> {
    let app = init(endpoint.function_name())?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(endpoint.handle(&app, req).await) }
    }))
    .await
}

/// The `authorizer` function: an HTTP API Lambda authorizer (payload 2.0, simple responses).
pub async fn run_authorizer() -> Result<(), Error> {
    let app = init("authorizer")?;
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(crate::http::authorizer::respond(&app, &event.payload).await) }
    }))
    .await
}

fn init(function: &'static str) -> Result<Arc<crate::App>, Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env().inspect_err(|error| {
        tracing::error!(%error, function, "configuration invalid");
    })?;
    Ok(Arc::new(build_app_with(&config, &lambda_sdk_config())))
}
