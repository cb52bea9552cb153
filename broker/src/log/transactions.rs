//! A partition's view of transactions (KIP-98): which producers have a transaction
//! open here and from which offset (the last stable offset is the smallest of those),
//! and which transactions were aborted (what Kafka keeps in `.txnindex` files, here
//! rebuilt from the log when it is opened), so a `read_committed` Fetch can stop at the
//! LSO and tell the consumer which records to drop. Also the control records
//! (COMMIT/ABORT markers) in Kafka's format.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, TimestampType};

use super::batch::{encode_records, set_base_offset, BatchHeader};
use super::partition::PartitionLog;
use crate::error::Result;

/// A transaction that ended with an ABORT marker: the consumer drops this producer's
/// records from `first_offset` up to the marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Open and aborted transactions of one partition.
#[derive(Debug, Default)]
pub struct PartitionTxns {
    /// Producer id -> offset of its open transaction's first batch here.
    ongoing: HashMap<i64, i64>,
    /// In marker order, so sorted by `last_offset`.
    aborted: Vec<AbortedTxn>,
}

/// Kafka's ControlRecordType: the key of a control record is (version 0, type).
const ABORT: i16 = 0;
const COMMIT: i16 = 1;

impl PartitionTxns {
    /// Notes a data batch appended (or read back at start-up) at its offsets.
    pub fn on_batch(&mut self, h: &BatchHeader) {
        if h.is_transactional() && !h.is_control() {
            self.ongoing.entry(h.producer_id).or_insert(h.base_offset);
        }
    }

    /// Notes a marker at `offset` ending `producer_id`'s transaction here.
    pub fn on_marker(&mut self, producer_id: i64, commit: bool, offset: i64) {
        if let Some(first_offset) = self.ongoing.remove(&producer_id) {
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset,
                    last_offset: offset,
                });
            }
        }
    }

    /// The last stable offset: the first offset of the oldest open transaction, else
    /// the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.ongoing
            .values()
            .copied()
            .min()
            .unwrap_or(high_watermark)
            .min(high_watermark)
    }

    pub fn has_ongoing(&self, producer_id: i64) -> bool {
        self.ongoing.contains_key(&producer_id)
    }

    /// Aborted transactions a read of `[from, to]` must be told about (Kafka's
    /// `collectAbortedTransactions`: those whose range overlaps it).
    pub fn aborted_overlapping(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset <= to)
            .copied()
            .collect()
    }

    /// Every aborted range, for compaction to drop their records.
    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Forgets aborted transactions wholly below the new log start (retention).
    pub fn truncate_before(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }
}

/// Whether `r` is a data record of one of the `aborted` transactions.
pub fn is_aborted(r: &Record, aborted: &[AbortedTxn]) -> bool {
    r.transactional
        && !r.control
        && aborted.iter().any(|a| {
            a.producer_id == r.producer_id
                && a.first_offset <= r.offset
                && r.offset <= a.last_offset
        })
}

/// Encodes a control batch holding one COMMIT or ABORT marker (Kafka's
/// `EndTransactionMarker`: key = version 0 + type, value = version 0 + coordinator
/// epoch), stamped with the producer's id and epoch.
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Result<BytesMut> {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if commit { COMMIT } else { ABORT });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    encode_records(&[record], Compression::None)
}

/// The marker type of a control record's key: `Some(true)` for COMMIT, `Some(false)`
/// for ABORT, `None` for anything else.
pub fn marker_type(key: Option<&Bytes>) -> Option<bool> {
    let k = key?;
    if k.len() < 4 {
        return None;
    }
    match i16::from_be_bytes([k[2], k[3]]) {
        COMMIT => Some(true),
        ABORT => Some(false),
        _ => None,
    }
}

impl PartitionLog {
    /// Appends a COMMIT or ABORT marker for `producer_id`'s transaction (the
    /// coordinator's side of WriteTxnMarkers) and returns its offset. A marker with a
    /// newer epoch also fences the producer's older epoch on this partition.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now: i64,
    ) -> Result<i64> {
        self.check_online()?;
        let config = self.config();
        let mut batch = encode_marker(producer_id, producer_epoch, commit, coordinator_epoch, now)?;
        let mut inner = self.lock();
        let offset = inner.next_offset();
        set_base_offset(&mut batch, offset);
        let header = BatchHeader::parse(&batch)?;
        self.write_batch(&mut inner, &header, &[&batch], &config, now)?;
        inner.txns.on_marker(producer_id, commit, offset);
        Ok(offset)
    }

    /// The first offset of the oldest transaction still open here, else the log end.
    pub fn last_stable_offset(&self) -> i64 {
        let inner = self.lock();
        inner.txns.last_stable_offset(inner.next_offset())
    }

    /// Aborted transactions, for compaction to drop their records.
    pub fn aborted_txns(&self) -> Vec<AbortedTxn> {
        self.lock().txns.aborted().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::split_batches;
    use kafka_protocol::records::RecordBatchDecoder;

    fn txn_batch(pid: i64, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            size: 100,
            magic: 2,
            crc: 0,
            attributes: 0x10,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
        }
    }

    #[test]
    fn lso_is_the_oldest_open_transaction_and_aborts_are_listed_by_overlap() {
        let mut t = PartitionTxns::default();
        assert_eq!(t.last_stable_offset(10), 10);
        t.on_batch(&txn_batch(1, 10));
        t.on_batch(&txn_batch(2, 12));
        t.on_batch(&txn_batch(1, 13)); // same transaction: the first offset stays
        assert_eq!(t.last_stable_offset(20), 10);
        t.on_marker(1, false, 20);
        assert_eq!(t.last_stable_offset(21), 12);
        t.on_marker(2, true, 21);
        assert_eq!(t.last_stable_offset(22), 22);
        let a = AbortedTxn {
            producer_id: 1,
            first_offset: 10,
            last_offset: 20,
        };
        assert_eq!(t.aborted_overlapping(0, 9), vec![]);
        assert_eq!(t.aborted_overlapping(0, 10), vec![a]);
        assert_eq!(t.aborted_overlapping(20, 30), vec![a]);
        assert_eq!(t.aborted_overlapping(21, 30), vec![]);
        // A marker for a producer with nothing open here changes nothing.
        t.on_marker(3, false, 22);
        assert_eq!(t.aborted().len(), 1);
        t.truncate_before(21);
        assert!(t.aborted().is_empty());
    }

    #[test]
    fn markers_are_kafkas_control_records() {
        let b = encode_marker(42, 3, true, 0, 1_000).unwrap();
        let (h, _) = split_batches(&b).unwrap().remove(0);
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.producer_id, h.producer_epoch), (42, 3));
        let set = RecordBatchDecoder::decode(&mut b.freeze()).unwrap();
        let r = &set.records[0];
        assert_eq!(r.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        assert_eq!(r.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 0][..]));
        assert_eq!(marker_type(r.key.as_ref()), Some(true));
        let abort = encode_marker(42, 3, false, 0, 1_000).unwrap();
        let set = RecordBatchDecoder::decode(&mut abort.freeze()).unwrap();
        assert_eq!(marker_type(set.records[0].key.as_ref()), Some(false));
    }
}
