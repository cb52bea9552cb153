//! `runnel-ksql`: ksqlDB's SQL over Runnel topics. Statements are parsed with
//! sqlparser (the version DataFusion pins) behind a thin front parser for ksqlDB's own
//! clauses, planned and evaluated with DataFusion, and run against any Kafka cluster
//! through rdkafka: persistent queries run as Runnel Streams topologies whose stateful
//! operators (aggregates, windows, joins) keep DataFusion accumulator state in Streams
//! state stores with changelogs.
//!
//! Layout:
//! - [`parser`]: statements, the ksql clauses, column types.
//! - [`catalog`]: streams, tables, queries; [`format`]: JSON, DELIMITED, KAFKA.
//! - [`planner`]: DataFusion sessions and ksqlDB's functions, the push pipeline read
//!   from a physical plan, AST rewrites, joins.
//! - [`exec`]: the persistent query's processor (aggregates, joins, re-keying, state
//!   encoding, topology) and transient push, pull and PRINT queries.
//! - [`engine`]: statement execution and the command topic; [`kafka`]: the client.
//! - [`entity`]: what statements return, ksqlDB's REST entities as types.
//! - [`server`]: the REST API (the one place entities become JSON); [`shell`]: the
//!   interactive shell.
//! - `error`: the crate's error type.

pub mod catalog;
pub mod engine;
pub mod entity;
pub mod error;
pub mod exec;
pub mod format;
pub mod kafka;
pub mod parser;
pub mod planner;
pub mod server;
pub mod shell;
mod sync;

pub use error::{Error, Result};
