//! `runnel-broker`: Runnel's durable broker. It speaks the Apache Kafka wire protocol so
//! every Kafka client works with it unchanged, and it is what Connect, Streams and KSQL
//! run on (always through a real Kafka client, never through these internals).
//!
//! Layout:
//! - [`log`]: partition storage — segments of v2 record batches, indexes, recovery,
//!   retention, compaction, idempotent producer state, partitions' transaction state.
//! - [`protocol`]: the tokio server, framing and one module per Kafka API family.
//! - [`group`]: the classic group coordinator and committed offsets.
//! - [`txn`]: the transaction coordinator and `__transaction_state`.
//! - [`topics`]: the topic registry on disk.
//! - [`config`]: typed broker and topic configs with Kafka's names and defaults.
//! - [`durable`]: fsync helpers (atomic file replacement, directory fsyncs).
//! - [`broker`]: [`Broker::start`] for embedded use and the `runnel broker` command.

pub mod broker;
pub mod config;
pub mod durable;
pub mod error;
pub mod group;
pub mod log;
pub mod protocol;
pub mod topics;
pub mod txn;

#[cfg(test)]
mod fuzz_tests;
mod sync;

pub use broker::{Broker, BrokerHandle};
pub use config::{BrokerConfig, TopicConfig};
pub use error::{Error, ErrorCode, Result};
