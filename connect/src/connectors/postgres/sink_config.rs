//! PostgresSink's typed config, with Confluent's JDBC sink keys and defaults.

use crate::api::Config;
use crate::error::{Error, Result};

use super::connection::{connection_keys, Connection};
use crate::api::config_def::{key, ConfigDef, Type, Validator};

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

/// The JDBC sink's keys, in Confluent's groups.
pub fn definition() -> ConfigDef {
    ConfigDef::new()
        .group("Connection", connection_keys())
        .group(
            "Writes",
            [
                key(
                    "insert.mode",
                    Type::String,
                    "insert: plain INSERT; upsert: INSERT .. ON CONFLICT DO UPDATE on the primary key; update: UPDATE by the primary key.",
                )
                .default("insert")
                .validator(Validator::OneOf(&["insert", "upsert", "update"]))
                .high(),
                key(
                    "batch.size",
                    Type::Int,
                    "Records to batch together for insertion into the table, when possible.",
                )
                .default("3000")
                .validator(Validator::AtLeast(1)),
                key(
                    "delete.enabled",
                    Type::Boolean,
                    "Whether a tombstone (null value) deletes the row with its key; needs pk.mode=record_key.",
                )
                .default("false"),
            ],
        )
        .group(
            "Data Mapping",
            [
                key(
                    "table.name.format",
                    Type::String,
                    "The destination table's name; ${topic} stands for the record's topic.",
                )
                .default("${topic}"),
                key(
                    "pk.mode",
                    Type::String,
                    "Where the primary key comes from: none, kafka (topic, partition, offset), record_key or record_value.",
                )
                .default("none")
                .validator(Validator::OneOf(&["none", "kafka", "record_key", "record_value"]))
                .high(),
                key(
                    "pk.fields",
                    Type::List,
                    "The primary key's column names; their meaning depends on pk.mode.",
                )
                .default(""),
            ],
        )
        .group(
            "DDL Support",
            [
                key(
                    "auto.create",
                    Type::Boolean,
                    "Whether to create a missing destination table (CREATE TABLE) from the record's schema.",
                )
                .default("false"),
                key(
                    "auto.evolve",
                    Type::Boolean,
                    "Whether to add columns (ALTER TABLE) the record's schema has and the table lacks.",
                )
                .default("false"),
            ],
        )
        .group(
            "Retries",
            [
                key(
                    "max.retries",
                    Type::Int,
                    "How often to retry a failed write before the task fails.",
                )
                .default("10")
                .validator(Validator::AtLeast(0)),
                key(
                    "retry.backoff.ms",
                    Type::Int,
                    "The time to wait after an error before a retry, in milliseconds.",
                )
                .default("3000")
                .validator(Validator::AtLeast(0)),
            ],
        )
}

impl SinkConfig {
    pub fn parse(config: &Config) -> Result<SinkConfig> {
        let values = definition().parse(config)?;
        let insert_mode = match values.lowercase("insert.mode").as_deref() {
            Some("upsert") => InsertMode::Upsert,
            Some("update") => InsertMode::Update,
            _ => InsertMode::Insert,
        };
        let pk_mode = match values.lowercase("pk.mode").as_deref() {
            Some("kafka") => PkMode::Kafka,
            Some("record_key") => PkMode::RecordKey,
            Some("record_value") => PkMode::RecordValue,
            _ => PkMode::None,
        };
        let mut pk_fields = values.list("pk.fields").to_vec();
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
        let delete_enabled = values.boolean("delete.enabled");
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
        Ok(SinkConfig {
            connection: Connection::from_values(&values)?,
            insert_mode,
            pk_mode,
            pk_fields,
            delete_enabled,
            auto_create: values.boolean("auto.create"),
            auto_evolve: values.boolean("auto.evolve"),
            table_name_format: values
                .string("table.name.format")
                .unwrap_or_default()
                .to_string(),
            batch_size: values.number("batch.size")?,
            max_retries: values.number("max.retries")?,
            retry_backoff_ms: values.number("retry.backoff.ms")?,
        })
    }

    pub fn table_for(&self, topic: &str) -> String {
        self.table_name_format.replace("${topic}", topic)
    }
}
