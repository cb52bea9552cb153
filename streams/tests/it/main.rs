//! Streams tests: every operator through the TopologyTestDriver, and the runtime on a
//! real (in-process) broker.

mod driver_joins;
mod driver_ops;
mod driver_windows;
