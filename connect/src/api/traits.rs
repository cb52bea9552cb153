//! The connector traits: a connector validates its config and splits work into task
//! configs; tasks move the data.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::config_def::ConfigDef;
use super::record::{JsonMap, SinkRecord, SourceRecord};
use crate::error::Result;

/// Flat string configs, as Kafka Connect passes them.
pub type Config = BTreeMap<String, String>;

/// Lets a source task read the offsets committed for its partitions.
pub trait OffsetReader: Send + Sync {
    fn offset(&self, partition: &JsonMap) -> Option<JsonMap>;
}

/// Whether a source connector delivers exactly once when its records and offsets are
/// committed in one transaction (KIP-618's `SourceConnector.exactlyOnceSupport`): a
/// connector supports it when, restarted from its last committed offset, it emits
/// exactly what followed that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExactlyOnceSupport {
    Supported,
    Unsupported,
}

#[async_trait]
pub trait SourceConnector: Send + Sync {
    /// The connector's own keys (Kafka's `Connector.config()`).
    fn config_def(&self) -> ConfigDef;
    /// Checks the connector config, the checks across keys included; errors name the
    /// field.
    fn validate(&self, config: &Config) -> Result<()>;
    /// At most `max_tasks` task configs.
    fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>>;
    fn create_task(&self) -> Box<dyn SourceTask>;
    /// Exactly-once support with this config; `None`: the connector does not say, so
    /// `exactly.once.support=required` is refused (Kafka's preflight check).
    fn exactly_once_support(&self, _config: &Config) -> Option<ExactlyOnceSupport> {
        None
    }
}

#[async_trait]
pub trait SourceTask: Send {
    async fn start(&mut self, config: &Config, offsets: &dyn OffsetReader) -> Result<()>;
    /// Records available now (possibly none); the runtime calls again.
    async fn poll(&mut self) -> Result<Vec<SourceRecord>>;
    /// Called after offsets were committed, with the latest committed offset per source
    /// partition (possibly none): every record up to those was acknowledged by the
    /// broker. Kafka Connect's `SourceTask.commit()`; a source that confirms reads to
    /// its origin (a replication slot) does it here.
    async fn commit(&mut self, _committed: &[(JsonMap, JsonMap)]) -> Result<()> {
        Ok(())
    }
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
pub trait SinkConnector: Send + Sync {
    fn config_def(&self) -> ConfigDef;
    fn validate(&self, config: &Config) -> Result<()>;
    fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>>;
    fn create_task(&self) -> Box<dyn SinkTask>;
}

#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self, config: &Config) -> Result<()>;
    /// The records, borrowed: a put that failed retriably is called again with them.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<()>;
    /// Makes everything put so far durable; offsets are committed only after this.
    async fn flush(&mut self) -> Result<()>;
    async fn stop(&mut self) -> Result<()> {
        Ok(())
    }
}
