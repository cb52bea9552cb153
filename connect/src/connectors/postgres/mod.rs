//! PostgreSQL connectors over tokio-postgres: [`sink::PostgresSinkConnector`]
//! (Confluent's JDBC sink keys) and [`source::PostgresSourceConnector`] (its JDBC
//! source keys). The CDC source is still to come.

pub mod cdc;
pub mod cdc_config;
pub mod connection;
mod copy_rows;
pub mod json_rows;
mod keys;
pub mod pgoutput;
pub mod sink;
pub mod sink_config;
mod sink_rows;
mod sink_statements;
pub mod source;
pub mod source_config;
pub mod sql;
pub mod types;
