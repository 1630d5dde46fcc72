//! Secrets given off the command line, where every user of the machine can read them
//! (`ps`, `/proc/<pid>/cmdline`): in an environment variable, or in a file named by an
//! option or by the variable's `_FILE` twin (the convention of container images, whose
//! secrets are mounted files).

use std::path::Path;
use zeroize::Zeroizing;

/// The relay database's URL, when no source is named on the command line.
pub const POSTGRES_URL_VARIABLE: &str = "IMPORT_RELAY_POSTGRES_URL";
/// The file holding that URL.
pub const POSTGRES_URL_FILE_VARIABLE: &str = "IMPORT_RELAY_POSTGRES_URL_FILE";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0} and {1} are both given: give one")]
    Twice(&'static str, &'static str),
    #[error("{name} {path}: {error}")]
    Unreadable { name: &'static str, path: String, error: std::io::Error },
    #[error("{name} {path} is empty")]
    Empty { name: &'static str, path: String },
}

/// A secret given as a value (named `value.0`) or as a file that holds it (named
/// `file.0`), never both; `None` when neither is. A file counts without the white space
/// around its content (the line end that `echo` or an editor adds).
pub fn value_or_file(
    value: (&'static str, Option<String>),
    file: (&'static str, Option<&Path>),
) -> Result<Option<Zeroizing<String>>, SecretError> {
    match (value.1, file.1) {
        (Some(_), Some(_)) => Err(SecretError::Twice(value.0, file.0)),
        (Some(value), None) => Ok(Some(Zeroizing::new(value))),
        (None, Some(path)) => {
            let shown = path.display().to_string();
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| SecretError::Unreadable {
                name: file.0,
                path: shown.clone(),
                error,
            })?);
            let secret = text.trim();
            if secret.is_empty() {
                return Err(SecretError::Empty { name: file.0, path: shown });
            }
            Ok(Some(Zeroizing::new(secret.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_its_value_or_its_file_trimmed_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let read = |value: Option<&str>, file: Option<&Path>| {
            value_or_file(("--key", value.map(str::to_owned)), ("--key-file", file)).map(|s| s.map(|s| s.to_string()))
        };
        assert_eq!(read(Some("given"), None).unwrap().as_deref(), Some("given"));
        assert_eq!(read(None, Some(&file)).unwrap().as_deref(), Some("s3cret"));
        assert_eq!(read(None, None).unwrap(), None);
        let twice = read(Some("given"), Some(&file)).unwrap_err().to_string();
        assert_eq!(twice, "--key and --key-file are both given: give one");
        let missing = read(None, Some(&dir.path().join("nothing"))).unwrap_err().to_string();
        assert!(missing.starts_with("--key-file ") && missing.contains("nothing"), "{missing}");
        std::fs::write(&file, "\n").unwrap();
        assert!(read(None, Some(&file)).unwrap_err().to_string().ends_with("is empty"));
    }

    #[test]
    fn an_error_never_shows_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret").unwrap();
        let twice = value_or_file(("--key", Some("s3cret".into())), ("--key-file", Some(&file))).unwrap_err();
        assert!(!format!("{twice} {twice:?}").contains("s3cret"));
    }
}
