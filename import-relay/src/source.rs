//! Reading a Node relay's database: its `Users` and `ApiKeys` tables, in SQLite (as its
//! Sequelize models create them) or PostgreSQL (the same quoted names and columns). Every
//! value is read as text (or NULL), whatever the column's type in either database, and
//! interpreted by `relay`.

use shared::domain::error::Chain;
use std::collections::HashMap;
use std::path::PathBuf;

/// Where the relay's data is.
#[derive(Debug, Clone)]
pub enum Source {
    Sqlite(PathBuf),
    /// A `postgres://` URL (connected to without TLS).
    Postgres(String),
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

/// The rows the import reads; `PasswordResetTokens` are not (they expire within the hour).
#[derive(Debug, Clone, Default)]
pub struct Relay {
    pub users: Vec<Row>,
    pub api_keys: Vec<Row>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("SQLite database {path}: {detail}")]
    Sqlite { path: String, detail: String },
    #[error("PostgreSQL: {0}")]
    Postgres(String),
}

/// The two tables, each ordered by `id`.
pub async fn read(source: &Source) -> Result<Relay, SourceError> {
    match source {
        Source::Sqlite(path) => {
            let path = path.clone();
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || read_sqlite(&path))
                .await
                .map_err(|e| SourceError::Sqlite { path: shown, detail: e.to_string() })?
        }
        Source::Postgres(url) => read_postgres(url).await,
    }
}

fn read_sqlite(path: &std::path::Path) -> Result<Relay, SourceError> {
    use rusqlite::types::ValueRef;
    let failed = |e: rusqlite::Error| SourceError::Sqlite { path: path.display().to_string(), detail: e.to_string() };
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(failed)?;
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
    Ok(Relay { users: table("Users")?, api_keys: table("ApiKeys")? })
}

async fn read_postgres(url: &str) -> Result<Relay, SourceError> {
    let failed = |e: tokio_postgres::Error| SourceError::Postgres(e.to_string());
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(failed)?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %Chain(&error), "PostgreSQL connection closed with an error");
        }
    });
    let mut relay = Relay::default();
    for (name, rows) in [("Users", &mut relay.users), ("ApiKeys", &mut relay.api_keys)] {
        // One JSON object per row: every column type arrives as text, number, boolean
        // or null, which `json_row` makes text.
        let query = format!(r#"SELECT row_to_json(t)::text FROM "{name}" t ORDER BY "id""#);
        for row in client.query(query.as_str(), &[]).await.map_err(failed)? {
            let text: String = row.try_get(0).map_err(failed)?;
            rows.push(json_row(&text).ok_or_else(|| SourceError::Postgres(format!("{name}: a row is not an object")))?);
        }
    }
    drop(client);
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
}
