//! Switchyard: an edge API gateway on pingora that sends each request of a public API to the
//! right versioned backend cluster.
//!
//! - [`config`]: the YAML config, loaded with the location of every field.
//! - [`gateway_api`]: Gateway API manifests, translated into the same model.
//! - [`pipeline`]: the config compiled into filter chains, route tables and backends.
//! - [`proxy`]: the pingora `ProxyHttp` that runs a listener's chain.
//! - [`server`]: one proxy service per listener.
//! - [`lab`]: the versioned-routing lab's tools: the demo, the echo app used as a backend by
//!   the demo, tests and benches, and the token minter.

pub mod access_log;
pub mod admin;
pub mod backend;
pub mod background_thread;
pub mod check;
pub mod config;
pub mod dns;
pub mod drain;
pub mod explain;
pub mod gateway_api;
pub mod lab;
pub mod metrics;
pub mod pipeline;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod tls;
