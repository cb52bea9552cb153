//! Partition storage: segments of Kafka v2 record batches with sparse indexes, recovery
//! of torn tails, retention and compaction.

pub mod batch;
pub mod compaction;
pub mod flush;
pub mod index;
pub mod partition;
pub mod producer_state;
pub mod retention;
pub mod segment;
pub mod transactions;
pub mod validator;

pub use partition::{now_ms, AppendResult, Isolation, PartitionLog, ReadResult};
