//! The transaction APIs (KIP-98, KIP-447): InitProducerId (idempotent and
//! transactional), AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn,
//! DescribeTransactions and ListTransactions, mapped onto
//! [`crate::txn::TxnCoordinator`]; and the check Produce makes of transactional
//! batches.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::sb;
use crate::broker::BrokerState;
use crate::error::ErrorCode;
use crate::group::OFFSETS_TOPIC;
use crate::log::batch::BatchHeader;
use crate::log::now_ms;
use crate::txn::Producing;

/// Requests older than these versions know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED
/// (Kafka's KafkaApis maps it the same way).
fn fenced_for(code: ErrorCode, version: i16, first_version_with_fenced: i16) -> i16 {
    if code == ErrorCode::ProducerFenced && version < first_version_with_fenced {
        ErrorCode::InvalidProducerEpoch.code()
    } else {
        code.code()
    }
}

fn code_of(r: Result<(), ErrorCode>) -> ErrorCode {
    r.err().unwrap_or(ErrorCode::None)
}

pub(crate) async fn init_producer_id(
    state: Arc<BrokerState>,
    req: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    let Some(id) = req.transactional_id.as_ref().filter(|s| !s.is_empty()) else {
        init_idempotent(&state, &req, &mut resp);
        return resp;
    };
    let given = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let result = state
        .txns
        .init_producer_id(id.as_str(), req.transaction_timeout_ms, given, || {
            state.producer_ids.allocate()
        })
        .await;
    match result {
        Ok((pid, epoch)) => {
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Err(code) => resp.error_code = fenced_for(code, version, 4),
    }
    resp
}

/// InitProducerId without a transactional id: a new producer id, or (KIP-360) the
/// caller's own with its epoch bumped to reset its sequences.
fn init_idempotent(
    state: &BrokerState,
    req: &InitProducerIdRequest,
    resp: &mut InitProducerIdResponse,
) {
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        resp.producer_id = req.producer_id;
        resp.producer_epoch = req.producer_epoch + 1;
        return;
    }
    match state.producer_ids.allocate() {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not allocate a producer id");
            resp.error_code = ErrorCode::CoordinatorNotAvailable.code();
        }
    }
}

pub(crate) async fn add_partitions_to_txn(
    state: Arc<BrokerState>,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut wanted = Vec::new();
    let mut unknown = false;
    for t in &req.v3_and_below_topics {
        let topic = state.topics.get(t.name.0.as_str());
        for p in &t.partitions {
            unknown |= topic.as_ref().and_then(|t| t.partition(*p)).is_none();
            wanted.push((t.name.0.to_string(), *p));
        }
    }
    // As Kafka: if any partition is unknown, none is added and the others say so.
    let code = if unknown {
        None
    } else {
        Some(code_of(
            state
                .txns
                .add_partitions(
                    req.v3_and_below_transactional_id.as_str(),
                    req.v3_and_below_producer_id.0,
                    req.v3_and_below_producer_epoch,
                    wanted,
                )
                .await,
        ))
    };
    let mut resp = AddPartitionsToTxnResponse::default();
    for t in &req.v3_and_below_topics {
        let topic = state.topics.get(t.name.0.as_str());
        let mut tr = AddPartitionsToTxnTopicResult::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            pr.partition_error_code = match code {
                Some(c) => fenced_for(c, version, 2),
                None if topic.as_ref().and_then(|t| t.partition(*p)).is_none() => {
                    ErrorCode::UnknownTopicOrPartition.code()
                }
                None => ErrorCode::OperationNotAttempted.code(),
            };
            tr.results_by_partition.push(pr);
        }
        resp.results_by_topic_v3_and_below.push(tr);
    }
    resp
}

pub(crate) async fn add_offsets_to_txn(
    state: Arc<BrokerState>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut resp = AddOffsetsToTxnResponse::default();
    let group = req.group_id.0.as_str();
    if group.is_empty() {
        resp.error_code = ErrorCode::InvalidGroupId.code();
        return resp;
    }
    let partition = (
        OFFSETS_TOPIC.to_string(),
        state.offsets.partition_for(group),
    );
    let result = state
        .txns
        .add_partitions(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            vec![partition],
        )
        .await;
    resp.error_code = fenced_for(code_of(result), version, 2);
    resp
}

