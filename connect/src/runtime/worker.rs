//! The worker: runs connectors and their tasks, and answers what the REST API asks —
//! create, reconfigure, pause, resume, stop, restart, delete, status and offsets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{self, WorkerConfig};
use super::offsets::OffsetStore;
use super::task::{State, TargetState, TaskCtx, TaskStatus};
use super::{sink, source};
use crate::api::{Config, JsonMap};
use crate::connectors::{self, Connector};
use crate::error::{Error, Result};

/// What tasks share with the worker.
pub struct WorkerShared {
    pub config: WorkerConfig,
    pub offsets: OffsetStore,
}

struct TaskRun {
    config: Config,
    status: Arc<Mutex<TaskStatus>>,
    target: watch::Sender<TargetState>,
    handle: Option<JoinHandle<()>>,
}

struct ConnectorRun {
    config: Config,
    kind: &'static str,
    target: TargetState,
    failure: Option<String>,
    tasks: Vec<TaskRun>,
}

/// A connector's status, as GET /connectors/{name}/status shows it.
#[derive(Debug, Clone)]
pub struct ConnectorStatus {
    pub name: String,
    pub kind: &'static str,
    pub state: String,
    pub trace: Option<String>,
    pub tasks: Vec<(usize, String, Option<String>)>,
}

pub struct Worker {
    shared: Arc<WorkerShared>,
    connectors: tokio::sync::Mutex<BTreeMap<String, ConnectorRun>>,
}

/// How long a stopping task may take before it is abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

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

impl Worker {
    pub fn new(config: WorkerConfig) -> Result<Arc<Worker>> {
        let offsets = OffsetStore::open(config.offset_storage_file.clone())?;
        Ok(Arc::new(Worker {
            shared: Arc::new(WorkerShared { config, offsets }),
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
        }))
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.shared.config
    }

    pub fn worker_id(&self) -> String {
        self.shared.config.worker_id()
    }

    fn spawn_task(
        &self,
        name: &str,
        id: usize,
        config: Config,
        connector: &Connector,
        initial: TargetState,
    ) -> TaskRun {
        let (tx, rx) = watch::channel(initial);
        let status = Arc::new(Mutex::new(TaskStatus {
            state: State::Running,
            trace: None,
        }));
        let ctx = TaskCtx {
            connector: name.to_string(),
            id,
            config: config.clone(),
            worker: self.shared.clone(),
            target: rx,
            status: status.clone(),
        };
        let handle = match connector {
            Connector::Source(c) => tokio::spawn(source::run(ctx, c.clone())),
            Connector::Sink(c) => tokio::spawn(sink::run(ctx, c.clone())),
        };
        TaskRun {
            config,
            status,
            target: tx,
            handle: Some(handle),
        }
    }

    fn start_tasks(&self, name: &str, run: &mut ConnectorRun) -> Result<()> {
        let class = run
            .config
            .get("connector.class")
            .cloned()
            .unwrap_or_default();
        let connector = connectors::find(&class)?.instantiate();
        let max = config::tasks_max(&run.config);
        let task_configs = match &connector {
            Connector::Source(c) => c.task_configs(&run.config, max)?,
            Connector::Sink(c) => c.task_configs(&run.config, max)?,
        };
        let initial = if run.target == TargetState::Paused {
            TargetState::Paused
        } else {
            TargetState::Started
        };
        for (id, task_config) in task_configs.into_iter().enumerate().take(max) {
            let task = self.spawn_task(name, id, task_config, &connector, initial);
            run.tasks.push(task);
        }
        Ok(())
    }

    async fn stop_tasks(run: &mut ConnectorRun) {
        for t in &run.tasks {
            let _ = t.target.send(TargetState::Stopped);
        }
        for t in &mut run.tasks {
            if let Some(h) = t.handle.take() {
                if tokio::time::timeout(STOP_TIMEOUT, h).await.is_err() {
                    tracing::warn!("a task did not stop within {STOP_TIMEOUT:?}");
                }
            }
        }
        run.tasks.clear();
    }

