//! HTTP: reading requests, the one error mapping, responses, and the route table.

pub mod authorizer;
pub mod bodies;
pub mod error;
pub mod gateway;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod request;
pub mod response;
pub mod routes;
pub mod schema;

pub use routes::{dispatch, Endpoint};
