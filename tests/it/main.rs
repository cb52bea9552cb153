//! End-to-end tests of the `runnel` binary: the real-client conformance suite against
//! `runnel broker`, a kill -9 crash test, the client commands and the KSQL shell.

mod cli;
mod conformance;
mod connect_cluster;
mod crash;
mod ksql_shell;
mod streams_crash;
mod support;
mod transactions;
