//! The runtime: worker config, the worker, task loops, offsets and error handling.

pub mod config;
pub mod errors;
pub mod offsets;
pub mod sink;
pub mod source;
pub mod task;
pub mod worker;

pub use config::WorkerConfig;
pub use worker::{ConnectorStatus, Worker};
