//! Reading a relay's database, the Node relay's (2.x: `Users` and `ApiKeys`, as its
//! Sequelize models create them) or the relay 3.x's (`Users`, `ApiKeys`, `Credentials` and
//! `KnownClients`), in SQLite or PostgreSQL (the same quoted camelCase names). Which relay
//! wrote it is told by the columns. Every value is read as text (or NULL), whatever the
//! column's type in either database, and interpreted by `relay`.

use shared::domain::error::Chain;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres::config::SslMode;
use zeroize::Zeroizing;

/// Where the relay's data is.
#[derive(Debug, Clone)]
pub enum Source {
    Sqlite(PathBuf),
    Postgres(Postgres),
}

/// A relay's PostgreSQL database: a `postgres://` URL (which may hold the password: never
/// shown) and the CA certificates (PEM) its server's certificate must chain to. TLS is
/// used exactly when the URL says `sslmode=require`, and then the server's certificate
/// and name are checked, against the CA file or else the system's roots; `prefer` (the
/// default) and `disable` connect without TLS.
#[derive(Clone)]
pub struct Postgres {
    pub url: Zeroizing<String>,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("url", &"..").field("ca_file", &self.ca_file).finish()
    }
}

/// One row of a relay table: each column's value as text, `None` for NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row(pub HashMap<String, Option<String>>);

impl Row {
    /// The column's value; NULL and a missing column are `None`.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.0.get(column).and_then(Option::as_deref)
    }
}

/// Which relay wrote the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// The Node relay (2.x): `Users.apiKey` in plain text, Foundry logins on the keys.
    #[default]
    Node,
    /// The relay 3.x: `Users.apiKeyHash`, `ApiKeys.keyHash`, a `Credentials` table.
    V3,
}

impl Kind {
    /// Tells the relays apart by their columns: the 3.x's `Users.apiKeyHash`,
    /// `ApiKeys.keyHash` and `Credentials` table, or the Node relay's `Users.apiKey`.
    pub fn of(users: &[String], api_keys: &[String], has_credentials: bool) -> Option<Kind> {
        let has = |columns: &[String], name: &str| columns.iter().any(|c| c == name);
        if has(users, "apiKeyHash") && has(api_keys, "keyHash") && has_credentials {
            Some(Kind::V3)
        } else if has(users, "apiKey") && has(api_keys, "key") {
            Some(Kind::Node)
        } else {
            None
        }
    }
}

/// The rows the import reads; `PasswordResetTokens` are not (they expire within the hour),
/// nor the relay 3.x's sessions, logs and settings.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    pub kind: Kind,
    pub users: Vec<Row>,
    pub api_keys: Vec<Row>,
    /// The relay 3.x's Foundry logins (empty for the Node relay).
    pub credentials: Vec<Row>,
    /// The relay 3.x's Foundry clients, which name the credential each one uses.
    pub known_clients: Vec<Row>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("SQLite database {path}: {detail}")]
    Sqlite { path: String, detail: String },
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    #[error("not a relay database: neither Users.apiKey (Node relay) nor Users.apiKeyHash, ApiKeys.keyHash and a Credentials table (relay 3.x)")]
    UnknownSchema,
}

/// The tables, each ordered by `id`.
pub async fn read(source: &Source) -> Result<Relay, SourceError> {
    match source {
        Source::Sqlite(path) => {
            let path = path.clone();
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || read_sqlite(&path))
                .await
                .map_err(|e| SourceError::Sqlite { path: shown, detail: e.to_string() })?
        }
        Source::Postgres(postgres) => read_postgres(postgres).await,
    }
}

fn read_sqlite(path: &std::path::Path) -> Result<Relay, SourceError> {
    use rusqlite::types::ValueRef;
    let failed = |e: rusqlite::Error| SourceError::Sqlite { path: path.display().to_string(), detail: e.to_string() };
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(failed)?;
    let exists = |name: &str| -> Result<bool, SourceError> {
        let mut statement =
            connection.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1").map_err(failed)?;
        statement.exists([name]).map_err(failed)
    };
    let columns = |name: &str| -> Result<Vec<String>, SourceError> {
        if !exists(name)? {
            return Ok(Vec::new());
        }
        let statement = connection.prepare(&format!("SELECT * FROM `{name}` LIMIT 0")).map_err(failed)?;
        Ok(statement.column_names().into_iter().map(str::to_owned).collect())
    };
    let table = |name: &str| -> Result<Vec<Row>, SourceError> {
        let mut statement = connection.prepare(&format!("SELECT * FROM `{name}` ORDER BY `id`")).map_err(failed)?;
        let columns: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = statement.query([]).map_err(failed)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(failed)? {
            let mut values = HashMap::new();
            for (i, column) in columns.iter().enumerate() {
                let value = match row.get_ref(i).map_err(failed)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(n) => Some(n.to_string()),
                    ValueRef::Real(f) => Some(f.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
                };
                values.insert(column.clone(), value);
            }
            out.push(Row(values));
        }
        Ok(out)
    };
    let kind =
        Kind::of(&columns("Users")?, &columns("ApiKeys")?, exists("Credentials")?).ok_or(SourceError::UnknownSchema)?;
    let mut relay = Relay { kind, users: table("Users")?, api_keys: table("ApiKeys")?, ..Relay::default() };
    if kind == Kind::V3 {
        relay.credentials = table("Credentials")?;
        // A relay 3.x from before clients were remembered has no KnownClients: no
        // credential then serves a client.
        if exists("KnownClients")? {
            relay.known_clients = table("KnownClients")?;
        }
    }
    Ok(relay)
}

