//! OffsetCommit and OffsetFetch.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::error::ErrorCode;
use crate::group::Committed;
use crate::log::now_ms;

/// Kafka's `offset.metadata.max.bytes`.
const MAX_METADATA: usize = 4096;

/// A partition's commit (of OffsetCommit or TxnOffsetCommit) checked and, if fine,
/// added to `commits`: its topic and partition must exist, its metadata be at most
/// `offset.metadata.max.bytes` (4096).
pub(super) fn stage_commit(
    topic: Option<&crate::topics::Topic>,
    (name, partition): (&str, i32),
    (offset, leader_epoch, metadata): (i64, i32, Option<&str>),
    (now, commits): (i64, &mut Vec<(String, i32, Committed)>),
) -> ErrorCode {
    let metadata = metadata.unwrap_or_default();
    if topic.and_then(|t| t.partition(partition)).is_none() {
        ErrorCode::UnknownTopicOrPartition
    } else if metadata.len() > MAX_METADATA {
        ErrorCode::OffsetMetadataTooLarge
    } else {
        let committed = Committed {
            offset,
            leader_epoch,
            metadata: metadata.to_string(),
            commit_timestamp: now,
        };
        commits.push((name.to_string(), partition, committed));
        ErrorCode::None
    }
}

pub(crate) fn offset_commit(state: &BrokerState, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.0.to_string();
    let mut check = if group.is_empty() {
        ErrorCode::InvalidGroupId
    } else {
        state.groups.validate_commit(
            &group,
            req.member_id.as_str(),
            req.generation_id_or_member_epoch,
        )
    };
    let now = now_ms();
    let mut commits = Vec::new();
    let mut resp = OffsetCommitResponse::default();
    for t in &req.topics {
        let mut tr = OffsetCommitResponseTopic::default();
        tr.name = t.name.clone();
        let topic = state.topics.get(t.name.0.as_str());
        for p in &t.partitions {
            let code = if check != ErrorCode::None {
                check
            } else {
                let committed = (
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_deref(),
                );
                stage_commit(
                    topic.as_deref(),
                    (&t.name.0, p.partition_index),
                    committed,
                    (now, &mut commits),
                )
            };
            let mut pr = OffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            pr.error_code = code.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    if let Err(e) = state.offsets.commit(&group, commits) {
        tracing::error!(%group, error = %e, "writing committed offsets failed");
        check = e.code();
        for tr in &mut resp.topics {
            for pr in &mut tr.partitions {
                if pr.error_code == 0 {
                    pr.error_code = check.code();
                }
            }
        }
    }
    resp
}

pub(crate) fn offset_fetch(state: &BrokerState, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let group = req.group_id.0.to_string();
    let mut resp = OffsetFetchResponse::default();
    let partition = |topic: &str, p: i32| {
        let mut pr = OffsetFetchResponsePartition::default();
        pr.partition_index = p;
        // KIP-447: a consumer that asks for stable offsets (librdkafka does under
        // read_committed) retries while a transaction's offset for it is pending.
        if req.require_stable && state.offsets.has_staged(&group, topic, p) {
            pr.error_code = ErrorCode::UnstableOffsetCommit.code();
            pr.committed_offset = -1;
            pr.committed_leader_epoch = -1;
            return pr;
        }
        match state.offsets.fetch(&group, topic, p) {
            Some(c) => {
                pr.committed_offset = c.offset;
                pr.committed_leader_epoch = c.leader_epoch;
                pr.metadata = Some(sb(c.metadata));
            }
            None => {
                pr.committed_offset = -1;
                pr.committed_leader_epoch = -1;
                pr.metadata = Some(sb(""));
            }
        }
        pr
    };
    match req.topics {
        Some(topics) => {
            for t in topics {
                let mut tr = OffsetFetchResponseTopic::default();
                tr.name = t.name.clone();
                tr.partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| partition(t.name.0.as_str(), *p))
                    .collect();
                resp.topics.push(tr);
            }
        }
        None => {
            // Null topics (v2+): every partition the group has committed.
            let mut by_topic: Vec<OffsetFetchResponseTopic> = Vec::new();
            for (topic, p, _) in state.offsets.all(&group) {
                if by_topic.last().is_none_or(|t| t.name.0.as_str() != topic) {
                    let mut tr = OffsetFetchResponseTopic::default();
                    tr.name = TopicName(sb(&topic));
                    by_topic.push(tr);
                }
                if let Some(tr) = by_topic.last_mut() {
                    tr.partitions.push(partition(&topic, p));
                }
            }
            resp.topics = by_topic;
        }
    }
    resp
}
