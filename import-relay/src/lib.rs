//! `import-relay`: moves the accounts of a Node relay's database into this service's store,
//! so that every user logs in with the same password and the same API keys keep working.
//! `source` reads the relay's tables, `relay` says what a row means here, `run` writes
//! each account whole or not at all and reports what became of every row.

pub mod relay;
pub mod run;
pub mod secret;
pub mod source;

pub use relay::{CredentialsKey, Reason};
pub use run::{import, Options, Outcome, Report, Table};
pub use source::{read, Kind, Postgres, Relay, Source};