/// The connection's driver, until the client is dropped.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::warn!(error = %Chain(&error), "PostgreSQL connection closed with an error");
    }
}

/// rustls (ring) trusting the certificates of `ca_file`, or else the system's roots.
fn tls(ca_file: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, SourceError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let failed = |e: &dyn std::fmt::Display| SourceError::Tls(format!("CA file {}: {e}", path.display()));
            for certificate in CertificateDer::pem_file_iter(path).map_err(|e| failed(&e))? {
                roots.add(certificate.map_err(|e| failed(&e))?).map_err(|e| failed(&e))?;
            }
            if roots.is_empty() {
                return Err(failed(&"no certificate in it"));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(SourceError::Tls(
                    "no CA certificate in the system's store: give --postgres-ca-file".into(),
                ));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SourceError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

async fn read_postgres(postgres: &Postgres) -> Result<Relay, SourceError> {
    // With its causes: "error performing TLS handshake" alone does not say why.
    let failed = |e: tokio_postgres::Error| SourceError::Postgres(Chain(&e).to_string());
    let config: tokio_postgres::Config = postgres.url.parse().map_err(failed)?;
    let (owned, driver) = if config.get_ssl_mode() == SslMode::Require {
        let (client, connection) = config.connect(tls(postgres.ca_file.as_deref())?).await.map_err(failed)?;
        (client, tokio::spawn(drive(connection)))
    } else if postgres.ca_file.is_some() {
        // Not a plain-text connection the operator meant to be TLS.
        return Err(SourceError::Tls("a CA file is given but the URL does not say sslmode=require".into()));
    } else {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(failed)?;
        (client, tokio::spawn(drive(connection)))
    };
    let client = &owned;
    // The columns of a table of the connection's search path; none when it does not exist.
    let columns = |name: &'static str| async move {
        let query = "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = ANY (current_schemas(false)) ORDER BY ordinal_position";
        let rows = client.query(query, &[&name]).await.map_err(failed)?;
        rows.iter().map(|row| row.try_get::<_, String>(0).map_err(failed)).collect::<Result<Vec<_>, _>>()
    };
    let table = |name: &'static str| async move {
        // One JSON object per row: every column type arrives as text, number, boolean
        // or null, which `json_row` makes text.
        let query = format!(r#"SELECT row_to_json(t)::text FROM "{name}" t ORDER BY "id""#);
        let mut rows = Vec::new();
        for row in client.query(query.as_str(), &[]).await.map_err(failed)? {
            let text: String = row.try_get(0).map_err(failed)?;
            rows.push(json_row(&text).ok_or_else(|| SourceError::Postgres(format!("{name}: a row is not an object")))?);
        }
        Ok::<_, SourceError>(rows)
    };
    let has_credentials = !columns("Credentials").await?.is_empty();
    let kind = Kind::of(&columns("Users").await?, &columns("ApiKeys").await?, has_credentials)
        .ok_or(SourceError::UnknownSchema)?;
    let mut relay = Relay { kind, users: table("Users").await?, api_keys: table("ApiKeys").await?, ..Relay::default() };
    if kind == Kind::V3 {
        relay.credentials = table("Credentials").await?;
        if !columns("KnownClients").await?.is_empty() {
            relay.known_clients = table("KnownClients").await?;
        }
    }
    drop(owned);
    let _ = driver.await;
    Ok(relay)
}

fn json_row(text: &str) -> Option<Row> {
    let serde_json::Value::Object(object) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let values = object
        .into_iter()
        .map(|(column, value)| {
            let value = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            };
            (column, value)
        })
        .collect();
    Some(Row(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_become_text_or_null() {
        let row = json_row(r#"{"id": 3, "email": "a@b.io", "enabled": true, "expiresAt": null}"#).unwrap();
        assert_eq!(row.get("id"), Some("3"));
        assert_eq!(row.get("email"), Some("a@b.io"));
        assert_eq!(row.get("enabled"), Some("true"));
        assert_eq!(row.get("expiresAt"), None);
        assert_eq!(row.get("missing"), None);
        assert!(json_row("[1]").is_none());
    }

    #[test]
    fn the_relay_is_told_by_its_columns() {
        let names = |list: &[&str]| list.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        let node = (names(&["id", "email", "apiKey"]), names(&["id", "key"]));
        let v3 = (names(&["id", "email", "apiKeyHash"]), names(&["id", "key", "keyHash"]));
        assert_eq!(Kind::of(&node.0, &node.1, false), Some(Kind::Node));
        assert_eq!(Kind::of(&v3.0, &v3.1, true), Some(Kind::V3));
        assert_eq!(Kind::of(&v3.0, &v3.1, false), None, "no Credentials table: neither");
        assert_eq!(Kind::of(&names(&["id"]), &names(&["id"]), true), None);
    }
}
