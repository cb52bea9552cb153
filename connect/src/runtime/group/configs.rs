//! The connector configs every worker reads from `config.storage.topic`, in Kafka
//! Connect's record formats: `connector-<name>` {"properties"}, `task-<name>-<n>`
//! {"properties"}, `commit-<name>` {"tasks"}, `target-state-<name>` {"state",
//! "state.v2"}, `restart-connector-<name>` {"include-tasks", "only-failed"} — and
//! `tasks-fencing-<name>` {"task-count"} (KIP-618: the previous task set is fenced) —
//! and `restart-task-<name>-<n>`, Runnel's own, for one task's restart.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::api::Config;
use crate::runtime::task::TargetState;

/// What a worker does about a record it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEvent {
    /// Connectors or their task sets changed: the group rebalances.
    Rebalance,
    /// A connector's target state changed: its tasks follow where they run.
    Target(String),
    RestartConnector {
        name: String,
        include_tasks: bool,
        only_failed: bool,
    },
    RestartTask(String, usize),
    /// The connector's previous task generation was fenced: its tasks may start.
    Fenced(String),
}

#[derive(Debug, Clone, Default)]
pub struct ConnectorEntry {
    pub config: Option<Config>,
    pub target: Option<TargetState>,
    /// Task configs as of the last `commit-<name>`.
    pub tasks: Vec<Config>,
    /// Task configs written but not yet committed.
    pending: BTreeMap<usize, Config>,
    /// The task count of the last `tasks-fencing-<name>` record: how many transactional
    /// ids the next fencing covers.
    pub fenced_task_count: Option<usize>,
    /// Task configs were committed after the last fencing: with exactly-once source
    /// support, the tasks wait until the connector's owner fences the previous ones.
    pub pending_fencing: bool,
}

impl ConnectorEntry {
    pub fn target(&self) -> TargetState {
        self.target.unwrap_or(TargetState::Started)
    }
}

#[derive(Debug, Default)]
pub struct ConfigState {
    pub connectors: BTreeMap<String, ConnectorEntry>,
    /// The offset after the last record applied: workers compare it in the group
    /// protocol so the leader assigns from a snapshot at least as new as theirs.
    pub offset: i64,
}

pub fn connector_key(name: &str) -> String {
    format!("connector-{name}")
}
pub fn task_key(name: &str, id: usize) -> String {
    format!("task-{name}-{id}")
}
pub fn commit_key(name: &str) -> String {
    format!("commit-{name}")
}
pub fn target_key(name: &str) -> String {
    format!("target-state-{name}")
}
pub fn restart_key(name: &str) -> String {
    format!("restart-connector-{name}")
}
pub fn restart_task_key(name: &str, id: usize) -> String {
    format!("restart-task-{name}-{id}")
}
pub fn task_count_key(name: &str) -> String {
    format!("tasks-fencing-{name}")
}

pub fn properties_value(config: &Config) -> Vec<u8> {
    json!({ "properties": config }).to_string().into_bytes()
}
pub fn commit_value(tasks: usize) -> Vec<u8> {
    json!({ "tasks": tasks }).to_string().into_bytes()
}
/// `state` keeps workers that only know STARTED/PAUSED working; `state.v2` adds STOPPED.
pub fn target_value(t: TargetState) -> Vec<u8> {
    let v2 = state_name(t);
    let v1 = if t == TargetState::Stopped {
        "PAUSED"
    } else {
        v2
    };
    json!({ "state": v1, "state.v2": v2 })
        .to_string()
        .into_bytes()
}
pub fn task_count_value(tasks: usize) -> Vec<u8> {
    json!({ "task-count": tasks }).to_string().into_bytes()
}
pub fn restart_value(include_tasks: bool, only_failed: bool) -> Vec<u8> {
    json!({ "include-tasks": include_tasks, "only-failed": only_failed })
        .to_string()
        .into_bytes()
}

fn state_name(t: TargetState) -> &'static str {
    match t {
        TargetState::Started => "STARTED",
        TargetState::Paused => "PAUSED",
        TargetState::Stopped => "STOPPED",
    }
}

fn parse_state(s: &str) -> Option<TargetState> {
    match s {
        "STARTED" => Some(TargetState::Started),
        "PAUSED" => Some(TargetState::Paused),
        "STOPPED" => Some(TargetState::Stopped),
        _ => None,
    }
}

/// `<name>-<n>` → (name, n); names may contain dashes, the id is after the last.
fn split_task(rest: &str) -> Option<(&str, usize)> {
    let (name, id) = rest.rsplit_once('-')?;
    Some((name, id.parse().ok()?))
}

