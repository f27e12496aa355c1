//! HTTPS admission (validate, mutate) and CRD conversion webhook server.
//!
//! - [`server`]: rustls + hyper-util (h1 + h2) serving the axum router; admin listener;
//!   graceful shutdown. Start with [`Server::bind`] then [`Server::run`].
//! - [`tls`]: certificate resolver with hot reload (directory watcher + poll).
//! - [`admission`]: request bytes → response bytes for validate / mutate / convert.
//! - [`metrics`]: Prometheus metrics.
//! - [`pool`]: the handler threads (first in, first out).
//! - [`budget`]: room for request bodies and the connection caps (bounded memory and fds).
//! - [`client`]: a small HTTPS client for tests and the load benchmark.

pub mod admission;
pub mod budget;
pub mod client;
pub mod metrics;
pub mod pool;
pub mod server;
pub mod tls;

pub use server::{Server, ServerOptions, TlsMode};
