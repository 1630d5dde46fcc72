//! `local`: the whole Auth API on one port, with the very handlers and route table of the
//! Lambda functions. By default over embedded adapters (no AWS account, no emulator);
//! with `--aws`, over DynamoDB, SES v2 and KMS as configured by the usual environment.
//! With `--relay-origin`, it also stands in front of a relay as API Gateway does.

mod proxy;
mod server;

/// glibc's malloc spent a fifth of user-data's time under load (profiled); mimalloc's
/// thread-local free lists do the many small allocations of a request for much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use shared::config::{parse_reset_url, parse_verify_url, Config, Needs};
use shared::domain::service_key::{NewServiceKey, ServiceKeyDigests};
use shared::domain::settings::Settings;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(version, about = "Serves the Foundry relay Auth API on this machine")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory for the database and the encryption key (created on first run).
    #[arg(long, default_value = ".local-data")]
    data: PathBuf,
    /// Directory where emails are written as .eml files [default: <data>/outbox].
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// The reset page; emailed links are <URL>?reset-token=<token>.
    #[arg(long, default_value = "http://localhost:3000/reset-password")]
    reset_url: String,
    /// The email verification page (REQUIRE_EMAIL_VERIFICATION); emailed links are
    /// <URL>?verify-token=<token>. VERIFY_EMAIL_URL, when set, wins.
    #[arg(long, default_value = "http://localhost:3000/verify-email")]
    verify_email_url: String,
    /// Sender address of the emails.
    #[arg(long, default_value = "no-reply@localhost")]
    email_from: String,
    /// Use DynamoDB, SES v2 and KMS (configured by USERS_TABLE, KMS_KEY_ID, ... and
    /// AWS_ENDPOINT_URL, or AWS_ENDPOINT_URL_DYNAMODB for DynamoDB alone) instead of the
    /// embedded adapters.
    #[arg(long)]
    aws: bool,
    /// Print the OpenAPI description of the API (the bytes of `openapi.json`) and exit.
    #[arg(long)]
    print_openapi: bool,
    /// Forward every request outside /auth/*, /openapi.json and the pages to this relay
    /// (an http or https origin), after the authorizer's decision, as API Gateway does.
    #[arg(long, env = "RELAY_ORIGIN", value_name = "URL")]
    relay_origin: Option<proxy::Origin>,
    /// Sent to the relay in the x-foundry-auth-gateway header of every forwarded request.
    #[arg(long, env = "GATEWAY_SECRET", value_name = "SECRET", hide_env_values = true)]
    gateway_secret: Option<proxy::GatewaySecret>,
    /// Print a fresh service key (for a relay) and the digest to configure, and exit.
    #[arg(long)]
    new_service_key: bool,
    /// The SHA-256 digest of a service key accepted by POST /auth/verify (repeatable; added
    /// to those of SERVICE_KEY_DIGESTS).
    #[arg(long = "service-key-digest", value_name = "HEX")]
    service_key_digests: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs go to stderr; stdout says where the server listens.
    let directives = std::env::var("RUST_LOG").ok();
    shared::logs::init(None, directives.as_deref(), shared::logs::Format::Text, std::io::stderr);
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", shared::http::openapi::document_json());
        return Ok(());
    }
    if args.new_service_key {
        print_new_service_key();
        return Ok(());
    }
    let digests = service_key_digests(&args.service_key_digests)?;
    let relay = args.relay_origin.clone().map(|origin| proxy::Relay::new(origin, args.gateway_secret.clone()));
    let relay = relay.transpose().map_err(|e| e.to_string())?;
    let (app, storage) = if args.aws {
        let mut config = Config::from_env(Needs::ALL)?;
        config.settings.service_key_digests = digests;
        let tables = &config.tables;
        let names = [tables.users(), tables.scoped_keys(), tables.reset_tokens(), tables.throttle()];
        let storage = format!("DynamoDB tables {}", names.into_iter().collect::<Result<Vec<_>, _>>()?.join(", "));
        (shared::aws::build_app(&config).await, storage)
    } else {
        let mut settings = Settings::from_env(parse_reset_url(&args.reset_url)?)?;
        settings.service_key_digests = digests;
        if settings.verify_url.is_none() {
            settings.verify_url = Some(parse_verify_url(&args.verify_email_url)?);
        }
        let outbox = args.outbox.clone().unwrap_or_else(|| args.data.join("outbox"));
        let app = shared::embedded::build_app(&args.data, &outbox, &args.email_from, settings)?;
        (app, format!("data in {}, emails in {}", args.data.display(), outbox.display()))
    };

    // Listened for before the server says it listens: a signal that follows that line at
    // once still stops it cleanly.
    let stop = shutdown()?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("foundry-auth listening on http://{}", listener.local_addr()?);
    println!("{storage}");
    if let Some(relay) = &relay {
        println!("relay routes forwarded to {}", relay.origin());
    }
    let service = server::router(Arc::new(app), relay).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(stop).await?;
    println!("foundry-auth stopped");
    Ok(())
}

/// A service key is shown once, here, and only its digest is ever configured: the key
/// goes to the relay, which presents it to `POST /auth/verify`.
fn print_new_service_key() {
    let new = NewServiceKey::generate();
    println!("service key: {}", new.key.as_str());
    println!("digest:      {}", new.digest);
    println!(
        "Configure the digest here (SERVICE_KEY_DIGESTS or --service-key-digest); give the key \
         to the relay only and keep it secret: it is not stored anywhere."
    );
}

/// The digests of `SERVICE_KEY_DIGESTS` and of the `--service-key-digest` options
/// together (at most two in all). A refusal names the options, never a value.
fn service_key_digests(options: &[String]) -> Result<ServiceKeyDigests, String> {
    let environment = std::env::var("SERVICE_KEY_DIGESTS").unwrap_or_default();
    let values = std::iter::once(environment.as_str()).chain(options.iter().map(String::as_str));
    ServiceKeyDigests::parse(values).map_err(|e| format!("--service-key-digest / SERVICE_KEY_DIGESTS: {e}"))
}

/// Ctrl-C, or SIGTERM from a service manager. The handlers are installed here, when this
/// is called, not when the future is first polled.
#[cfg(unix)]
fn shutdown() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Ctrl-C.
#[cfg(not(unix))]
fn shutdown() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
