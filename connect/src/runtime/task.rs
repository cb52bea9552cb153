//! What every task shares with the worker: its identity, the target state the worker
//! sets (started, paused, stopped) and the status it reports.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::worker::WorkerShared;
use crate::api::Config;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TaskStatus {
    pub state: State,
    pub trace: Option<String>,
}

const MAX_POLL_RECORDS: &str = "max.poll.records";

pub struct TaskCtx {
    pub connector: String,
    pub id: usize,
    pub config: Config,
    pub worker: Arc<WorkerShared>,
    pub target: watch::Receiver<TargetState>,
    pub status: Arc<Mutex<TaskStatus>>,
}

impl TaskCtx {
    pub fn set_state(&self, state: State) {
        let mut s = crate::sync::lock(&self.status);
        if s.state != State::Failed {
            s.state = state;
        }
    }

    pub fn target(&self) -> TargetState {
        *self.target.borrow()
    }

    /// Records how the task ended: a failure goes to FAILED with its trace.
    pub fn finish(&self, result: Result<()>) {
        let mut s = crate::sync::lock(&self.status);
        match result {
            Ok(()) => s.state = State::Unassigned,
            Err(e) => {
                tracing::error!(connector = %self.connector, task = self.id, error = %e, "task failed");
                s.state = State::Failed;
                s.trace = Some(format!(
                    "org.apache.kafka.connect.errors.ConnectException: {e}"
                ));
            }
        }
    }

    /// Producer/consumer properties: worker `producer.`/`consumer.` keys, then the
    /// connector's `producer.override.`/`consumer.override.` keys.
    pub fn client_config(&self, kind: &str) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.worker.config.bootstrap_servers);
        let worker = super::config::with_prefix(&self.worker.config.props, &format!("{kind}."));
        let task = super::config::with_prefix(&self.config, &format!("{kind}.override."));
        // max.poll.records is the Java consumer's, read by the sink loop: librdkafka
        // refuses keys it does not know.
        for (k, v) in worker.into_iter().chain(task) {
            if k != MAX_POLL_RECORDS {
                c.set(k, v);
            }
        }
        c
    }

    /// Records handed to a sink's `put` at most at once: Kafka's `max.poll.records`
    /// (default 500), from `consumer.override.` or the worker's `consumer.` settings.
    pub fn max_poll_records(&self) -> Result<usize> {
        let key = format!("consumer.override.{MAX_POLL_RECORDS}");
        let value = self.config.get(&key).or_else(|| {
            self.worker
                .config
                .props
                .get(&format!("consumer.{MAX_POLL_RECORDS}"))
        });
        match value {
            None => Ok(500),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::config(&key, format!("{v} is not a number of at least 1"))),
        }
    }
}
