//! What the REST API asks of a worker, whichever mode it runs in — Kafka Connect's
//! Herder. Standalone: [`Worker`] answers from its own state. Distributed:
//! [`DistributedHerder`](super::group::DistributedHerder) answers from the config
//! and status topics every worker shares.

use async_trait::async_trait;

use super::config::WorkerConfig;
use super::exactly_once::SourceSupport;
use super::worker::{ConnectorStatus, Worker};
use crate::api::{Config, JsonMap};
use crate::error::Result;

#[async_trait]
pub trait Herder: Send + Sync {
    fn config(&self) -> &WorkerConfig;
    /// The worker's `exactly.once.source.support`; standalone workers have none.
    fn exactly_once_source(&self) -> SourceSupport {
        SourceSupport::Disabled
    }
    /// Creates a connector; `Err(AlreadyExists)` if the name is taken.
    async fn create(&self, name: &str, config: Config) -> Result<()>;
    /// Creates or reconfigures; true when created.
    async fn put_config(&self, name: &str, config: Config) -> Result<bool>;
    async fn delete(&self, name: &str) -> Result<()>;
    async fn names(&self) -> Vec<String>;
    async fn config_of(&self, name: &str) -> Result<Config>;
    /// The connector's kind ("source" or "sink") and its task configs.
    async fn tasks_of(&self, name: &str) -> Result<(&'static str, Vec<Config>)>;
    async fn status(&self, name: &str) -> Result<ConnectorStatus>;
    async fn pause(&self, name: &str) -> Result<()>;
    async fn resume(&self, name: &str) -> Result<()>;
    async fn stop(&self, name: &str) -> Result<()>;
    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<()>;
    async fn restart_task(&self, name: &str, id: usize) -> Result<()>;
    async fn offsets(&self, name: &str) -> Result<Vec<(JsonMap, JsonMap)>>;
    /// KIP-875: alter (`Some`) or reset (`None`); the connector must be STOPPED.
    async fn set_offsets(
        &self,
        name: &str,
        offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
    ) -> Result<()>;
}

#[async_trait]
impl Herder for Worker {
    fn config(&self) -> &WorkerConfig {
        Worker::config(self)
    }
    async fn create(&self, name: &str, config: Config) -> Result<()> {
        Worker::create(self, name, config).await
    }
    async fn put_config(&self, name: &str, config: Config) -> Result<bool> {
        Worker::put_config(self, name, config).await
    }
    async fn delete(&self, name: &str) -> Result<()> {
        Worker::delete(self, name).await
    }
    async fn names(&self) -> Vec<String> {
        Worker::names(self).await
    }
    async fn config_of(&self, name: &str) -> Result<Config> {
        Worker::config_of(self, name).await
    }
    async fn tasks_of(&self, name: &str) -> Result<(&'static str, Vec<Config>)> {
        Worker::tasks_of(self, name).await
    }
    async fn status(&self, name: &str) -> Result<ConnectorStatus> {
        Worker::status(self, name).await
    }
    async fn pause(&self, name: &str) -> Result<()> {
        Worker::pause(self, name).await
    }
    async fn resume(&self, name: &str) -> Result<()> {
        Worker::resume(self, name).await
    }
    async fn stop(&self, name: &str) -> Result<()> {
        Worker::stop(self, name).await
    }
    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<()> {
        Worker::restart(self, name, include_tasks, only_failed).await
    }
    async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        Worker::restart_task(self, name, id).await
    }
    async fn offsets(&self, name: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        Worker::offsets(self, name).await
    }
    async fn set_offsets(
        &self,
        name: &str,
        offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
    ) -> Result<()> {
        Worker::set_offsets(self, name, offsets).await
    }
}
