//! The Foundry relay Auth API: everything the Lambda functions (thirteen routes and the authorizer) share.
//!
//! - [`domain`]: the rules and operations, pure Rust over the [`domain::ports`]; it owns the
//!   [`domain::app::App`] state, the settings and the port traits, and imports nothing else here.
//! - [`aws`]: the DynamoDB, SES v2 and KMS adapters.
//! - [`http`]: request parsing, the one error mapping, and the route table.
//! - [`lambda`]: `run::<Route>()`, a function's whole `main`.
//! - [`logs`]: the log subscriber of every binary, never more verbose than DEBUG.

pub mod aws;
pub mod config;
pub mod domain;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod http;
pub mod lambda;
pub mod logs;
mod records;

#[cfg(test)]
mod module_graph;
