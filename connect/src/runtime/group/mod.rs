//! The worker group of distributed mode (`runnel connect distributed`, `../../distributed.rs`):
//! workers with the same `group.id` share connectors and tasks.
//! Configs, source offsets and statuses live in three compacted topics that every
//! worker reads; the group protocol (`protocol_type = "connect"`) elects a leader that
//! assigns connectors and tasks round robin, and a worker that dies or leaves has its
//! work moved to the living by the next rebalance.
//!
//! Layout: [`membership`] (the group client), [`assignment`] (payloads and the leader's
//! assignment), [`configs`] and [`status`] (the topics' record formats and the state
//! read from them), [`member_loop`] (join, run what was assigned, heartbeat, rejoin).

pub mod assignment;
pub mod configs;
pub mod member_loop;
pub mod membership;
pub mod settings;
pub mod status;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use self::configs::ConfigState;
use self::settings::DistributedSettings;
use self::status::StatusState;
use super::config::{self as wconfig, WorkerConfig};
use super::connector_offsets;
use super::exactly_once::SourceSupport;
use super::herder::Herder;
use super::kafka_log::KafkaLog;
use super::offsets::OffsetStore;
use super::task::TargetState;
use super::worker::{ConnectorStatus, TaskRun, TaskView, Worker};
use crate::api::{Config, JsonMap};
use crate::connectors;
use crate::error::{Error, Result};

/// Kafka's herder executor timeout with the default settings: `worker.sync.timeout.ms`
/// (3 s) + `task.shutdown.graceful.timeout.ms` (5 s) + the connector's graceful
/// shutdown (5 s) + 1 s.
pub const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(14);

/// What runs on this worker.
#[derive(Default)]
pub(crate) struct Local {
    pub connectors: Vec<String>,
    pub tasks: BTreeMap<(String, usize), TaskRun>,
    /// Assigned tasks that are not running because their connector is STOPPED.
    pub idle: Vec<(String, usize)>,
    /// Assigned exactly-once source tasks waiting for their connector's owner to fence
    /// the previous task generation.
    pub awaiting_fencing: Vec<(String, usize)>,
    pub failures: BTreeMap<String, String>,
    /// Status records last written, so only changes are written.
    pub published: BTreeMap<String, Vec<u8>>,
}

pub struct DistributedHerder {
    worker: Arc<Worker>,
    settings: DistributedSettings,
    configs: Arc<Mutex<ConfigState>>,
    config_log: KafkaLog,
    statuses: Arc<Mutex<StatusState>>,
    status_log: KafkaLog,
    local: tokio::sync::Mutex<Local>,
    generation: AtomicI32,
    shutdown: watch::Sender<bool>,
    member: Mutex<Option<JoinHandle<()>>>,
}

use crate::sync::lock;

fn invalid(errors: Vec<(String, String)>) -> Error {
    let n = errors.len();
    let lines: Vec<String> = errors.into_iter().map(|(_, m)| m).collect();
    Error::config(
        "config",
        format!(
            "Connector configuration is invalid and contains the following {n} error(s):\n{}",
            lines.join("\n")
        ),
    )
}

fn kind_of(config: &Config) -> Result<&'static str> {
    Ok(connectors::find(
        config
            .get("connector.class")
            .map(String::as_str)
            .unwrap_or(""),
    )?
    .kind)
}

impl DistributedHerder {
    /// Reads the three topics (creating them if needed), then joins the worker group.
    pub async fn start(config: WorkerConfig) -> Result<Arc<DistributedHerder>> {
        let settings = DistributedSettings::from_props(&config.props)?;
        let mut client = rdkafka::ClientConfig::new();
        client.set("bootstrap.servers", &config.bootstrap_servers);
        let offsets = OffsetStore::open_topic(client.clone(), settings.offsets.clone()).await?;
        let exactly_once_group =
            (settings.exactly_once == SourceSupport::Enabled).then(|| settings.group_id.clone());

        let configs: Arc<Mutex<ConfigState>> = Arc::default();
        let (events_tx, events) = mpsc::unbounded_channel();
        let loaded = Arc::new(AtomicBool::new(false));
        let apply = {
            let (configs, loaded) = (configs.clone(), loaded.clone());
            Box::new(move |offset, k: &[u8], v: Option<&[u8]>| {
                let event = lock(&configs).apply(offset, k, v);
                // History is state, not requests: only records read after start-up act.
                if let Some(e) = event.filter(|_| loaded.load(Ordering::Relaxed)) {
                    let _ = events_tx.send(e);
                }
            })
        };
        let config_log = KafkaLog::start(client.clone(), settings.configs.clone(), apply).await?;
        loaded.store(true, Ordering::Relaxed);

        let statuses: Arc<Mutex<StatusState>> = Arc::default();
        let apply = {
            let statuses = statuses.clone();
            Box::new(move |_, k: &[u8], v: Option<&[u8]>| lock(&statuses).apply(k, v))
        };
        let status_log = KafkaLog::start(client, settings.status.clone(), apply).await?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let herder = Arc::new(DistributedHerder {
            worker: Worker::with_offsets(config, offsets, exactly_once_group),
            settings,
            configs,
            config_log,
            statuses,
            status_log,
            local: tokio::sync::Mutex::new(Local::default()),
            generation: AtomicI32::new(-1),
            shutdown,
            member: Mutex::new(None),
        });
        let handle = tokio::spawn(member_loop::run(herder.clone(), events, shutdown_rx));
        *lock(&herder.member) = Some(handle);
        Ok(herder)
    }

