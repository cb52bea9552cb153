//! PostgresSource's typed config, with Confluent's JDBC source keys and defaults.

use crate::api::Config;
use crate::error::{Error, Result};

use super::connection::Connection;
use crate::api::config_values::{list, number};

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

pub const SOURCE_KEYS: &[&str] = &[
    "connection.url",
    "connection.user",
    "connection.password",
    "table.whitelist",
    "table.blacklist",
    "query",
    "mode",
    "incrementing.column.name",
    "timestamp.column.name",
    "timestamp.delay.interval.ms",
    "poll.interval.ms",
    "batch.max.rows",
    "topic.prefix",
    "dialect.name",
    "task.index",
    "task.count",
];

impl SourceConfig {
    pub fn parse(config: &Config) -> Result<SourceConfig> {
        let mode = match config
            .get("mode")
            .map(|m| m.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("bulk") => Mode::Bulk,
            Some("incrementing") => Mode::Incrementing,
            Some("timestamp") => Mode::Timestamp,
            Some("timestamp+incrementing") => Mode::TimestampIncrementing,
            Some(other) => {
                return Err(Error::config(
                    "mode",
                    format!(
                    "{other} is not one of bulk, incrementing, timestamp, timestamp+incrementing"
                ),
                ))
            }
            None => return Err(Error::MissingConfig("mode".into())),
        };
        let incrementing_column = config
            .get("incrementing.column.name")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let timestamp_columns = list(config, "timestamp.column.name");
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
        let query = config
            .get("query")
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        let whitelist = list(config, "table.whitelist");
        let blacklist = list(config, "table.blacklist");
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
        let topic_prefix = config
            .get("topic.prefix")
            .cloned()
            .ok_or_else(|| Error::MissingConfig("topic.prefix".into()))?;
        let batch_max_rows: usize = number(config, "batch.max.rows", 100)?;
        if batch_max_rows == 0 {
            return Err(Error::config("batch.max.rows", "must be at least 1"));
        }
        Ok(SourceConfig {
            connection: Connection::parse(config)?,
            whitelist,
            blacklist,
            query,
            mode,
            incrementing_column,
            timestamp_columns,
            timestamp_delay_ms: number(config, "timestamp.delay.interval.ms", 0)?,
            poll_interval_ms: number(config, "poll.interval.ms", 5000)?,
            batch_max_rows,
            topic_prefix,
            task: (
                number(config, "task.index", 0)?,
                number(config, "task.count", 1usize)?.max(1),
            ),
        })
    }
}
