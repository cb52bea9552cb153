//! Distributed mode's worker settings, with Kafka Connect's names and defaults — except
//! the storage topics' replication factors, which default to -1 (the broker's default)
//! so one broker works without extra settings.

use std::time::Duration;

use crate::api::config_def::{key, ConfigDef, Type, Validator, Values};
use crate::api::Config;
use crate::error::Result;
use crate::runtime::exactly_once::{source_support_key, SourceSupport};
use crate::runtime::kafka_log::LogSpec;

#[derive(Debug, Clone)]
pub struct DistributedSettings {
    pub group_id: String,
    pub configs: LogSpec,
    pub offsets: LogSpec,
    pub status: LogSpec,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    /// `exactly.once.source.support` (KIP-618).
    pub exactly_once: SourceSupport,
}

/// Distributed mode's worker keys (Kafka's `DistributedConfig`).
pub fn definition() -> ConfigDef {
    let topic = |name, default, doc| key(name, Type::String, doc).default(default).high();
    let partitions = |name, default, doc| {
        key(name, Type::Int, doc)
            .default(default)
            .validator(Validator::AtLeast(1))
            .low()
    };
    let replication = |name, doc| key(name, Type::Int, doc).default("-1").low();
    let millis = |name, default, doc| {
        key(name, Type::Int, doc)
            .default(default)
            .validator(Validator::AtLeast(1))
    };
    ConfigDef::new().group(
        "Distributed",
        [
            key(
                "group.id",
                Type::String,
                "The Connect cluster this worker belongs to.",
            )
            .required()
            .validator(Validator::NonEmpty)
            .high(),
            topic("config.storage.topic", "connect-configs", "The topic connector configs are stored in (one partition)."),
            replication("config.storage.replication.factor", "The config topic's replication factor when it is created; -1: the broker's default."),
            topic("offset.storage.topic", "connect-offsets", "The topic source offsets are stored in."),
            partitions("offset.storage.partitions", "25", "The offsets topic's partition count when it is created."),
            replication("offset.storage.replication.factor", "The offsets topic's replication factor when it is created; -1: the broker's default."),
            topic("status.storage.topic", "connect-status", "The topic connector and task statuses are stored in."),
            partitions("status.storage.partitions", "5", "The status topic's partition count when it is created."),
            replication("status.storage.replication.factor", "The status topic's replication factor when it is created; -1: the broker's default."),
            millis("session.timeout.ms", "10000", "How long the group waits for a silent worker before it rebalances its work away."),
            millis("heartbeat.interval.ms", "3000", "How often a worker tells the group it is alive."),
            millis("rebalance.timeout.ms", "60000", "How long workers have to join a rebalance."),
            source_support_key(),
        ],
    )
}

fn spec(v: &Values, prefix: &str) -> Result<LogSpec> {
    Ok(LogSpec {
        topic: v
            .string(&format!("{prefix}.storage.topic"))
            .unwrap_or_default()
            .to_string(),
        // The config log is read in order: one partition, as Kafka Connect insists.
        partitions: if prefix == "config" {
            1
        } else {
            v.number(&format!("{prefix}.storage.partitions"))?
        },
        replication_factor: v.number(&format!("{prefix}.storage.replication.factor"))?,
    })
}

fn millis(v: &Values, key: &str) -> Result<Duration> {
    Ok(Duration::from_millis(v.number(key)?))
}

impl DistributedSettings {
    pub fn from_props(props: &Config) -> Result<DistributedSettings> {
        let v = definition().parse(props)?;
        Ok(DistributedSettings {
            group_id: v.string("group.id").unwrap_or_default().to_string(),
            configs: spec(&v, "config")?,
            offsets: spec(&v, "offset")?,
            status: spec(&v, "status")?,
            session_timeout: millis(&v, "session.timeout.ms")?,
            heartbeat_interval: millis(&v, "heartbeat.interval.ms")?,
            rebalance_timeout: millis(&v, "rebalance.timeout.ms")?,
            exactly_once: SourceSupport::from_props(props)?,
        })
    }
}
