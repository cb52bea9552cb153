//! Connector and task statuses every worker reads from `status.storage.topic`, in
//! Kafka Connect's format: key `status-connector-<name>` or `status-task-<name>-<n>`,
//! value {"state", "trace", "worker_id", "generation"}. Each worker writes the statuses
//! of what it runs; any worker answers GET /status from what it has read.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    pub state: String,
    pub trace: Option<String>,
    pub worker_id: String,
    pub generation: i32,
}

impl StatusRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        json!({
            "state": self.state,
            "trace": self.trace,
            "worker_id": self.worker_id,
            "generation": self.generation,
        })
        .to_string()
        .into_bytes()
    }

    fn parse(bytes: &[u8]) -> Option<StatusRecord> {
        let d: Json = serde_json::from_slice(bytes).ok()?;
        Some(StatusRecord {
            state: d.get("state")?.as_str()?.to_string(),
            trace: d.get("trace").and_then(Json::as_str).map(str::to_string),
            worker_id: d
                .get("worker_id")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_string(),
            generation: d.get("generation").and_then(Json::as_i64).unwrap_or(-1) as i32,
        })
    }
}

pub fn connector_key(name: &str) -> String {
    format!("status-connector-{name}")
}
pub fn task_key(name: &str, id: usize) -> String {
    format!("status-task-{name}-{id}")
}

#[derive(Debug, Default)]
pub struct StatusState {
    pub connectors: BTreeMap<String, StatusRecord>,
    pub tasks: BTreeMap<(String, usize), StatusRecord>,
}

impl StatusState {
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        let Ok(key) = std::str::from_utf8(key) else {
            return;
        };
        let record = value.and_then(StatusRecord::parse);
        if let Some(name) = key.strip_prefix("status-connector-") {
            match record {
                Some(r) => self.connectors.insert(name.to_string(), r),
                None => self.connectors.remove(name),
            };
        } else if let Some(rest) = key.strip_prefix("status-task-") {
            let Some((name, id)) = rest
                .rsplit_once('-')
                .and_then(|(n, i)| Some((n.to_string(), i.parse::<usize>().ok()?)))
            else {
                return;
            };
            match record {
                // An older generation's report does not overwrite a newer one.
                Some(r) => {
                    let stale = self
                        .tasks
                        .get(&(name.clone(), id))
                        .is_some_and(|old| old.generation > r.generation);
                    if !stale {
                        self.tasks.insert((name, id), r);
                    }
                }
                None => {
                    self.tasks.remove(&(name, id));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: &str, generation: i32) -> StatusRecord {
        StatusRecord {
            state: state.into(),
            trace: None,
            worker_id: "w:1".into(),
            generation,
        }
    }

    #[test]
    fn newer_generations_win_and_tombstones_remove() {
        let mut s = StatusState::default();
        s.apply(b"status-task-a-b-0", Some(&rec("RUNNING", 3).to_bytes()));
        s.apply(b"status-task-a-b-0", Some(&rec("UNASSIGNED", 2).to_bytes()));
        assert_eq!(s.tasks[&("a-b".to_string(), 0)].state, "RUNNING");
        s.apply(b"status-task-a-b-0", Some(&rec("FAILED", 4).to_bytes()));
        assert_eq!(s.tasks[&("a-b".to_string(), 0)].state, "FAILED");
        s.apply(b"status-connector-a-b", Some(&rec("RUNNING", 4).to_bytes()));
        assert_eq!(s.connectors["a-b"].worker_id, "w:1");
        s.apply(b"status-connector-a-b", None);
        s.apply(b"status-task-a-b-0", None);
        assert!(s.connectors.is_empty() && s.tasks.is_empty());
    }
}
