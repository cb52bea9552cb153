//! PostgresCdcSource's typed config, with Debezium's keys and defaults.

use crate::api::config_def::{key, ConfigDef, Type, Validator};
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

/// Debezium's PostgreSQL connector keys that Runnel reads.
pub fn definition() -> ConfigDef {
    let count = |name, default, doc| {
        key(name, Type::Int, doc)
            .default(default)
            .validator(Validator::Between(1, 1_000_000))
    };
    let millis = |name, default, min, doc| {
        key(name, Type::Long, doc)
            .default(default)
            .validator(Validator::Between(min, 3_600_000))
    };
    let non_empty = |name, doc| {
        key(name, Type::String, doc)
            .required()
            .validator(Validator::NonEmpty)
            .high()
    };
    ConfigDef::new()
        .group(
            "Connection",
            [
                non_empty("database.hostname", "Resolvable hostname or IP address of the database server."),
                key("database.port", Type::Int, "Port of the database server.")
                    .default("5432")
                    .validator(Validator::Between(1, 65535))
                    .high(),
                non_empty("database.user", "Name of the database user to connect as; it needs the REPLICATION attribute."),
                key("database.password", Type::Password, "Password of the database user.").high(),
                non_empty("database.dbname", "The name of the database to stream changes from."),
                non_empty("topic.prefix", "Prefix of every topic name: <topic.prefix>.<schema>.<table>."),
                key(
                    "table.include.list",
                    Type::List,
                    "The tables (schema.table) whose changes to capture; unset: every table of the publication.",
                )
                .default(""),
            ],
        )
        .group(
            "Replication",
            [
                key("plugin.name", Type::String, "The logical decoding plugin; only pgoutput.")
                    .default("pgoutput")
                    .validator(Validator::OneOf(&["pgoutput"])),
                key("slot.name", Type::String, "The name of the replication slot.")
                    .default("debezium")
                    .validator(Validator::NonEmpty),
                key("publication.name", Type::String, "The name of the publication.")
                    .default("dbz_publication")
                    .validator(Validator::NonEmpty),
                key(
                    "publication.autocreate.mode",
                    Type::String,
                    "all_tables: create the publication for every table; filtered: for table.include.list; disabled: it must exist.",
                )
                .default("all_tables")
                .validator(Validator::OneOf(&["all_tables", "filtered", "disabled"])),
                millis(
                    "status.update.interval.ms",
                    "10000",
                    1,
                    "How often, at most, the acknowledged position is reported to the server, in milliseconds.",
                ),
                key(
                    "slot.max.retries",
                    Type::Int,
                    "How often starting replication is retried while another connection holds the slot.",
                )
                .default("6")
                .validator(Validator::Between(0, 1000)),
                millis("slot.retry.delay.ms", "10000", 0, "The pause between those retries, in milliseconds."),
            ],
        )
        .group(
            "Snapshot",
            [
                key(
                    "snapshot.mode",
                    Type::String,
                    "initial: copy the tables once, then stream changes; never (or no_data): only stream; initial_only: only copy.",
                )
                .default("initial")
                .validator(Validator::OneOf(&["initial", "never", "no_data", "initial_only"])),
                count("snapshot.fetch.size", "10240", "Rows read per poll during the snapshot."),
            ],
        )
        .group(
            "Events",
            [
                count("max.batch.size", "2048", "Records handed out per poll, at most."),
                count("max.queue.size", "8192", "Replication events buffered between the connection and the task."),
                millis("poll.interval.ms", "500", 0, "How long a poll waits for the first change, in milliseconds."),
            ],
        )
}

impl CdcConfig {
    pub fn parse(config: &Config) -> Result<CdcConfig> {
        let values = definition().parse(config)?;
        let text = |k: &str| values.string(k).unwrap_or_default().to_string();
        let (host, dbname, user) = (
            text("database.hostname"),
            text("database.dbname"),
            text("database.user"),
        );
        let port: u16 = values.number("database.port")?;
        let password = text("database.password");
        let mut conn = Config::new();
        conn.insert(
            "connection.url".into(),
            format!("postgres://{host}:{port}/{dbname}"),
        );
        conn.insert("connection.user".into(), user.clone());
        if !password.is_empty() {
            conn.insert("connection.password".into(), password.clone());
        }
        let snapshot = match values.lowercase("snapshot.mode").as_deref() {
            Some("never") | Some("no_data") => SnapshotMode::Never,
            Some("initial_only") => SnapshotMode::InitialOnly,
            _ => SnapshotMode::Initial,
        };
        let autocreate = match values.lowercase("publication.autocreate.mode").as_deref() {
            Some("filtered") => PublicationAutocreate::Filtered,
            Some("disabled") => PublicationAutocreate::Disabled,
            _ => PublicationAutocreate::AllTables,
        };
        let tables = values.list("table.include.list").to_vec();
        if autocreate == PublicationAutocreate::Filtered && tables.is_empty() {
            return Err(Error::config(
                "table.include.list",
                "publication.autocreate.mode=filtered needs the tables",
            ));
        }
        Ok(CdcConfig {
            connection: Connection::parse(&conn)?,
            dbname,
            topic_prefix: text("topic.prefix"),
            tables,
            slot: text("slot.name"),
            publication: text("publication.name"),
            autocreate,
            snapshot,
            snapshot_fetch_size: values.number("snapshot.fetch.size")?,
            max_batch_size: values.number("max.batch.size")?,
            max_queue_size: values.number("max.queue.size")?,
            poll_interval_ms: values.number("poll.interval.ms")?,
            status_update_interval_ms: values.number("status.update.interval.ms")?,
            slot_max_retries: values.number("slot.max.retries")?,
            slot_retry_delay_ms: values.number("slot.retry.delay.ms")?,
            replication: Replication {
                host,
                port,
                user,
                password,
            },
        })
    }
}