    pub fn worker_id(&self) -> String {
        self.worker.worker_id()
    }

    /// Stops this worker's tasks, writes their final statuses and leaves the group, so
    /// the others take its work over at once. Bounded as Kafka's `DistributedHerder.stop`
    /// bounds it: with the cluster gone those writes never finish, and the worker gives
    /// up on them after [`SHUTDOWN_TIMEOUT`] instead of hanging.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let handle = lock(&self.member).take();
        if let Some(mut h) = handle {
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut h)
                .await
                .is_err()
            {
                tracing::warn!(
                    timeout_ms = SHUTDOWN_TIMEOUT.as_millis() as u64,
                    "graceful shutdown timed out: final statuses and offsets may not be written"
                );
                h.abort();
            }
        }
    }

    fn entry(&self, name: &str) -> Result<configs::ConnectorEntry> {
        lock(&self.configs)
            .live(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    async fn write_config(&self, name: &str, mut config: Config) -> Result<()> {
        config.insert("name".into(), name.to_string());
        let errors = wconfig::validate(&config, self.settings.exactly_once);
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        self.config_log
            .send(
                &configs::connector_key(name),
                Some(&configs::properties_value(&config)),
            )
            .await?;
        self.config_log.read_to_end().await
    }

    async fn send_config(&self, key: &str, value: &[u8]) -> Result<()> {
        self.config_log.send(key, Some(value)).await?;
        self.config_log.read_to_end().await
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        self.entry(name)?;
        self.send_config(&configs::target_key(name), &configs::target_value(target))
            .await
    }
}

#[async_trait]
impl Herder for DistributedHerder {
    fn config(&self) -> &WorkerConfig {
        self.worker.config()
    }

    fn exactly_once_source(&self) -> SourceSupport {
        self.settings.exactly_once
    }

    async fn create(&self, name: &str, config: Config) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::config("name", "a connector needs a name"));
        }
        self.config_log.read_to_end().await?;
        if lock(&self.configs).live(name).is_some() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        self.write_config(name, config).await
    }

    async fn put_config(&self, name: &str, config: Config) -> Result<bool> {
        self.config_log.read_to_end().await?;
        let created = lock(&self.configs).live(name).is_none();
        self.write_config(name, config).await?;
        Ok(created)
    }

    async fn delete(&self, name: &str) -> Result<()> {
        self.config_log.read_to_end().await?;
        let tasks = self.entry(name)?.tasks.len();
        self.config_log
            .send(&configs::target_key(name), None)
            .await?;
        self.config_log
            .send(&configs::connector_key(name), None)
            .await?;
        self.config_log.read_to_end().await?;
        self.status_log
            .send(&status::connector_key(name), None)
            .await?;
        for id in 0..tasks {
            self.status_log
                .send(&status::task_key(name, id), None)
                .await?;
        }
        Ok(())
    }

    async fn names(&self) -> Vec<String> {
        lock(&self.configs).names()
    }

    async fn config_of(&self, name: &str) -> Result<Config> {
        self.entry(name)?
            .config
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    async fn tasks_of(&self, name: &str) -> Result<(&'static str, Vec<Config>)> {
        let entry = self.entry(name)?;
        let kind = kind_of(entry.config.as_ref().unwrap_or(&Config::new()))?;
        Ok((kind, entry.tasks))
    }

    async fn status(&self, name: &str) -> Result<ConnectorStatus> {
        let entry = self.entry(name)?;
        let kind = kind_of(entry.config.as_ref().unwrap_or(&Config::new()))?;
        let statuses = lock(&self.statuses);
        let unassigned = || status::StatusRecord {
            state: "UNASSIGNED".into(),
            trace: None,
            worker_id: String::new(),
            generation: -1,
        };
        let c = statuses
            .connectors
            .get(name)
            .cloned()
            .unwrap_or_else(unassigned);
        let tasks = (0..entry.tasks.len())
            .map(|id| {
                let t = statuses
                    .tasks
                    .get(&(name.to_string(), id))
                    .cloned()
                    .unwrap_or_else(unassigned);
                TaskView {
                    id,
                    state: t.state,
                    trace: t.trace,
                    worker_id: t.worker_id,
                }
            })
            .collect();
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind,
            state: c.state,
            trace: c.trace,
            worker_id: c.worker_id,
            tasks,
        })
    }

    async fn pause(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Paused).await
    }
    async fn resume(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Started).await
    }
    async fn stop(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Stopped).await
    }

    async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<()> {
        self.entry(name)?;
        self.send_config(
            &configs::restart_key(name),
            &configs::restart_value(include_tasks, only_failed),
        )
        .await
    }

    async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        if id >= self.entry(name)?.tasks.len() {
            return Err(Error::NotFound(format!("{name} task {id}")));
        }
        self.send_config(&configs::restart_task_key(name, id), b"{}")
            .await
    }

    async fn offsets(&self, name: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        let entry = self.entry(name)?;
        let config = entry.config.unwrap_or_default();
        let kind = kind_of(&config)?;
        connector_offsets::read(self.worker.shared(), name, kind, &config).await
    }

    async fn set_offsets(
        &self,
        name: &str,
        offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
    ) -> Result<()> {
        self.config_log.read_to_end().await?;
        let entry = self.entry(name)?;
        if entry.target() != TargetState::Stopped {
            return Err(connector_offsets::not_stopped(name));
        }
        let config = entry.config.unwrap_or_default();
        let kind = kind_of(&config)?;
        connector_offsets::alter(self.worker.shared(), name, kind, &config, offsets).await
    }
}
