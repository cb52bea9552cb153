//! Execution: persistent queries on the Streams runtime (the processor, its
//! aggregate state, the vectorized paths of stream queries in `batch` and
//! `batch_aggregate`), and
//! the transient push and pull queries.

pub(crate) mod aggregate;
mod batch;
mod batch_aggregate;
mod batch_columns;
mod columns;
pub mod compiled;
mod foreign_key;
pub mod join;
pub mod persistent;
pub mod processor;
pub mod rekey;
mod scan;
pub mod state;
pub mod transient;