fn properties(v: &Json) -> Option<Config> {
    let obj = v.get("properties")?.as_object()?;
    Some(
        obj.iter()
            .map(|(k, v)| {
                let v = match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

impl ConfigState {
    pub fn live(&self, name: &str) -> Option<&ConnectorEntry> {
        self.connectors.get(name).filter(|c| c.config.is_some())
    }

    pub fn names(&self) -> Vec<String> {
        self.connectors
            .iter()
            .filter(|(_, c)| c.config.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Applies one record; returns what the worker should do about it.
    pub fn apply(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) -> Option<ConfigEvent> {
        self.offset = self.offset.max(offset + 1);
        let key = std::str::from_utf8(key).ok()?;
        let doc: Option<Json> = value.and_then(|v| serde_json::from_slice(v).ok());
        if let Some(name) = key.strip_prefix("connector-") {
            let entry = self.connectors.entry(name.to_string()).or_default();
            match doc.as_ref().and_then(properties) {
                Some(config) => entry.config = Some(config),
                None => {
                    self.connectors.remove(name);
                }
            }
            return Some(ConfigEvent::Rebalance);
        }
        if let Some(name) = key.strip_prefix("target-state-") {
            let state = doc.as_ref().and_then(|d| {
                d.get("state.v2")
                    .or_else(|| d.get("state"))
                    .and_then(Json::as_str)
                    .and_then(parse_state)
            });
            let entry = self.connectors.get_mut(name)?;
            entry.target = state;
            return Some(ConfigEvent::Target(name.to_string()));
        }
        if let Some(rest) = key.strip_prefix("restart-connector-") {
            let d = doc?;
            let flag = |k: &str| d.get(k).and_then(Json::as_bool).unwrap_or(false);
            return Some(ConfigEvent::RestartConnector {
                name: rest.to_string(),
                include_tasks: flag("include-tasks"),
                only_failed: flag("only-failed"),
            });
        }
        if let Some(rest) = key.strip_prefix("restart-task-") {
            let (name, id) = split_task(rest)?;
            return Some(ConfigEvent::RestartTask(name.to_string(), id));
        }
        if let Some(name) = key.strip_prefix("tasks-fencing-") {
            let n = doc?.get("task-count")?.as_u64()? as usize;
            let entry = self.connectors.get_mut(name)?;
            entry.fenced_task_count = Some(n);
            entry.pending_fencing = false;
            return Some(ConfigEvent::Fenced(name.to_string()));
        }
        if let Some(rest) = key.strip_prefix("task-") {
            let (name, id) = split_task(rest)?;
            let config = doc.as_ref().and_then(properties)?;
            let entry = self.connectors.entry(name.to_string()).or_default();
            entry.pending.insert(id, config);
            return None;
        }
        if let Some(name) = key.strip_prefix("commit-") {
            let n = doc?.get("tasks")?.as_u64()? as usize;
            let entry = self.connectors.entry(name.to_string()).or_default();
            let mut tasks = Vec::with_capacity(n);
            for id in 0..n {
                // A commit without all its task configs is not usable; keep the old set.
                tasks.push(entry.pending.get(&id)?.clone());
            }
            entry.tasks = tasks;
            entry.pending.clear();
            entry.pending_fencing = true;
            return Some(ConfigEvent::Rebalance);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(k: &str, v: &str) -> Config {
        [(k.to_string(), v.to_string())].into_iter().collect()
    }

    #[test]
    fn records_build_connectors_tasks_and_targets() {
        let mut s = ConfigState::default();
        let c = cfg("connector.class", "FileStreamSource");
        assert_eq!(
            s.apply(0, b"connector-my-conn", Some(&properties_value(&c))),
            Some(ConfigEvent::Rebalance)
        );
        assert_eq!(
            s.apply(
                1,
                b"task-my-conn-0",
                Some(&properties_value(&cfg("file", "a")))
            ),
            None
        );
        assert_eq!(
            s.apply(
                2,
                b"task-my-conn-1",
                Some(&properties_value(&cfg("file", "b")))
            ),
            None
        );
        // Not committed yet: no tasks.
        assert!(s.live("my-conn").unwrap().tasks.is_empty());
        assert_eq!(
            s.apply(3, b"commit-my-conn", Some(&commit_value(2))),
            Some(ConfigEvent::Rebalance)
        );
        let e = s.live("my-conn").unwrap();
        assert_eq!(e.tasks.len(), 2);
        assert_eq!(e.tasks[1].get("file").map(String::as_str), Some("b"));
        assert_eq!(e.target(), TargetState::Started);
        assert!(e.pending_fencing);
        assert_eq!(
            s.apply(4, b"tasks-fencing-my-conn", Some(&task_count_value(2))),
            Some(ConfigEvent::Fenced("my-conn".into()))
        );
        let e = s.live("my-conn").unwrap();
        assert!(!e.pending_fencing);
        assert_eq!(e.fenced_task_count, Some(2));
        s.apply(
            4,
            b"target-state-my-conn",
            Some(&target_value(TargetState::Stopped)),
        );
        assert_eq!(s.live("my-conn").unwrap().target(), TargetState::Stopped);
        assert_eq!(
            s.apply(5, b"restart-task-my-conn-1", Some(b"{}")),
            Some(ConfigEvent::RestartTask("my-conn".into(), 1))
        );
        assert_eq!(s.offset, 6);
        // A commit naming more tasks than were written is ignored.
        assert_eq!(s.apply(6, b"commit-my-conn", Some(&commit_value(3))), None);
        assert_eq!(s.live("my-conn").unwrap().tasks.len(), 2);
        s.apply(7, b"connector-my-conn", None);
        assert!(s.live("my-conn").is_none());
        assert!(s.names().is_empty());
    }
}
