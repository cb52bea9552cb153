//! Distributed mode's worker settings, with Kafka Connect's names and defaults — except
//! the storage topics' replication factors, which default to -1 (the broker's default)
//! so one broker works without extra settings.

use std::time::Duration;

use crate::api::config_values::number;
use crate::api::Config;
use crate::error::{Error, Result};
use crate::runtime::exactly_once::SourceSupport;
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

fn spec(props: &Config, prefix: &str, topic: &str, partitions: i64) -> Result<LogSpec> {
    let partitions = if prefix == "config" {
        // The config log is read in order: one partition, as Kafka Connect insists.
        1
    } else {
        number(props, &format!("{prefix}.storage.partitions"), partitions)?
    };
    if partitions < 1 {
        return Err(Error::config(
            &format!("{prefix}.storage.partitions"),
            "must be at least 1",
        ));
    }
    Ok(LogSpec {
        topic: props
            .get(&format!("{prefix}.storage.topic"))
            .cloned()
            .unwrap_or_else(|| topic.to_string()),
        partitions: partitions as i32,
        replication_factor: number(props, &format!("{prefix}.storage.replication.factor"), -1)?
            as i32,
    })
}

fn millis(props: &Config, key: &str, default: i64) -> Result<Duration> {
    let v = number(props, key, default)?;
    if v <= 0 {
        return Err(Error::config(key, format!("{v} must be positive")));
    }
    Ok(Duration::from_millis(v as u64))
}

impl DistributedSettings {
    pub fn from_props(props: &Config) -> Result<DistributedSettings> {
        let group_id = props
            .get("group.id")
            .filter(|g| !g.trim().is_empty())
            .cloned()
            .ok_or_else(|| Error::MissingConfig("group.id".into()))?;
        Ok(DistributedSettings {
            group_id,
            configs: spec(props, "config", "connect-configs", 1)?,
            offsets: spec(props, "offset", "connect-offsets", 25)?,
            status: spec(props, "status", "connect-status", 5)?,
            session_timeout: millis(props, "session.timeout.ms", 10_000)?,
            heartbeat_interval: millis(props, "heartbeat.interval.ms", 3_000)?,
            rebalance_timeout: millis(props, "rebalance.timeout.ms", 60_000)?,
            exactly_once: SourceSupport::from_props(props)?,
        })
    }
}
