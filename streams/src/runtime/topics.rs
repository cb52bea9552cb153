//! Internal topics: each sub-topology's partition count is the largest of its user
//! source topics' (or, reading only internal topics, the largest of the topology's);
//! the internal topics it reads and its changelogs get that count; changelogs are
//! compacted (windowed ones also deleted after their retention). A missing source topic is an error, as Kafka
//! Streams' MissingSourceTopicException.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::block_on::block_on;
use super::config::StreamsConfig;
use crate::error::{Error, Result};
use crate::topology::{TopicRef, Topology};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Partition counts of topics as the cluster reports them (0 for a missing topic).
pub fn partition_counts(client: &BaseConsumer, topics: &[String]) -> Result<HashMap<String, i32>> {
    let mut out = HashMap::new();
    for t in topics {
        let md = client.fetch_metadata(Some(t), TIMEOUT)?;
        let n = md
            .topics()
            .iter()
            .find(|mt| mt.name() == t && mt.error().is_none())
            .map_or(0, |mt| mt.partitions().len() as i32);
        out.insert(t.clone(), n);
    }
    Ok(out)
}

/// Creates the internal topics and returns every source topic's partition count.
pub fn prepare(topology: &Topology, config: &StreamsConfig) -> Result<HashMap<String, i32>> {
    let app = &config.application_id;
    let client: BaseConsumer = config.client("admin").create()?;
    let user: Vec<String> = topology
        .subtopologies
        .iter()
        .flat_map(|s| s.topics())
        .chain(
            topology
                .globals
                .iter()
                .map(|g| TopicRef::User(g.topic.clone())),
        )
        .filter_map(|t| match t {
            TopicRef::User(n) => Some(n),
            TopicRef::Internal(_) => None,
        })
        .collect();
    let mut counts = partition_counts(&client, &user)?;
    if let Some((t, _)) = counts.iter().find(|(_, n)| **n == 0) {
        return Err(Error::Topology(format!(
            "source topic {t} is missing: create it before starting the application"
        )));
    }
    let all_max = counts.values().copied().max().unwrap_or(1).max(1);
    // A sub-topology reading user topics has their largest count, and so do the internal
    // topics it reads (a foreign-key join's subscriptions match the table they look up);
    // one reading only internal topics gets the largest count of all.
    let mut sub_counts = Vec::new();
    for sub in &topology.subtopologies {
        let user_max = sub
            .topics()
            .iter()
            .filter(|t| matches!(t, TopicRef::User(_)))
            .filter_map(|t| counts.get(&t.resolve(app)).copied())
            .max();
        let n = user_max.unwrap_or(all_max);
        for t in sub.topics() {
            if let TopicRef::Internal(_) = t {
                counts.insert(t.resolve(app), n);
            }
        }
        sub_counts.push(n);
    }
    let mut wanted: Vec<NewTopic> = Vec::new();
    let mut names = Vec::new();
    for it in &topology.internal_topics {
        if it.compact {
            continue;
        }
        let name = it.topic.resolve(app);
        let n = *counts.entry(name.clone()).or_insert(all_max);
        names.push((name, n, None, false));
    }
    for (sub, n) in topology.subtopologies.iter().zip(&sub_counts) {
        for store in sub.stores.iter().filter(|s| s.logged) {
            names.push((
                store.changelog_topic(app),
                *n,
                store.changelog_retention_ms,
                true,
            ));
        }
    }
    let retention_strings: Vec<Option<String>> = names
        .iter()
        .map(|(_, _, r, _)| r.map(|r| r.to_string()))
        .collect();
    for ((name, n, _, compact), retention) in names.iter().zip(&retention_strings) {
        let mut t = NewTopic::new(name, *n, TopicReplication::Fixed(config.replication_factor));
        if *compact {
            t = match retention {
                Some(r) => t
                    .set("cleanup.policy", "compact,delete")
                    .set("retention.ms", r),
                None => t.set("cleanup.policy", "compact"),
            };
        }
        wanted.push(t);
    }
    if wanted.is_empty() {
        return Ok(counts);
    }
    let admin: AdminClient<_> = config.client("admin").create()?;
    let results = block_on(admin.create_topics(
        wanted.iter(),
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(Error::Topology(format!(
                    "creating internal topic {t}: {code}"
                )))
            }
        }
    }
    Ok(counts)
}
