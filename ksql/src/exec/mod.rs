//! Execution: persistent queries on the Streams runtime (the processor, its
//! aggregate state, the vectorized path of stateless stream queries in `batch`), and
//! the transient push and pull queries.

pub(crate) mod aggregate;
mod batch;
pub mod compiled;
mod foreign_key;
pub mod join;
pub mod persistent;
pub mod processor;
pub mod rekey;
pub mod state;
pub mod transient;
