//! PostgresCdcSource's typed config, with Debezium's keys and defaults.

use crate::api::Config;
use crate::error::{Error, Result};

use super::connection::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    Never,
    InitialOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationAutocreate {
    AllTables,
    Filtered,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct CdcConfig {
    pub connection: Connection,
    pub dbname: String,
    pub topic_prefix: String,
    /// `schema.table` names; empty: every table of the publication.
    pub tables: Vec<String>,
    pub slot: String,
    pub publication: String,
    pub autocreate: PublicationAutocreate,
    pub snapshot: SnapshotMode,
    /// Rows read per poll during the snapshot (Debezium's `snapshot.fetch.size`).
    pub snapshot_fetch_size: usize,
    /// Records handed out per poll at most (Debezium's `max.batch.size`).
    pub max_batch_size: usize,
    /// Replication events buffered between the connection and `poll` (Debezium's
    /// `max.queue.size`).
    pub max_queue_size: usize,
    /// How long a poll waits for the first change.
    pub poll_interval_ms: u64,
    /// How often the acknowledged position is reported to the server at most
    /// (Debezium's `status.update.interval.ms`).
    pub status_update_interval_ms: u64,
    /// How often, and how far apart, starting replication is retried while another
    /// connection still holds the slot (Debezium's `slot.max.retries`,
    /// `slot.retry.delay.ms`).
    pub slot_max_retries: u32,
    pub slot_retry_delay_ms: u64,
    pub replication: Replication,
}

/// Where the replication connection goes (the same server as the SQL connection).
#[derive(Debug, Clone)]
pub struct Replication {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

pub const CDC_KEYS: &[&str] = &[
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "topic.prefix",
    "table.include.list",
    "plugin.name",
    "slot.name",
    "publication.name",
    "publication.autocreate.mode",
    "snapshot.mode",
    "snapshot.fetch.size",
    "max.batch.size",
    "max.queue.size",
    "poll.interval.ms",
    "status.update.interval.ms",
    "slot.max.retries",
    "slot.retry.delay.ms",
];

impl CdcConfig {
    pub fn parse(config: &Config) -> Result<CdcConfig> {
        let get = |k: &str| {
            config
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |k: &str| get(k).ok_or_else(|| Error::MissingConfig(k.into()));
        // A whole number from `min` to `max`, or `default` when the key is unset.
        let number = |k: &str, default: u64, min: u64, max: u64| match get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    Error::config(k, format!("{v} is not a number from {min} to {max}"))
                }),
        };
        let host = required("database.hostname")?;
        let port: u16 = match get("database.port") {
            None => 5432,
            Some(p) => p
                .parse()
                .map_err(|_| Error::config("database.port", format!("{p} is not a port")))?,
        };
        let dbname = required("database.dbname")?;
        let user = required("database.user")?;
        if let Some(p) = get("plugin.name").filter(|p| p != "pgoutput") {
            return Err(Error::config(
                "plugin.name",
                format!("{p} is not supported: only pgoutput"),
            ));
        }
        let mut conn = Config::new();
        conn.insert(
            "connection.url".into(),
            format!("postgres://{host}:{port}/{dbname}"),
        );
        conn.insert("connection.user".into(), user.clone());
        if let Some(p) = get("database.password") {
            conn.insert("connection.password".into(), p);
        }
        let snapshot = match get("snapshot.mode").as_deref() {
            None | Some("initial") => SnapshotMode::Initial,
            Some("never") | Some("no_data") => SnapshotMode::Never,
            Some("initial_only") => SnapshotMode::InitialOnly,
            Some(other) => {
                return Err(Error::config(
                    "snapshot.mode",
                    format!("{other} is not one of initial, never, initial_only"),
                ))
            }
        };
        let autocreate = match get("publication.autocreate.mode").as_deref() {
            None | Some("all_tables") => PublicationAutocreate::AllTables,
            Some("filtered") => PublicationAutocreate::Filtered,
            Some("disabled") => PublicationAutocreate::Disabled,
            Some(other) => {
                return Err(Error::config(
                    "publication.autocreate.mode",
                    format!("{other} is not one of all_tables, filtered, disabled"),
                ))
            }
        };
        let tables: Vec<String> = get("table.include.list")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if autocreate == PublicationAutocreate::Filtered && tables.is_empty() {
            return Err(Error::config(
                "table.include.list",
                "publication.autocreate.mode=filtered needs the tables",
            ));
        }
        Ok(CdcConfig {
            connection: Connection::parse(&conn)?,
            dbname,
            topic_prefix: required("topic.prefix")?,
            tables,
            slot: get("slot.name").unwrap_or_else(|| "debezium".into()),
            publication: get("publication.name").unwrap_or_else(|| "dbz_publication".into()),
            autocreate,
            snapshot,
            snapshot_fetch_size: number("snapshot.fetch.size", 10_240, 1, 1_000_000)? as usize,
            max_batch_size: number("max.batch.size", 2048, 1, 1_000_000)? as usize,
            max_queue_size: number("max.queue.size", 8192, 1, 1_000_000)? as usize,
            poll_interval_ms: number("poll.interval.ms", 500, 0, 3_600_000)?,
            status_update_interval_ms: number("status.update.interval.ms", 10_000, 1, 3_600_000)?,
            slot_max_retries: number("slot.max.retries", 6, 0, 1_000)? as u32,
            slot_retry_delay_ms: number("slot.retry.delay.ms", 10_000, 0, 3_600_000)?,
            replication: Replication {
                host,
                port,
                user,
                password: get("database.password").unwrap_or_default(),
            },
        })
    }
}
