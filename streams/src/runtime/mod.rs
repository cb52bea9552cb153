//! The runtime: [`StreamsConfig`], tasks, changelog restore, stream threads and
//! [`KafkaStreams`], which runs a topology against a Kafka cluster.

mod block_on;
pub mod config;
mod partition_group;
mod process;
pub mod query;
pub mod restore;
pub mod streams;
pub mod task;
mod thread;
mod topics;

pub use config::{ProcessingGuarantee, StreamsConfig};
pub use query::{
    QueryableStores, ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore,
};
pub use restore::StateRestoreListener;
pub use streams::{KafkaStreams, State};
