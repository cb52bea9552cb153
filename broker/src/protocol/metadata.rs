//! Metadata (with topic auto-creation) and DescribeCluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::error::{Error, ErrorCode};
use crate::topics::{validate_topic_name, Topic};

fn topic_metadata(state: &BrokerState, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(state.config.node_id);
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(sb(&topic.name)));
    t.topic_id = topic.id;
    t.is_internal = topic.internal;
    t.partitions = (0..topic.partition_count())
        .map(|p| {
            let mut part = MetadataResponsePartition::default();
            part.partition_index = p;
            part.leader_id = node;
            // No leader epochs: clients then skip OffsetForLeaderEpoch validation.
            part.leader_epoch = -1;
            part.replica_nodes = vec![node];
            part.isr_nodes = vec![node];
            part
        })
        .collect();
    t
}

fn error_topic(name: &str, code: ErrorCode) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(sb(name)));
    t.error_code = code.code();
    t
}

/// Finds a topic, creating it when auto-creation is allowed.
pub(crate) fn get_or_create(
    state: &BrokerState,
    name: &str,
    allow_create: bool,
) -> Result<Arc<Topic>, ErrorCode> {
    if let Some(t) = state.topics.get(name) {
        return Ok(t);
    }
    if let Err(e) = validate_topic_name(name) {
        return Err(e.code());
    }
    if !(allow_create && state.config.auto_create_topics) {
        return Err(ErrorCode::UnknownTopicOrPartition);
    }
    match state
        .topics
        .create(name, state.config.num_partitions, BTreeMap::new(), false)
    {
        Ok(t) => Ok(t),
        Err(Error::TopicExists(_)) => state
            .topics
            .get(name)
            .ok_or(ErrorCode::UnknownTopicOrPartition),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating a topic failed");
            Err(e.code())
        }
    }
}

pub(crate) fn metadata(
    state: &BrokerState,
    req: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut resp = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(state.config.node_id);
    broker.host = sb(&state.advertised_host);
    broker.port = state.advertised_port;
    resp.brokers = vec![broker];
    resp.cluster_id = Some(sb(&state.cluster_id));
    resp.controller_id = BrokerId(state.config.node_id);
    // v0: an empty list means every topic; v1+: null means every topic.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    // Before v4 requests could not opt out of auto-creation.
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    resp.topics = if all {
        state
            .topics
            .list()
            .iter()
            .map(|t| topic_metadata(state, t))
            .collect()
    } else {
        req.topics
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                match get_or_create(state, &name, allow_create) {
                    Ok(topic) => topic_metadata(state, &topic),
                    Err(code) => error_topic(&name, code),
                }
            })
            .collect()
    };
    resp
}

pub(crate) fn describe_cluster(
    state: &BrokerState,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_id = sb(&state.cluster_id);
    resp.controller_id = BrokerId(state.config.node_id);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(state.config.node_id);
    b.host = sb(&state.advertised_host);
    b.port = state.advertised_port;
    resp.brokers = vec![b];
    resp
}
