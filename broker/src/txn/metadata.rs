//! A transactional id's state as the coordinator keeps it, and its records in the
//! compacted `__transaction_state` topic in Kafka's formats (`TransactionLogKey` v0:
//! the transactional id; `TransactionLogValue` v0: producer id, epoch, timeout,
//! status, partitions, last update and start timestamps), so Kafka's tools could read
//! them and a restarted broker finishes what a crash interrupted.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::group::metadata::{get_str, put_str};

/// Kafka's `TransactionState`, with its on-disk status bytes and display names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        Some(match id {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use (Kafka's `stateName`).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

/// One transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the coordinator bumped it to abort a timed-out transaction
    /// (so that producer can still be told it was fenced); -1 otherwise. Not stored.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the current transaction's first partition was added; -1 when none is open.
    pub start_ms: i64,
}

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(KEY_VERSION);
    put_str(&mut b, transactional_id);
    b.freeze()
}

pub fn decode_key(mut b: Bytes) -> Option<String> {
    if b.remaining() < 2 || b.get_i16() != KEY_VERSION {
        return None;
    }
    get_str(&mut b)
}

pub fn encode_value(m: &TxnMetadata) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(VALUE_VERSION);
    b.put_i64(m.producer_id);
    b.put_i16(m.producer_epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.id());
    // Partitions grouped by topic, in topic order (the set is sorted).
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((last, ps)) if *last == t.as_str() => ps.push(*p),
            _ => topics.push((t, vec![*p])),
        }
    }
    b.put_i32(topics.len() as i32);
    for (t, ps) in topics {
        put_str(&mut b, t);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(p);
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    b.freeze()
}

/// Decodes a value; `None` for anything malformed (counts are checked against the
/// bytes left, so a corrupt record cannot make us allocate much).
pub fn decode_value(mut b: Bytes) -> Option<TxnMetadata> {
    if b.remaining() < 2 + 8 + 2 + 4 + 1 + 4 {
        return None;
    }
    let _version = b.get_i16();
    let producer_id = b.get_i64();
    let producer_epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_id(b.get_i8())?;
    let topics = b.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_str(&mut b)?;
        if b.remaining() < 4 {
            return None;
        }
        let n = b.get_i32().max(0) as usize;
        if b.remaining() < n * 4 {
            return None;
        }
        for _ in 0..n {
            partitions.insert((topic.clone(), b.get_i32()));
        }
    }
    if b.remaining() < 16 {
        return None;
    }
    Some(TxnMetadata {
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        last_update_ms: b.get_i64(),
        start_ms: b.get_i64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip_in_kafkas_layout() {
        let m = TxnMetadata {
            producer_id: 7,
            producer_epoch: 2,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("a".to_string(), 1),
                ("a".to_string(), 0),
                ("b".to_string(), 3),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 11,
            start_ms: 10,
        };
        let v = encode_value(&m);
        // version, pid, epoch, timeout, status, then 2 topics.
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(&v[2..10], &7i64.to_be_bytes());
        assert_eq!(v[16], 1, "Ongoing is status 1");
        assert_eq!(&v[17..21], &2i32.to_be_bytes());
        assert_eq!(decode_value(v.clone()), Some(m));
        assert_eq!(decode_key(encode_key("tx-1")), Some("tx-1".to_string()));
        // Truncated or corrupt values are refused, never a panic.
        for n in 0..v.len() {
            assert_eq!(decode_value(v.slice(..n)), None, "{n} bytes");
        }
        let mut huge = BytesMut::from(&v[..17]);
        huge.put_i32(i32::MAX);
        assert_eq!(decode_value(huge.freeze()), None);
    }
}
