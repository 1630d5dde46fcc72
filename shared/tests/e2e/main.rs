//! End-to-end tests of the Auth API: every route of the contract, through the real
//! handlers and adapters: against the local AWS emulator under `scripts/test.sh`, on the
//! embedded adapters under a plain `cargo test` (see `support`). Tests about the AWS
//! adapters themselves are ignored without the emulator, and say so.
//! (One test binary for the crate; each area is a module.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests start their manual clocks, and write their fixtures, at the real time.
#![allow(clippy::disallowed_methods)]

mod accounts;
mod activity;
mod authorizer;
mod conformance;
mod contention;
mod endpoints;
mod events;
mod hot_path;
mod invariants;
mod legacy_keys;
mod needs;
mod recipe;
mod recovery;
mod routing;
mod runtime_api;
mod scoped_keys;
mod scopes;
mod support;
mod template;
mod throttling;
mod verification;
mod verify;
