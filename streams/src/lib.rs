//! `runnel-streams`: Kafka Streams for Rust. A typed DSL ([`StreamsBuilder`],
//! [`KStream`], [`KTable`], [`GlobalKTable`]; windows, aggregations and joins) compiles
//! to a processor graph ([`Topology`]) over byte-keyed state stores. [`KafkaStreams`]
//! runs it against any Kafka cluster through rdkafka — one task per input partition,
//! stores backed by compacted changelog topics, input offsets committed only after
//! output and changelog writes were acknowledged — and [`TopologyTestDriver`] runs it
//! without a broker, for users' unit tests. The runtime knows nothing of the DSL's
//! types, so the KSQL layer can run its own operators on it.
//!
//! Layout:
//! - [`serde`]: the `Serde` trait and its implementations; [`record`]: records.
//! - [`state`]: store trait, in-memory and persistent (fjall) stores, window key layout.
//! - [`topology`]: the processor graph, sub-topologies, the task context.
//! - [`dsl`]: the typed DSL and the Processor API.
//! - [`runtime`]: config, tasks, changelog restore, stream threads, `KafkaStreams`.
//! - `local_runner`: [`LocalRunner`], a topology run in the calling thread without a
//!   broker (alias [`TopologyTestDriver`], Kafka's name for it in tests).

pub mod dsl;
pub mod error;
pub mod local_runner;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod state;
mod sync;
pub mod topology;

pub use dsl::{
    Batched, BufferConfig, Change, Consumed, EmitStrategy, GlobalKTable, Grouped, JoinWindows,
    Joined, KGroupedStream, KGroupedTable, KStream, KTable, Materialized, Processor,
    ProcessorContext, SessionWindows, SlidingWindows, StreamJoined, StreamsBuilder, Suppressed,
    TimeWindows,
};
pub use error::{Error, Result};
pub use local_runner::LocalRunner;
pub use record::Record;
pub use runtime::{KafkaStreams, QueryableStores, StreamsConfig};
pub use serde::{Json, Serde};
pub use state::window::{Window, Windowed};
pub use state::windowed_serde::{SessionWindowedKey, TimeWindowedKey};
/// Kafka Streams' name for a topology run without a broker in unit tests.
pub type TopologyTestDriver = LocalRunner;
pub use topology::{PunctuationType, Topology};
