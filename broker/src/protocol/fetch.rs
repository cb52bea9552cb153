//! Fetch (long poll on max_wait_ms / min_bytes, whole batches as stored, at least one
//! batch even above max_bytes) and ListOffsets (earliest, latest, max timestamp, by
//! timestamp).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::*;

use crate::broker::BrokerState;
use crate::error::ErrorCode;
use crate::log::Isolation;

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;

/// Fetch's and ListOffsets' `isolation_level`: 1 is READ_COMMITTED.
fn isolation(level: i8) -> Isolation {
    if level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    }
}

/// One pass over the requested partitions; returns the response and its record bytes.
fn read_once(state: &BrokerState, req: &FetchRequest) -> (FetchResponse, usize, bool) {
    let isolation = isolation(req.isolation_level);
    let mut resp = FetchResponse::default();
    let mut budget = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    for topic in &req.topics {
        let name = topic.topic.0.to_string();
        let found = state.topics.get(&name);
        let mut tr = FetchableTopicResponse::default();
        tr.topic = topic.topic.clone();
        for p in &topic.partitions {
            let mut pd = PartitionData::default();
            pd.partition_index = p.partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            match found.as_ref().and_then(|t| t.partition(p.partition)) {
                None => {
                    pd.error_code = ErrorCode::UnknownTopicOrPartition.code();
                    errors = true;
                }
                Some(log) => {
                    // Once the response is full, other partitions report their marks only.
                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                    let result = if limit == 0 && total > 0 {
                        log.read_isolated(p.fetch_offset, 0, isolation)
                            .map(|mut r| {
                                r.records = Default::default();
                                r.aborted.clear();
                                r
                            })
                    } else {
                        log.read_isolated(p.fetch_offset, limit, isolation)
                    };
                    match result {
                        Ok(r) => {
                            pd.high_watermark = r.high_watermark;
                            pd.last_stable_offset = r.last_stable_offset;
                            pd.log_start_offset = r.log_start_offset;
                            if isolation == Isolation::ReadCommitted {
                                pd.aborted_transactions = Some(
                                    r.aborted
                                        .iter()
                                        .map(|a| {
                                            let mut t = AbortedTransaction::default();
                                            t.producer_id = ProducerId(a.producer_id);
                                            t.first_offset = a.first_offset;
                                            t
                                        })
                                        .collect(),
                                );
                            }
                            total += r.records.len();
                            budget = budget.saturating_sub(r.records.len());
                            pd.records = Some(r.records);
                        }
                        Err(e) => {
                            pd.error_code = e.code().code();
                            pd.high_watermark = log.log_end_offset();
                            pd.last_stable_offset = log.last_stable_offset();
                            pd.log_start_offset = log.log_start_offset();
                            errors = true;
                        }
                    }
                }
            }
            tr.partitions.push(pd);
        }
        resp.responses.push(tr);
    }
    (resp, total, errors)
}

pub(crate) async fn fetch(state: Arc<BrokerState>, req: FetchRequest) -> FetchResponse {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    loop {
        // Register for wake-ups before reading, so an append in between is not missed.
        let notified = state.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (resp, bytes, errors) = read_once(&state, &req);
        if bytes >= req.min_bytes.max(1) as usize
            || errors
            || tokio::time::Instant::now() >= deadline
        {
            return resp;
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

pub(crate) fn list_offsets(state: &BrokerState, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let committed = isolation(req.isolation_level) == Isolation::ReadCommitted;
    let mut resp = ListOffsetsResponse::default();
    for topic in req.topics {
        let found = state.topics.get(topic.name.0.as_str());
        let mut tr = ListOffsetsTopicResponse::default();
        tr.name = topic.name.clone();
        for p in topic.partitions {
            let mut pr = ListOffsetsPartitionResponse::default();
            pr.partition_index = p.partition_index;
            pr.timestamp = -1;
            pr.offset = -1;
            pr.leader_epoch = -1;
            match found.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => pr.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                Some(log) => {
                    let looked_up = match p.timestamp {
                        EARLIEST => Ok(Some((log.log_start_offset(), -1))),
                        LATEST if committed => Ok(Some((log.last_stable_offset(), -1))),
                        LATEST => Ok(Some((log.log_end_offset(), -1))),
                        MAX_TIMESTAMP => log.offset_for_max_timestamp(),
                        ts => log.offset_for_timestamp(ts),
                    };
                    match looked_up {
                        Ok(Some((offset, ts))) => {
                            pr.offset = offset;
                            pr.timestamp = ts;
                        }
                        Ok(None) => {}
                        Err(e) => pr.error_code = e.code().code(),
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
