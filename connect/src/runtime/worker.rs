//! The worker: runs connectors and their tasks, and answers what the REST API asks —
//! create, reconfigure, pause, resume, stop, restart, delete, status and offsets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{self, WorkerConfig};
use super::exactly_once::SourceSupport;
use super::offsets::OffsetStore;
use super::task::{State, TargetState, TaskCtx, TaskStatus};
use super::{connector_offsets, sink, source};
use crate::api::{Config, JsonMap};
use crate::connectors::{self, Connector};
use crate::error::{Error, Result};

/// What tasks share with the worker.
pub struct WorkerShared {
    pub config: WorkerConfig,
    pub offsets: OffsetStore,
    /// The group id when source tasks run exactly once (distributed mode with
    /// `exactly.once.source.support=enabled`): their transactional ids start with it.
    pub exactly_once_group: Option<String>,
}

/// A running task, as the worker holds it.
pub(crate) struct TaskRun {
    pub config: Config,
    pub status: Arc<Mutex<TaskStatus>>,
    pub target: watch::Sender<TargetState>,
    pub handle: Option<JoinHandle<()>>,
}

impl TaskRun {
    pub fn status(&self) -> TaskStatus {
        crate::sync::lock(&self.status).clone()
    }

    /// Asks the task to stop and waits for it (at most [`STOP_TIMEOUT`]).
    pub async fn stop(&mut self) {
        let _ = self.target.send(TargetState::Stopped);
        if let Some(h) = self.handle.take() {
            if tokio::time::timeout(STOP_TIMEOUT, h).await.is_err() {
                tracing::warn!("a task did not stop within {STOP_TIMEOUT:?}");
            }
        }
    }
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
    /// The worker running the connector.
    pub worker_id: String,
    pub tasks: Vec<TaskView>,
}

/// One task's status, as GET /connectors/{name}/tasks/{id}/status shows it.
#[derive(Debug, Clone)]
pub struct TaskView {
    pub id: usize,
    pub state: String,
    pub trace: Option<String>,
    pub worker_id: String,
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
    /// A standalone worker: source offsets in `offset.storage.file.filename`.
    pub fn new(config: WorkerConfig) -> Result<Arc<Worker>> {
        let offsets = OffsetStore::open(config.offset_storage_file.clone())?;
        Ok(Worker::with_offsets(config, offsets, None))
    }

    /// A worker keeping source offsets in the given store; with `exactly_once_group`,
    /// its source tasks are transactional.
    pub fn with_offsets(
        config: WorkerConfig,
        offsets: OffsetStore,
        exactly_once_group: Option<String>,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            shared: Arc::new(WorkerShared {
                config,
                offsets,
                exactly_once_group,
            }),
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<WorkerShared> {
        &self.shared
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.shared.config
    }

    pub fn worker_id(&self) -> String {
        self.shared.config.worker_id()
    }

    pub(crate) fn spawn_task(
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
            t.stop().await;
        }
        run.tasks.clear();
    }

    /// Creates a connector; `Err(AlreadyExists)` if the name is taken.
    pub async fn create(&self, name: &str, mut config: Config) -> Result<()> {
        if name.trim().is_empty() {
            return Err(Error::config("name", "a connector needs a name"));
        }
        config.insert("name".into(), name.to_string());
        let errors = config::validate(&config, SourceSupport::Disabled);
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
        let errors = config::validate(&config, SourceSupport::Disabled);
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
        let worker_id = self.worker_id();
        let tasks = run
            .tasks
            .iter()
            .enumerate()
            .map(|(id, t)| {
                let s = t.status();
                TaskView {
                    id,
                    state: s.state.name().to_string(),
                    trace: s.trace,
                    worker_id: worker_id.clone(),
                }
            })
            .collect();
        Ok(ConnectorStatus {
            name: name.to_string(),
            kind: run.kind,
            state: state.to_string(),
            trace: run.failure.clone(),
            worker_id,
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
        let any_failed = run.tasks.iter().any(|t| t.status().state == State::Failed);
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
        run.tasks[id].stop().await;
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
        connector_offsets::read(&self.shared, name, kind, &config).await
    }

    /// KIP-875: alter (`Some`) or reset (`None`) offsets; the connector must be STOPPED.
    pub async fn set_offsets(
        &self,
        name: &str,
        offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
    ) -> Result<()> {
        let (kind, config) = {
            let connectors = self.connectors.lock().await;
            let run = connectors
                .get(name)
                .ok_or_else(|| Error::NotFound(name.to_string()))?;
            if run.target != TargetState::Stopped {
                return Err(connector_offsets::not_stopped(name));
            }
            (run.kind, run.config.clone())
        };
        connector_offsets::alter(&self.shared, name, kind, &config, offsets).await
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