    /// Creates a connector; `Err(AlreadyExists)` if the name is taken.
    pub async fn create(&self, name: &str, mut config: Config) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::config("name", "a connector needs a name"));
        }
        config.insert("name".into(), name.to_string());
        let errors = config::validate(&config);
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        let mut connectors = self.connectors.lock().await;
        if connectors.contains_key(name) {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let kind = connectors::find(
            config
                .get("connector.class")
                .map(String::as_str)
                .unwrap_or(""),
        )?
        .kind;
        let mut run = ConnectorRun {
            config,
            kind,
            target: TargetState::Started,
            failure: None,
            tasks: Vec::new(),
        };
        if let Err(e) = self.start_tasks(name, &mut run) {
            run.failure = Some(e.to_string());
        }
        tracing::info!(connector = name, "connector created");
        connectors.insert(name.to_string(), run);
        Ok(())
    }

    /// PUT /connectors/{name}/config: creates or reconfigures; true when created.
    pub async fn put_config(&self, name: &str, config: Config) -> Result<bool> {
        if !self.connectors.lock().await.contains_key(name) {
            self.create(name, config).await?;
            return Ok(true);
        }
        let mut config = config;
        config.insert("name".into(), name.to_string());
        let errors = config::validate(&config);
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        let mut connectors = self.connectors.lock().await;
        let run = connectors
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        Self::stop_tasks(run).await;
        run.config = config;
        run.failure = None;
        if run.target != TargetState::Stopped {
            if let Err(e) = self.start_tasks(name, run) {
                run.failure = Some(e.to_string());
            }
        }
        Ok(false)
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut run = self
            .connectors
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        Self::stop_tasks(&mut run).await;
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    pub async fn config_of(&self, name: &str) -> Result<Config> {
        self.connectors
            .lock()
            .await
            .get(name)
            .map(|r| r.config.clone())
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// (kind, task configs)
    pub async fn tasks_of(&self, name: &str) -> Result<(&'static str, Vec<Config>)> {
        let connectors = self.connectors.lock().await;
        let run = connectors
            .get(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        Ok((
            run.kind,
            run.tasks.iter().map(|t| t.config.clone()).collect(),
        ))
    }

    pub async fn status(&self, name: &str) -> Result<ConnectorStatus> {
        let connectors = self.connectors.lock().await;
        let run = connectors
            .get(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let state = match (&run.failure, run.target) {
            (Some(_), _) => "FAILED",
            (None, TargetState::Started) => "RUNNING",
            (None, TargetState::Paused) => "PAUSED",
            (None, TargetState::Stopped) => "STOPPED",
        };
        let tasks = run
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let s = t.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                (i, s.state.name().to_string(), s.trace)
            })
            .collect();
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind: run.kind,
            state: state.to_string(),
            trace: run.failure.clone(),
            tasks,
        })
    }

    async fn set_target(&self, name: &str, target: TargetState) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let run = connectors
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let was = run.target;
        run.target = target;
        match target {
            TargetState::Stopped => Self::stop_tasks(run).await,
            _ if was == TargetState::Stopped => {
                if let Err(e) = self.start_tasks(name, run) {
                    run.failure = Some(e.to_string());
                }
            }
            _ => {
                for t in &run.tasks {
                    let _ = t.target.send(target);
                }
            }
        }
        Ok(())
    }

    pub async fn pause(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Paused).await
    }
    pub async fn resume(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Started).await
    }
    pub async fn stop(&self, name: &str) -> Result<()> {
        self.set_target(name, TargetState::Stopped).await
    }

    /// Restarts the connector, and with `include_tasks` its tasks (only the failed ones
    /// with `only_failed`). Tasks resume from the committed offsets.
    pub async fn restart(&self, name: &str, include_tasks: bool, only_failed: bool) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let run = connectors
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        if run.target == TargetState::Stopped {
            return Ok(());
        }
        let any_failed = run
            .tasks
            .iter()
            .any(|t| t.status.lock().unwrap_or_else(|p| p.into_inner()).state == State::Failed);
        let connector_failed = run.failure.is_some();
        let restart = if only_failed {
            connector_failed || (include_tasks && any_failed)
        } else {
            true
        };
        if restart && (include_tasks || connector_failed || run.tasks.is_empty()) {
            Self::stop_tasks(run).await;
            run.failure = None;
            if let Err(e) = self.start_tasks(name, run) {
                run.failure = Some(e.to_string());
            }
        }
        Ok(())
    }

    /// Restarts one task; it resumes from the committed offsets.
    pub async fn restart_task(&self, name: &str, id: usize) -> Result<()> {
        let mut connectors = self.connectors.lock().await;
        let run = connectors
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        if id >= run.tasks.len() {
            return Err(Error::NotFound(format!("{name} task {id}")));
        }
        let class = run
            .config
            .get("connector.class")
            .cloned()
            .unwrap_or_default();
        let connector = connectors::find(&class)?.instantiate();
        let old = &mut run.tasks[id];
        let _ = old.target.send(TargetState::Stopped);
        if let Some(h) = old.handle.take() {
            if tokio::time::timeout(STOP_TIMEOUT, h).await.is_err() {
                tracing::warn!(
                    connector = name,
                    task = id,
                    "the task did not stop within {STOP_TIMEOUT:?}"
                );
            }
        }
        let initial = if run.target == TargetState::Paused {
            TargetState::Paused
        } else {
            TargetState::Started
        };
        let config = run.tasks[id].config.clone();
        run.tasks[id] = self.spawn_task(name, id, config, &connector, initial);
        Ok(())
    }

    /// Committed offsets: source partitions from the offset store; sink partitions from
    /// the consumer group `connect-<name>`.
    pub async fn offsets(&self, name: &str) -> Result<Vec<(JsonMap, JsonMap)>> {
        let (kind, config) = {
            let connectors = self.connectors.lock().await;
            let run = connectors
                .get(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            (run.kind, run.config.clone())
        };
        if kind == "source" {
            return Ok(self.shared.offsets.for_connector(name));
        }
        let consumer = self.group_client(name)?;
        let topics = crate::transforms::list(&config, "topics");
        let out = tokio::task::spawn_blocking(move || -> Result<Vec<(JsonMap, JsonMap)>> {
            let mut tpl = TopicPartitionList::new();
            for t in &topics {
                let md = consumer.fetch_metadata(Some(t), Duration::from_secs(10))?;
                for mt in md.topics() {
                    for p in mt.partitions() {
                        tpl.add_partition(t, p.id());
                    }
                }
            }
            let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => {
                        let p = json!({"kafka_topic": e.topic(), "kafka_partition": e.partition()});
                        let v = json!({"kafka_offset": o});
                        Some((p.as_object()?.clone(), v.as_object()?.clone()))
                    }
                    _ => None,
                })
                .collect())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        Ok(out)
    }

    fn group_client(&self, name: &str) -> Result<BaseConsumer> {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.shared.config.bootstrap_servers)
            .set("group.id", sink::group_id(name))
            .set("enable.auto.commit", "false");
        Ok(c.create()?)
    }

    /// KIP-875: alter (`Some`) or reset (`None`) offsets; the connector must be STOPPED.
    pub async fn set_offsets(
        &self,
        name: &str,
        offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
    ) -> Result<()> {
        let kind = {
            let connectors = self.connectors.lock().await;
            let run = connectors
                .get(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            if run.target != TargetState::Stopped {
                return Err(Error::config("state", "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/".to_string() + name + "/stop' endpoint"));
            }
            run.kind
        };
        if kind == "source" {
            let updates = match offsets {
                Some(list) => list,
                None => self
                    .shared
                    .offsets
                    .for_connector(name)
                    .into_iter()
                    .map(|(p, _)| (p, None))
                    .collect(),
            };
            return self.shared.offsets.commit(name, updates);
        }
        let consumer = self.group_client(name)?;
        let current = self.offsets(name).await?;
        let list = offsets.unwrap_or_else(|| current.into_iter().map(|(p, _)| (p, None)).collect());
        tokio::task::spawn_blocking(move || -> Result<()> {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in list {
                let topic = p
                    .get("kafka_topic")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| {
                        Error::config("offsets", "a sink partition needs kafka_topic")
                    })?;
                let partition = p
                    .get("kafka_partition")
                    .and_then(|v| v.as_i64())
                    .ok_or_else(|| {
                        Error::config("offsets", "a sink partition needs kafka_partition")
                    })?;
                let offset = match o {
                    Some(o) => o
                        .get("kafka_offset")
                        .and_then(|v| v.as_i64())
                        .ok_or_else(|| {
                            Error::config("offsets", "a sink offset needs kafka_offset")
                        })?,
                    // Reset: back to the start; the group re-reads from auto.offset.reset=earliest.
                    None => 0,
                };
                tpl.add_partition_offset(topic, partition as i32, Offset::Offset(offset))?;
            }
            if tpl.count() > 0 {
                consumer.commit(&tpl, CommitMode::Sync)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Stops every connector (tasks commit what they have).
    pub async fn shutdown(&self) {
        let mut connectors = self.connectors.lock().await;
        for run in connectors.values_mut() {
            Self::stop_tasks(run).await;
        }
        connectors.clear();
    }
}
