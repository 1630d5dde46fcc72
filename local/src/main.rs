//! `local`: the whole Auth API on one port, with the very handlers and route table of the
//! Lambda functions. By default over embedded adapters (no AWS account, no emulator);
//! with `--aws`, over DynamoDB, SES v2 and KMS as configured by the usual environment.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server;

/// glibc's malloc spent a fifth of user-data's time under load (profiled); mimalloc's
/// thread-local free lists do the many small allocations of a request for much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use shared::config::{parse_reset_url, Config, Settings};
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
    /// Sender address of the emails.
    #[arg(long, default_value = "no-reply@localhost")]
    email_from: String,
    /// Use DynamoDB, SES v2 and KMS (configured by USERS_TABLE, KMS_KEY_ID, ... and
    /// AWS_ENDPOINT_URL) instead of the embedded adapters.
    #[arg(long)]
    aws: bool,
    /// Print the OpenAPI description of the API (the bytes of `openapi.json`) and exit.
    #[arg(long)]
    print_openapi: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs go to stderr; stdout says where the server listens.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", shared::http::openapi::document_json());
        return Ok(());
    }
    let (app, storage) = if args.aws {
        let config = Config::from_env()?;
        let storage = format!(
            "DynamoDB tables {}, {}, {}",
            config.users_table, config.scoped_keys_table, config.reset_tokens_table
        );
        (shared::aws::build_app(&config).await, storage)
    } else {
        let settings = Settings::from_env(parse_reset_url(&args.reset_url)?)?;
        let outbox = args.outbox.clone().unwrap_or_else(|| args.data.join("outbox"));
        let app = shared::embedded::build_app(&args.data, &outbox, &args.email_from, settings)?;
        (app, format!("data in {}, emails in {}", args.data.display(), outbox.display()))
    };

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("foundry-auth listening on http://{}", listener.local_addr()?);
    println!("{storage}");
    let service = server::router(Arc::new(app)).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown()).await?;
    println!("foundry-auth stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