pub(crate) async fn txn_offset_commit(
    state: Arc<BrokerState>,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group = req.group_id.0.to_string();
    // Without a generation (v0-2, or a producer that does not know the group) Kafka
    // does not check membership; with one it must be the group's current one.
    let mut check = if group.is_empty() {
        ErrorCode::InvalidGroupId
    } else if req.generation_id < 0 && req.member_id.is_empty() {
        ErrorCode::None
    } else {
        state
            .groups
            .validate_commit(&group, req.member_id.as_str(), req.generation_id)
    };
    let now = now_ms();
    let mut commits = Vec::new();
    let mut codes: HashMap<(String, i32), ErrorCode> = HashMap::new();
    for t in &req.topics {
        let topic = state.topics.get(t.name.0.as_str());
        for p in &t.partitions {
            let committed = (
                p.committed_offset,
                p.committed_leader_epoch,
                p.committed_metadata.as_deref(),
            );
            let at = (&*t.name.0, p.partition_index);
            let code =
                super::offsets::stage_commit(topic.as_deref(), at, committed, (now, &mut commits));
            codes.insert((t.name.0.to_string(), p.partition_index), code);
        }
    }
    if check == ErrorCode::None && !commits.is_empty() {
        check = code_of(
            state
                .txns
                .commit_offsets(
                    req.transactional_id.as_str(),
                    &group,
                    req.producer_id.0,
                    req.producer_epoch,
                    commits,
                )
                .await,
        );
    }
    let mut resp = TxnOffsetCommitResponse::default();
    for t in &req.topics {
        let mut tr = TxnOffsetCommitResponseTopic::default();
        tr.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = TxnOffsetCommitResponsePartition::default();
            pr.partition_index = p.partition_index;
            let own = codes
                .get(&(t.name.0.to_string(), p.partition_index))
                .copied()
                .unwrap_or(ErrorCode::None);
            pr.error_code = if check != ErrorCode::None { check } else { own }.code();
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}

pub(crate) async fn end_txn(
    state: Arc<BrokerState>,
    req: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let result = state
        .txns
        .end_txn(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
        )
        .await;
    // Read-committed fetches waiting for the LSO to move wake up.
    state.appended.notify_waiters();
    let mut resp = EndTxnResponse::default();
    resp.error_code = fenced_for(code_of(result), version, 2);
    resp
}

pub(crate) async fn describe_transactions(
    state: Arc<BrokerState>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut resp = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut ts = TransactionState::default();
        match state.txns.describe(id.as_str()).await {
            Ok(m) => {
                ts.transaction_state = sb(m.state.name());
                ts.transaction_timeout_ms = m.timeout_ms;
                ts.transaction_start_time_ms = m.start_ms;
                ts.producer_id = ProducerId(m.producer_id);
                ts.producer_epoch = m.producer_epoch;
                for (topic, p) in &m.partitions {
                    match ts.topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*p),
                        _ => {
                            let mut t = TopicData::default();
                            t.topic = TopicName(sb(topic));
                            t.partitions.push(*p);
                            ts.topics.push(t);
                        }
                    }
                }
            }
            Err(code) => {
                ts.error_code = code.code();
                ts.producer_id = ProducerId(-1);
                ts.producer_epoch = -1;
                ts.transaction_start_time_ms = -1;
                ts.transaction_state = sb("");
            }
        }
        ts.transactional_id = id;
        resp.transaction_states.push(ts);
    }
    resp
}

pub(crate) async fn list_transactions(
    state: Arc<BrokerState>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    use kafka_protocol::messages::list_transactions_response::TransactionState as Listed;
    const NAMES: [&str; 8] = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    let mut resp = ListTransactionsResponse::default();
    resp.unknown_state_filters = req
        .state_filters
        .iter()
        .filter(|s| !NAMES.contains(&s.as_str()))
        .cloned()
        .collect();
    let now = now_ms();
    for (id, m) in state.txns.list().await {
        let state_ok = req.state_filters.is_empty()
            || req
                .state_filters
                .iter()
                .any(|s| s.as_str() == m.state.name());
        let pid_ok = req.producer_id_filters.is_empty()
            || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id);
        // KIP-994: only transactions running longer than this many ms.
        let duration_ok = req.duration_filter < 0
            || (m.state == crate::txn::TxnState::Ongoing && now - m.start_ms > req.duration_filter);
        if state_ok && pid_ok && duration_ok {
            let mut l = Listed::default();
            l.transactional_id = TransactionalId(sb(&id));
            l.producer_id = ProducerId(m.producer_id);
            l.transaction_state = sb(m.state.name());
            resp.transaction_states.push(l);
        }
    }
    resp
}

/// Whether a partition's produce data starts with a transactional batch.
pub(crate) fn is_transactional(records: &[u8]) -> bool {
    BatchHeader::parse(records).is_ok_and(|h| h.is_transactional())
}

/// Checks the first batch of a partition's produce data, if it is transactional,
/// against the producer's open transaction (KIP-890's verification): the epoch must be
/// the current one and the partition added to the transaction.
pub(crate) fn check_transactional(
    producing: &HashMap<i64, Producing>,
    records: &[u8],
    topic: &str,
    partition: i32,
) -> Result<(), (ErrorCode, String)> {
    let Ok(h) = BatchHeader::parse(records) else {
        // Malformed data is refused by the log's own validation.
        return Ok(());
    };
    if !h.is_transactional() {
        return Ok(());
    }
    match producing.get(&h.producer_id) {
        None => Err((
            ErrorCode::InvalidProducerIdMapping,
            format!(
                "producer id {} belongs to no transactional id",
                h.producer_id
            ),
        )),
        // An older epoch was fenced by InitProducerId or a timed-out abort.
        Some(p) if p.epoch != h.producer_epoch => Err((
            ErrorCode::InvalidProducerEpoch,
            format!(
                "producer {} epoch {} is not the current epoch {}",
                h.producer_id, h.producer_epoch, p.epoch
            ),
        )),
        Some(p) if !p.open || !p.partitions.contains(&(topic.to_string(), partition)) => Err((
            ErrorCode::InvalidTxnState,
            format!(
                "{topic}-{partition} was not added to producer {}'s transaction",
                h.producer_id
            ),
        )),
        Some(_) => Ok(()),
    }
}
