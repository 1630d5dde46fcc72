//! Files for the owner alone: the local server's data directory holds the accounts, the
//! cipher key and emails that carry live reset links.

use crate::domain::error::PortError;
use std::path::Path;

/// Creates a directory readable by its owner only (0700), or warns when an existing one is
/// open to other users of the machine: it holds the accounts, the cipher key, and emails
/// that carry live reset links.
pub fn private_dir(dir: &Path) -> Result<(), PortError> {
    let failed = |e: std::io::Error| PortError::Other(format!("{}: {e}", dir.display()));
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir).map_err(failed)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = format!("{mode:o}"),
                    "the directory is readable by other users of this machine; chmod 700 it"
                );
            }
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(failed)
}

/// Opens options that create a file readable and writable by its owner only (0600).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `path` as an owner-only file if it does not exist yet (before a library opens
/// it with the default umask).
pub fn private_file(path: &Path) -> Result<(), PortError> {
    private_file_options().open(path).map(drop).map_err(|e| PortError::Other(format!("{}: {e}", path.display())))
}
