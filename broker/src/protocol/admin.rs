//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::config::TopicConfig;
use crate::error::{Error, ErrorCode};

pub(crate) fn create_topics(
    state: &BrokerState,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default();
        r.name = t.name.clone();
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            state.config.num_partitions
        } else {
            t.num_partitions
        };
        let overrides: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let result = if !matches!(t.replication_factor, -1 | 1) {
            Err(Error::Kafka(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {} is larger than the 1 available broker",
                    t.replication_factor
                ),
            ))
        } else if req.validate_only {
            state
                .topics
                .validate_new(&name, partitions, &overrides)
                .map(|_| None)
        } else {
            state
                .topics
                .create(&name, partitions, overrides.clone(), false)
                .map(Some)
        };
        match result {
            Ok(topic) => {
                r.num_partitions = partitions;
                r.replication_factor = 1;
                if let Some(topic) = topic {
                    r.topic_id = topic.id;
                }
                if version >= 5 {
                    let entries = TopicConfig::describe(&state.config.properties, &overrides);
                    r.configs = Some(
                        entries
                            .into_iter()
                            .map(|e| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = sb(e.name);
                                c.value = Some(sb(e.value));
                                c.config_source = e.source as i8;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                r.error_code = e.code().code();
                r.error_message = Some(sb(e.to_string()));
                r.num_partitions = -1;
                r.replication_factor = -1;
            }
        }
        resp.topics.push(r);
    }
    resp
}

pub(crate) fn delete_topics(state: &BrokerState, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut resp = DeleteTopicsResponse::default();
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default();
        r.topic_id = id;
        let name = name.or_else(|| {
            state
                .topics
                .list()
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
        });
        let outcome = match &name {
            None => Err(Error::Kafka(
                ErrorCode::UnknownTopicId,
                format!("no topic has id {id}"),
            )),
            Some(n) if state.topics.get(n).is_some_and(|t| t.internal) => Err(Error::Kafka(
                ErrorCode::InvalidTopicException,
                format!("{n} is an internal topic"),
            )),
            Some(n) => state.topics.delete(n),
        };
        r.name = name.as_ref().map(|n| TopicName(sb(n)));
        match outcome {
            Ok(()) => {
                if let Some(n) = &name {
                    state.offsets.forget_topic(n);
                }
            }
            Err(e) => {
                r.error_code = e.code().code();
                r.error_message = Some(sb(e.to_string()));
            }
        }
        resp.responses.push(r);
    }
    resp
}

pub(crate) fn create_partitions(
    state: &BrokerState,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        let outcome = match state.topics.get(&name) {
            None => Err(Error::UnknownTopicOrPartition(name.clone())),
            Some(topic) if t.count <= topic.partition_count() => Err(Error::Kafka(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name} has {} partitions; {} is not more",
                    topic.partition_count(),
                    t.count
                ),
            )),
            Some(_) if req.validate_only => Ok(()),
            Some(_) => state.topics.add_partitions(&name, t.count),
        };
        if let Err(e) = outcome {
            r.error_code = e.code().code();
            r.error_message = Some(sb(e.to_string()));
        }
        resp.results.push(r);
    }
    resp
}
