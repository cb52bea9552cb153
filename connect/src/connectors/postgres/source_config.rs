//! PostgresSource's typed config, with Confluent's JDBC source keys and defaults.

use crate::api::Config;
use crate::error::{Error, Result};

use super::connection::{connection_keys, Connection};
use crate::api::config_def::{key, ConfigDef, Type, Validator};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub connection: Connection,
    pub whitelist: Vec<String>,
    pub blacklist: Vec<String>,
    pub query: Option<String>,
    pub mode: Mode,
    pub incrementing_column: Option<String>,
    pub timestamp_columns: Vec<String>,
    pub timestamp_delay_ms: i64,
    pub poll_interval_ms: u64,
    pub batch_max_rows: usize,
    pub topic_prefix: String,
    /// This task's share of the tables: (index, count).
    pub task: (usize, usize),
}

/// The JDBC source's keys, in Confluent's groups.
pub fn definition() -> ConfigDef {
    ConfigDef::new()
        .group(
            "Database",
            connection_keys().into_iter().chain([
                key(
                    "table.whitelist",
                    Type::List,
                    "Tables to copy; unset: every table. Excludes table.blacklist.",
                )
                .default(""),
                key(
                    "table.blacklist",
                    Type::List,
                    "Tables not to copy. Excludes table.whitelist.",
                )
                .default(""),
            ]),
        )
        .group(
            "Mode",
            [
                key(
                    "mode",
                    Type::String,
                    "How each poll finds new rows: bulk (the whole table), incrementing (a strictly increasing column), timestamp (a modification time column), or timestamp+incrementing.",
                )
                .required()
                .validator(Validator::OneOf(&[
                    "bulk",
                    "incrementing",
                    "timestamp",
                    "timestamp+incrementing",
                ]))
                .high(),
                key(
                    "incrementing.column.name",
                    Type::String,
                    "The strictly increasing column of modes incrementing and timestamp+incrementing.",
                )
                .default(""),
                key(
                    "timestamp.column.name",
                    Type::List,
                    "Modification time columns of modes timestamp and timestamp+incrementing; the first that is not null counts.",
                )
                .default(""),
                key(
                    "query",
                    Type::String,
                    "A query to run instead of copying tables; the mode's conditions are appended to it.",
                )
                .default(""),
            ],
        )
        .group(
            "Connector",
            [
                key(
                    "poll.interval.ms",
                    Type::Int,
                    "How often to poll for new data in each table, in milliseconds.",
                )
                .default("5000")
                .validator(Validator::AtLeast(0))
                .high(),
                key(
                    "batch.max.rows",
                    Type::Int,
                    "Rows to include in a single batch when polling for new data.",
                )
                .default("100")
                .validator(Validator::AtLeast(1))
                .low(),
                key(
                    "topic.prefix",
                    Type::String,
                    "Prefix of the topic names: the table name is appended (or, with query, the whole topic name).",
                )
                .required()
                .high(),
                key(
                    "timestamp.delay.interval.ms",
                    Type::Long,
                    "How long to wait after a row with a given timestamp appears before including it, in milliseconds.",
                )
                .default("0")
                .validator(Validator::AtLeast(0)),
            ],
        )
        .group(
            "Task",
            [
                key("task.index", Type::Int, "Set by the connector: this task's index.")
                    .default("0")
                    .validator(Validator::AtLeast(0))
                    .low(),
                key("task.count", Type::Int, "Set by the connector: how many tasks share the tables.")
                    .default("1")
                    .validator(Validator::AtLeast(1))
                    .low(),
            ],
        )
}

impl SourceConfig {
    pub fn parse(config: &Config) -> Result<SourceConfig> {
        let values = definition().parse(config)?;
        let mode = match values.lowercase("mode").as_deref() {
            Some("incrementing") => Mode::Incrementing,
            Some("timestamp") => Mode::Timestamp,
            Some("timestamp+incrementing") => Mode::TimestampIncrementing,
            _ => Mode::Bulk,
        };
        let incrementing_column = values
            .non_empty("incrementing.column.name")
            .map(str::to_string);
        let timestamp_columns = values.list("timestamp.column.name").to_vec();
        if matches!(mode, Mode::Incrementing | Mode::TimestampIncrementing)
            && incrementing_column.is_none()
        {
            return Err(Error::config(
                "incrementing.column.name",
                "is required by mode incrementing and timestamp+incrementing",
            ));
        }
        if matches!(mode, Mode::Timestamp | Mode::TimestampIncrementing)
            && timestamp_columns.is_empty()
        {
            return Err(Error::config(
                "timestamp.column.name",
                "is required by mode timestamp and timestamp+incrementing",
            ));
        }
        let query = values.non_empty("query").map(str::to_string);
        let whitelist = values.list("table.whitelist").to_vec();
        let blacklist = values.list("table.blacklist").to_vec();
        if query.is_some() && (!whitelist.is_empty() || !blacklist.is_empty()) {
            return Err(Error::config(
                "query",
                "query cannot be combined with table.whitelist or table.blacklist",
            ));
        }
        if !whitelist.is_empty() && !blacklist.is_empty() {
            return Err(Error::config(
                "table.blacklist",
                "table.whitelist and table.blacklist exclude each other",
            ));
        }
        Ok(SourceConfig {
            connection: Connection::from_values(&values)?,
            whitelist,
            blacklist,
            query,
            mode,
            incrementing_column,
            timestamp_columns,
            timestamp_delay_ms: values.number("timestamp.delay.interval.ms")?,
            poll_interval_ms: values.number("poll.interval.ms")?,
            batch_max_rows: values.number("batch.max.rows")?,
            topic_prefix: values
                .string("topic.prefix")
                .unwrap_or_default()
                .to_string(),
            task: (values.number("task.index")?, values.number("task.count")?),
        })
    }
}
