//! PostgreSQL connectors over tokio-postgres: [`sink::PostgresSinkConnector`]
//! (Confluent's JDBC sink keys). The polling and CDC sources are still to come.

pub mod connection;
pub mod sink;
pub mod sink_config;
pub mod sql;
