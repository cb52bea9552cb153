//! End-to-end tests of the `runnel` binary: the real-client conformance suite against
//! `runnel broker`, a kill -9 crash test, and the client commands.

mod cli;
mod conformance;
mod connect_cluster;
mod crash;
mod streams_crash;
mod support;
