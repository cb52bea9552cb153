//! The group protocol's payloads and the leader's round-robin assignment. A member's
//! metadata carries its REST URL and how far it has read the config topic; the leader
//! hands out connectors, then tasks, one member after another, as Kafka Connect's eager
//! protocol does. The payloads are JSON under the protocol name [`PROTOCOL`], so a Java
//! Connect worker (binary payloads) cannot silently join the same group.

use serde::{Deserialize, Serialize};

use super::configs::ConfigState;

pub const PROTOCOL: &str = "runnel-connect-v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberMetadata {
    pub url: String,
    pub config_offset: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Assignment {
    pub leader: String,
    pub leader_url: String,
    /// The config snapshot the leader assigned from; members read at least this far.
    pub config_offset: i64,
    pub connectors: Vec<String>,
    pub tasks: Vec<(String, usize)>,
}

/// Splits every connector and every committed task over the members, round robin,
/// members in member-id order.
pub fn assign(
    leader: &str,
    members: &[(String, MemberMetadata)],
    configs: &ConfigState,
) -> Vec<(String, Assignment)> {
    let mut members: Vec<&(String, MemberMetadata)> = members.iter().collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let leader_url = members
        .iter()
        .find(|(id, _)| id == leader)
        .map(|(_, m)| m.url.clone())
        .unwrap_or_default();
    let mut out: Vec<(String, Assignment)> = members
        .iter()
        .map(|(id, _)| {
            (
                id.clone(),
                Assignment {
                    leader: leader.to_string(),
                    leader_url: leader_url.clone(),
                    config_offset: configs.offset,
                    ..Assignment::default()
                },
            )
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    let n = out.len();
    for (i, name) in configs.names().into_iter().enumerate() {
        out[i % n].1.connectors.push(name);
    }
    let tasks = configs
        .names()
        .into_iter()
        .flat_map(|name| {
            let count = configs.live(&name).map_or(0, |c| c.tasks.len());
            (0..count).map(move |id| (name.clone(), id))
        })
        .enumerate();
    for (i, task) in tasks {
        out[i % n].1.tasks.push(task);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::configs::{commit_value, properties_value};
    use super::*;
    use crate::api::Config;

    #[test]
    fn connectors_and_tasks_are_spread_round_robin() {
        let mut configs = ConfigState::default();
        let mut off = 0;
        let mut put = |k: String, v: Vec<u8>| {
            configs.apply(off, k.as_bytes(), Some(&v));
            off += 1;
        };
        for (name, tasks) in [("a", 3), ("b", 1)] {
            put(
                format!("connector-{name}"),
                properties_value(&Config::new()),
            );
            for t in 0..tasks {
                put(format!("task-{name}-{t}"), properties_value(&Config::new()));
            }
            put(format!("commit-{name}"), commit_value(tasks));
        }
        let meta = |url: &str| MemberMetadata {
            url: url.into(),
            config_offset: 0,
        };
        let members = vec![
            ("m2".to_string(), meta("http://b")),
            ("m1".to_string(), meta("http://a")),
        ];
        let out = assign("m2", &members, &configs);
        assert_eq!(out.len(), 2);
        let (m1, a1) = &out[0];
        let (m2, a2) = &out[1];
        assert_eq!((m1.as_str(), m2.as_str()), ("m1", "m2"));
        assert_eq!(a1.connectors, vec!["a"]);
        assert_eq!(a2.connectors, vec!["b"]);
        assert_eq!(a1.tasks, vec![("a".to_string(), 0), ("a".to_string(), 2)]);
        assert_eq!(a2.tasks, vec![("a".to_string(), 1), ("b".to_string(), 0)]);
        assert_eq!(a1.leader_url, "http://b");
        assert_eq!(a1.config_offset, 8);
    }
}
