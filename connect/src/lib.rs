//! `runnel-connect`: a Kafka Connect runtime. Connectors are Rust types behind a registry
//! keyed by `connector.class` (Kafka's class names work as aliases); configs are Kafka
//! Connect's JSON; the REST API has Kafka Connect's paths and shapes. It reaches the
//! broker only through rdkafka, so it runs unchanged against any Kafka cluster.
//!
//! Layout:
//! - [`api`]: the data model, records and connector traits.
//! - [`converters`]: JsonConverter, StringConverter, ByteArrayConverter.
//! - [`transforms`]: single message transforms and predicates.
//! - [`connectors`]: the registry and the file connectors.
//! - [`runtime`]: worker config, worker, source and sink task loops, offsets, errors,
//!   and distributed mode's group membership and shared topics.
//! - [`rest`]: the Kafka-Connect-compatible REST API (axum).
//! - [`standalone`]: `runnel connect standalone` — worker + REST + connector files.
//! - [`distributed`]: `runnel connect distributed` — a worker of a group + REST.

pub mod api;
pub mod connectors;
pub mod converters;
pub mod distributed;
pub mod error;
pub mod rest;
pub mod runtime;
pub mod standalone;
pub mod transforms;

pub use error::{Error, Result};
pub use runtime::{Worker, WorkerConfig};
