//! `runnel-connect`: a Kafka Connect runtime. Connectors are Rust types behind a registry
//! keyed by `connector.class` (Kafka's class names work as aliases); configs are Kafka
//! Connect's JSON; the REST API has Kafka Connect's paths and shapes. It reaches the
//! broker only through rdkafka, so it runs unchanged against any Kafka cluster.
//!
//! Layout:
//! - [`api`]: the data model, records, connector traits, and `config_def` (Kafka's
//!   ConfigDef: the typed key definitions every plugin and the worker parse with).
//! - [`converters`]: JsonConverter, StringConverter, ByteArrayConverter.
//! - [`transforms`]: single message transforms and predicates.
//! - [`connectors`]: the registry; the file connectors (FileStreamSource/Sink), and the
//!   PostgreSQL connectors: the JDBC-style sink and source and the Debezium-compatible
//!   CDC source.
//! - [`runtime`]: worker config, worker, source and sink task loops, offsets, error
//!   handling (`errors.tolerance`, dead letter queue, retries), and `group/`:
//!   distributed mode's worker group (membership, assignment, shared topics).
//! - [`rest`]: the Kafka-Connect-compatible REST API (axum); `rest/plugins.rs` lists
//!   plugins, their definitions, and validates configs.
//! - [`reference`]: the README's generated configuration reference.
//! - [`standalone`]: `runnel connect standalone` — worker + REST + connector files.
//! - [`distributed`]: `runnel connect distributed` — a worker of a group + REST.

pub mod api;
pub mod connectors;
pub mod converters;
pub mod distributed;
pub mod error;
pub mod reference;
pub mod rest;
pub mod runtime;
pub mod standalone;
mod sync;
pub mod transforms;

pub use error::{Error, Result};
pub use runtime::{Worker, WorkerConfig};
