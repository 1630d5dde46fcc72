//! `import-relay (--sqlite PATH | --postgres-url-file PATH | --postgres URL) (--data DIR | --aws)
//! [--postgres-ca-file PATH] [--credentials-key-file PATH | --credentials-key KEY] [--dry-run]`
//!
//! The source is a Node relay's (2.x) database or a relay 3.x's, told apart by its columns.
//! Without a source on the command line, the PostgreSQL URL is read from
//! `IMPORT_RELAY_POSTGRES_URL` or the file `IMPORT_RELAY_POSTGRES_URL_FILE` names; the
//! credentials key from `CREDENTIALS_ENCRYPTION_KEY` or `CREDENTIALS_ENCRYPTION_KEY_FILE`.

use clap::{ArgGroup, Parser};
use import_relay::secret::{value_or_file, POSTGRES_URL_FILE_VARIABLE, POSTGRES_URL_VARIABLE};
use import_relay::{CredentialsKey, Options, Postgres, Source};
use indicatif::{ProgressBar, ProgressStyle};
use shared::config::{parse_reset_url, Config, Needs};
use shared::domain::settings::Settings;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Moves a Foundry REST relay's accounts (users, API keys, scoped keys, Foundry credentials) into this service, from the Node relay (2.x) or the relay 3.x"
)]
#[command(group(ArgGroup::new("source").args(["sqlite", "postgres", "postgres_url_file"])))]
#[command(group(ArgGroup::new("target").required(true).args(["data", "aws"])))]
struct Args {
    /// The relay's SQLite database file.
    #[arg(long, value_name = "PATH")]
    sqlite: Option<PathBuf>,
    /// The relay's PostgreSQL database (postgres://user:password@host:port/db; add
    /// ?sslmode=require for TLS). On a command line every user of the machine can read it
    /// (ps): prefer --postgres-url-file, or IMPORT_RELAY_POSTGRES_URL or
    /// IMPORT_RELAY_POSTGRES_URL_FILE with no source option.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// A file holding the relay's PostgreSQL URL (as --postgres).
    #[arg(long, value_name = "PATH")]
    postgres_url_file: Option<PathBuf>,
    /// With sslmode=require: the CA certificates (PEM) the server's certificate must chain
    /// to, instead of the system's (the certificate and the host name are always checked).
    #[arg(long, value_name = "PATH", env = "PGSSLROOTCERT")]
    postgres_ca_file: Option<PathBuf>,
    /// The local server's data directory (as `local --data`).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// DynamoDB and KMS, configured by the environment as the functions are
    /// (USERS_TABLE, SCOPED_KEYS_TABLE, ..., KMS_KEY_ID, AWS_*).
    #[arg(long)]
    aws: bool,
    /// The relay's CREDENTIALS_ENCRYPTION_KEY (64 hex characters or base64 of 32 bytes),
    /// to carry the stored Foundry passwords over (the Node relay's on the scoped keys, the
    /// relay 3.x's Credentials); without it those are reported as not imported.
    /// On a command line every user of the machine can read it (ps): prefer the variable
    /// or --credentials-key-file.
    #[arg(long, value_name = "KEY", env = "CREDENTIALS_ENCRYPTION_KEY", hide_env_values = true)]
    credentials_key: Option<String>,
    /// A file holding the relay's CREDENTIALS_ENCRYPTION_KEY (as --credentials-key).
    #[arg(long, value_name = "PATH", env = "CREDENTIALS_ENCRYPTION_KEY_FILE")]
    credentials_key_file: Option<PathBuf>,
    /// Check and report everything, write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("import-relay: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let credentials_key = value_or_file(
        ("--credentials-key (CREDENTIALS_ENCRYPTION_KEY)", args.credentials_key),
        ("--credentials-key-file (CREDENTIALS_ENCRYPTION_KEY_FILE)", args.credentials_key_file.as_deref()),
    )?
    .map(|key| CredentialsKey::parse(&key))
    .transpose()?;
    let source = match args.sqlite {
        Some(path) => Source::Sqlite(path),
        None => {
            // A source on the command line, or else the environment's.
            let url = if args.postgres.is_some() || args.postgres_url_file.is_some() {
                value_or_file(
                    ("--postgres", args.postgres),
                    ("--postgres-url-file", args.postgres_url_file.as_deref()),
                )?
            } else {
                let file = std::env::var_os(POSTGRES_URL_FILE_VARIABLE).map(PathBuf::from);
                value_or_file(
                    (POSTGRES_URL_VARIABLE, std::env::var(POSTGRES_URL_VARIABLE).ok()),
                    (POSTGRES_URL_FILE_VARIABLE, file.as_deref()),
                )?
            };
            let url = url.ok_or(
                "no relay database: give --sqlite PATH, or the PostgreSQL URL by --postgres-url-file PATH, \
                 IMPORT_RELAY_POSTGRES_URL, IMPORT_RELAY_POSTGRES_URL_FILE or --postgres URL",
            )?;
            Source::Postgres(Postgres { url, ca_file: args.postgres_ca_file })
        }
    };
    let relay = import_relay::read(&source).await?;
    // A dry run into a data directory that has no database yet checks against an empty
    // store of its own, so that it creates nothing there.
    let scratch = match &args.data {
        Some(data) if args.dry_run && !data.join(shared::embedded::DATABASE_FILE).exists() => {
            Some(tempfile::tempdir()?)
        }
        _ => None,
    };
    let app = match scratch.as_ref().map(|dir| dir.path().to_path_buf()).or(args.data) {
        Some(data) => {
            let settings = Settings::from_env(parse_reset_url("http://localhost:3000/reset-password")?)?;
            shared::embedded::build_app(&data, &data.join("outbox"), "no-reply@localhost", settings)?
        }
        None => shared::aws::build_app(&Config::from_env(Needs::ALL)?).await,
    };
    // Every row of the three tables gets one outcome.
    let rows = relay.users.len() + relay.api_keys.len() + relay.credentials.len();
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(rows as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows {elapsed}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let options = Options { credentials_key, dry_run: args.dry_run, now: app.clock.now() };
    let report = import_relay::import(&app, &relay, &options, |outcome| {
        bar.inc(1);
        if outcome.result.is_err() {
            bar.suspend(|| println!("{outcome}"));
        }
    })
    .await;
    bar.finish_and_clear();
    println!("{}", report.summary());
    Ok(if report.failed(None) > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
