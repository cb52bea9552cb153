//! Execution: persistent queries on the Streams runtime (the processor, its
//! aggregate state, the vectorized paths of stream queries in `batch`,
//! `batch_columns` (records decoded into Arrow builders, `columns`) and
//! `batch_aggregate`), and the transient push and pull queries (`scan` streams a
//! topic's partitions through DataFusion; `materialized` serves a table an
//! aggregation maintains from the aggregation's state store).

pub(crate) mod aggregate;
mod batch;
mod batch_aggregate;
mod batch_columns;
mod columns;
pub mod compiled;
mod foreign_key;
pub mod join;
pub mod materialized;
pub mod persistent;
pub mod processor;
pub mod rekey;
mod scan;
pub mod state;
pub mod transient;
