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
    pub poll_interval_ms: u64,
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
    "poll.interval.ms",
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
        conn.insert("connection.user".into(), user);
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
            snapshot_fetch_size: match get("snapshot.fetch.size") {
                None => 10_240,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        Error::config(
                            "snapshot.fetch.size",
                            format!("{v} is not a number from 1 to 1000000"),
                        )
                    })?,
            },
            max_batch_size: match get("max.batch.size") {
                None => 2048,
                Some(v) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        Error::config(
                            "max.batch.size",
                            format!("{v} is not a number from 1 to 1000000"),
                        )
                    })?,
            },
            poll_interval_ms: match get("poll.interval.ms") {
                None => 500,
                Some(v) => v.parse().map_err(|_| {
                    Error::config("poll.interval.ms", format!("{v} is not a number"))
                })?,
            },
        })
    }
}
