//! The runtime: [`StreamsConfig`], tasks, changelog restore, stream threads and
//! [`KafkaStreams`], which runs a topology against a Kafka cluster.

pub mod config;
pub mod query;
pub mod restore;
pub mod task;

pub use config::StreamsConfig;
pub use query::{ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore};
pub struct KafkaStreams;
