//! PostgresSink's typed config, with Confluent's JDBC sink keys and defaults.

use crate::api::Config;
use crate::error::{Error, Result};

use super::connection::Connection;
use crate::api::config_values::{flag, list, number};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub connection: Connection,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub delete_enabled: bool,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub table_name_format: String,
    pub batch_size: usize,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
}

pub const SINK_KEYS: &[&str] = &[
    "connection.url",
    "connection.user",
    "connection.password",
    "insert.mode",
    "pk.mode",
    "pk.fields",
    "delete.enabled",
    "auto.create",
    "auto.evolve",
    "table.name.format",
    "batch.size",
    "max.retries",
    "retry.backoff.ms",
    "dialect.name",
];

impl SinkConfig {
    pub fn parse(config: &Config) -> Result<SinkConfig> {
        let insert_mode = match config
            .get("insert.mode")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("insert") => InsertMode::Insert,
            Some("upsert") => InsertMode::Upsert,
            Some("update") => InsertMode::Update,
            Some(other) => {
                return Err(Error::config(
                    "insert.mode",
                    format!("{other} is not one of insert, upsert, update"),
                ))
            }
        };
        let pk_mode = match config
            .get("pk.mode")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => PkMode::None,
            Some("kafka") => PkMode::Kafka,
            Some("record_key") => PkMode::RecordKey,
            Some("record_value") => PkMode::RecordValue,
            Some(other) => {
                return Err(Error::config(
                    "pk.mode",
                    format!("{other} is not one of none, kafka, record_key, record_value"),
                ))
            }
        };
        let mut pk_fields = list(config, "pk.fields");
        if pk_mode == PkMode::Kafka && pk_fields.is_empty() {
            pk_fields = vec![
                "__connect_topic".into(),
                "__connect_partition".into(),
                "__connect_offset".into(),
            ];
        }
        if pk_mode == PkMode::Kafka && pk_fields.len() != 3 {
            return Err(Error::config(
                "pk.fields",
                "pk.mode=kafka takes exactly three names (topic, partition, offset)",
            ));
        }
        let delete_enabled = flag(config, "delete.enabled")?;
        if delete_enabled && pk_mode != PkMode::RecordKey {
            return Err(Error::config(
                "delete.enabled",
                "delete.enabled=true requires pk.mode=record_key",
            ));
        }
        if insert_mode != InsertMode::Insert && pk_mode == PkMode::None {
            return Err(Error::config(
                "pk.mode",
                "insert.mode upsert and update need a primary key: set pk.mode",
            ));
        }
        let batch_size: usize = number(config, "batch.size", 3000)?;
        if batch_size == 0 {
            return Err(Error::config("batch.size", "must be at least 1"));
        }
        Ok(SinkConfig {
            connection: Connection::parse(config)?,
            insert_mode,
            pk_mode,
            pk_fields,
            delete_enabled,
            auto_create: flag(config, "auto.create")?,
            auto_evolve: flag(config, "auto.evolve")?,
            table_name_format: config
                .get("table.name.format")
                .cloned()
                .unwrap_or_else(|| "${topic}".into()),
            batch_size,
            max_retries: number(config, "max.retries", 10)?,
            retry_backoff_ms: number(config, "retry.backoff.ms", 3000)?,
        })
    }

    pub fn table_for(&self, topic: &str) -> String {
        self.table_name_format.replace("${topic}", topic)
    }
}
