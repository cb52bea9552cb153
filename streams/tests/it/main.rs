//! Streams tests: every operator through the TopologyTestDriver, and the runtime on a
//! real (in-process) broker.

mod common;
mod driver_joins;
mod driver_names;
mod driver_nulls;
mod driver_ops;
mod driver_suppress;
mod driver_timestamps;
mod driver_windows;
mod runtime;
mod runtime_batches;
