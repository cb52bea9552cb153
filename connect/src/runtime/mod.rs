//! The runtime: worker config, the worker, task loops, offsets and error handling, and
//! the two ways to run workers — standalone ([`Worker`]) and distributed
//! ([`group::DistributedHerder`]) — behind the [`Herder`] the REST API talks to.

pub mod config;
pub mod connector_config;
pub mod connector_offsets;
pub mod error_handling;
pub mod exactly_once;
pub mod group;
pub mod herder;
pub mod kafka_log;
pub mod offsets;
pub mod sink;
mod sink_fetch;
pub mod source;
mod source_transactional;
pub mod task;
pub mod worker;

pub use config::WorkerConfig;
pub use herder::Herder;
pub use worker::{ConnectorStatus, Worker};
