//! `run::<Route>()`: the whole of a function's `main`.

use crate::aws::{build_app_with, lambda_sdk_config};
use crate::config::{Config, ConfigError, Needs};
use crate::domain::error::Chain;
use crate::domain::metrics::{self, Counter, Emf};
use crate::http::routes::{self, Route};
use crate::logs;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::{service_fn, LambdaEvent, Request};
use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

pub type Error = lambda_http::Error;

/// Sets up JSON logs (format and level from the Lambda environment: `AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`, default INFO), builds the app state once, and serves the route `R`
/// until the runtime stops. A missing or invalid setting stops the function here, with a
/// message naming it; only what the endpoint uses is required ([`Needs::of`]). The route
/// is a type, so that the binary links its handler alone (see [`Route`]).
///
/// Each invocation's metrics (see [`crate::domain::metrics`]) are written to stdout as
/// CloudWatch EMF lines, in one write, before its answer is handed back.
pub async fn run<R: Route>() -> Result<(), Error> {
    let endpoint = R::ENDPOINT;
    let app = init(endpoint.function_name(), Needs::of(endpoint))?;
    let emf = Arc::new(emf(endpoint.function_name()));
    lambda_http::run(service_fn(move |req: Request| {
        let (app, emf) = (Arc::clone(&app), Arc::clone(&emf));
        async move {
            let response = routes::handle::<R>(&app, req).await;
            metrics::count(Counter::Requests);
            if response.status().is_client_error() {
                metrics::count(Counter::ClientErrors);
            } else if response.status().is_server_error() {
                metrics::count(Counter::ServerErrors);
            }
            publish(&emf);
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}

/// The `authorizer` function: an HTTP API Lambda authorizer (payload 2.0, simple responses).
/// Its metrics are the decisions by reason.
pub async fn run_authorizer() -> Result<(), Error> {
    let app = init("authorizer", Needs::AUTHORIZER)?;
    let emf = Arc::new(emf("authorizer"));
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
        let (app, emf) = (Arc::clone(&app), Arc::clone(&emf));
        async move {
            let answer = crate::http::authorizer::respond(&app, &event.payload).await;
            publish(&emf);
            Ok::<_, Infallible>(answer)
        }
    }))
    .await
}

/// Turns the recording of metrics on, under the namespace of `METRICS_NAMESPACE`
/// (the template sets `FoundryAuth/<stack>`; `FoundryAuth` when unset).
fn emf(route: &'static str) -> Emf {
    metrics::start_recording();
    let namespace = std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.trim().is_empty());
    Emf { namespace: namespace.unwrap_or_else(|| "FoundryAuth".to_owned()), route }
}

/// Writes what the invocation counted, one EMF document a line, in one write to stdout
/// (where Lambda hands every line to CloudWatch Logs).
fn publish(emf: &Emf) {
    let counts = metrics::take_recorded();
    if counts.is_empty() {
        return;
    }
    let now = crate::domain::clock::Clock::now(&crate::domain::clock::SystemClock);
    let mut text = emf.lines(&counts, now.timestamp_millis()).join("\n");
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        tracing::warn!(error = %Chain(&error), "writing metrics failed");
    }
}

/// The app state of a function: it reads, and requires, only what it `needs`.
fn init(function: &'static str, needs: Needs) -> Result<Arc<crate::domain::app::App>, Error> {
    // As the Lambda runtime's default subscriber (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`;
    // `AWS_LAMBDA_LOG_FORMAT`), but never at TRACE (see `logs`).
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).ok();
    let directives = std::env::var("RUST_LOG").ok();
    let format = match std::env::var("AWS_LAMBDA_LOG_FORMAT") {
        Ok(format) if format.eq_ignore_ascii_case("json") => logs::Format::Json,
        _ => logs::Format::Text,
    };
    logs::init(level.as_deref(), directives.as_deref(), format, std::io::stdout);
    let config = Config::from_env(needs).inspect_err(|error: &ConfigError| {
        tracing::error!(error = %Chain(error), function, "configuration invalid");
    })?;
    Ok(Arc::new(build_app_with(&config, &lambda_sdk_config())))
}
