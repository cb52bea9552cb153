//! A connector's committed offsets as GET/PATCH/DELETE /connectors/{name}/offsets
//! (KIP-875) show and change them: a source's from the offset store, a sink's from its
//! consumer group `connect-<name>`.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;

use super::sink;
use super::worker::WorkerShared;
use crate::api::{Config, JsonMap};
use crate::error::{Error, Result};

/// Offsets change only while the connector is STOPPED, as in Kafka Connect.
pub fn not_stopped(name: &str) -> Error {
    Error::config(
        "state",
        format!("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"),
    )
}

fn group_client(shared: &WorkerShared, name: &str) -> Result<BaseConsumer> {
    let mut c = rdkafka::ClientConfig::new();
    c.set("bootstrap.servers", &shared.config.bootstrap_servers)
        .set("group.id", sink::group_id(name))
        .set("enable.auto.commit", "false");
    Ok(c.create()?)
}

/// Every (partition, offset) the connector has committed.
pub async fn read(
    shared: &WorkerShared,
    name: &str,
    kind: &str,
    config: &Config,
) -> Result<Vec<(JsonMap, JsonMap)>> {
    if kind == "source" {
        shared.offsets.read_to_end().await?;
        return Ok(shared.offsets.for_connector(name));
    }
    let consumer = group_client(shared, name)?;
    let topics = crate::runtime::connector_config::sink_topics(config);
    tokio::task::spawn_blocking(move || -> Result<Vec<(JsonMap, JsonMap)>> {
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
    .map_err(|e| Error::Task(e.to_string()))?
}

/// Alters (`Some`) or resets (`None`) the connector's offsets.
pub async fn alter(
    shared: &WorkerShared,
    name: &str,
    kind: &str,
    config: &Config,
    offsets: Option<Vec<(JsonMap, Option<JsonMap>)>>,
) -> Result<()> {
    if kind == "source" {
        shared.offsets.read_to_end().await?;
        let updates = match offsets {
            Some(list) => list,
            None => shared
                .offsets
                .for_connector(name)
                .into_iter()
                .map(|(p, _)| (p, None))
                .collect(),
        };
        return shared.offsets.commit(name, updates).await;
    }
    let consumer = group_client(shared, name)?;
    let current = read(shared, name, kind, config).await?;
    let list = offsets.unwrap_or_else(|| current.into_iter().map(|(p, _)| (p, None)).collect());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in list {
            let topic = p
                .get("kafka_topic")
                .and_then(|v| v.as_str())
                .ok_or_else(|| Error::config("offsets", "a sink partition needs kafka_topic"))?;
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
                    .ok_or_else(|| Error::config("offsets", "a sink offset needs kafka_offset"))?,
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
