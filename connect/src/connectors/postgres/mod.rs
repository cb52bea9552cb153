//! PostgreSQL connectors over tokio-postgres: [`sink::PostgresSinkConnector`]
//! (Confluent's JDBC sink keys), [`source::PostgresSourceConnector`] (its JDBC source
//! keys) and [`cdc::PostgresCdcConnector`] (Debezium's PostgreSQL connector: logical
//! decoding with pgoutput, `cdc_snapshot.rs` and `cdc_stream.rs`).

pub mod cdc;
pub mod cdc_config;
pub mod connection;
mod copy_rows;
pub mod json_rows;
pub mod pgoutput;
pub mod sink;
pub mod sink_config;
mod sink_rows;
mod sink_statements;
pub mod source;
pub mod source_config;
pub mod sql;
pub mod types;
