//! Produce (acks 0, 1 and all, with group-committed fsyncs for acks=all). Batches of
//! transactional producers are checked against their open transaction first.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;

use super::dispatch::{Ctx, Reply};
use super::sb;
use crate::broker::BrokerState;
use crate::error::ErrorCode;
use crate::log::{now_ms, PartitionLog};

fn partition_error(index: i32, code: ErrorCode, message: String) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = code.code();
    p.base_offset = -1;
    p.log_append_time_ms = -1;
    p.log_start_offset = -1;
    p.error_message = Some(sb(message));
    p
}

/// Appends now, in arrival order; the returned reply waits for durability if acks=all.
pub(crate) fn produce(state: Arc<BrokerState>, req: ProduceRequest, ctx: Ctx) -> Reply {
    let acks = req.acks;
    let now = now_ms();
    let mut to_sync: Vec<(usize, usize, Arc<PartitionLog>, i64)> = Vec::new();
    let mut flush_due: Vec<(Arc<PartitionLog>, i64)> = Vec::new();
    let mut resp = ProduceResponse::default();
    let mut appended = false;
    // Taken at the first transactional batch and held until every append is done, so
    // EndTxn cannot write its markers between the check and the append.
    let mut producing = None;
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        let name = topic.name.0.to_string();
        let found = state.topics.get(&name);
        let mut tr = TopicProduceResponse::default();
        tr.name = topic.name.clone();
        for pd in topic.partition_data {
            let log = match &found {
                Some(t) if t.internal => {
                    tr.partition_responses.push(partition_error(
                        pd.index,
                        ErrorCode::InvalidTopicException,
                        format!("cannot produce to internal topic {name}"),
                    ));
                    continue;
                }
                Some(t) => t.partition(pd.index),
                None => None,
            };
            let Some(log) = log else {
                tr.partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::UnknownTopicOrPartition,
                    format!("unknown topic or partition {name}-{}", pd.index),
                ));
                continue;
            };
            if !(-1..=1).contains(&acks) {
                tr.partition_responses.push(partition_error(
                    pd.index,
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks={acks} is not one of -1, 0, 1"),
                ));
                continue;
            }
            let records = pd.records.unwrap_or_default();
            if super::transactions::is_transactional(&records) {
                let open = producing.get_or_insert_with(|| state.txns.producing());
                if let Err((code, message)) =
                    super::transactions::check_transactional(open, &records, &name, pd.index)
                {
                    tr.partition_responses
                        .push(partition_error(pd.index, code, message));
                    continue;
                }
            }
            match log.append(&records, now) {
                Ok(r) => {
                    appended = true;
                    let mut p = PartitionProduceResponse::default();
                    p.index = pd.index;
                    p.base_offset = r.base_offset;
                    p.log_append_time_ms = r.log_append_time;
                    p.log_start_offset = log.log_start_offset();
                    if acks == -1 {
                        to_sync.push((
                            ti,
                            tr.partition_responses.len(),
                            log.clone(),
                            r.last_offset + 1,
                        ));
                    } else if r.flush_due {
                        flush_due.push((log.clone(), r.last_offset + 1));
                    }
                    tr.partition_responses.push(p);
                }
                Err(e) => {
                    tracing::debug!(topic = %name, partition = pd.index, error = %e, "produce refused");
                    tr.partition_responses
                        .push(partition_error(pd.index, e.code(), e.to_string()));
                }
            }
        }
        resp.responses.push(tr);
    }
    drop(producing);
    if appended {
        state.appended.notify_waiters();
    }
    for (log, offset) in flush_due {
        tokio::spawn(async move {
            if let Err(e) = log.sync_to(offset).await {
                tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "flush failed");
            }
        });
    }
    if acks == 0 {
        // The client expects no response frame at all.
        return Box::pin(async { None });
    }
    ctx.later(async move {
        for (ti, pi, log, offset) in to_sync {
            if let Err(e) = log.sync_to(offset).await {
                tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "fsync failed");
                resp.responses[ti].partition_responses[pi] =
                    partition_error(log.partition, ErrorCode::KafkaStorageError, e.to_string());
            }
        }
        resp
    })
}
