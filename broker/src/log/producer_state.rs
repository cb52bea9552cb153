//! Idempotent producer state per partition: the last five batches' sequence ranges per
//! producer id, so retries are recognised and gaps refused, as Kafka's
//! ProducerStateManager does. Rebuilt from batch headers when a log is opened.

use std::collections::{HashMap, VecDeque};

use super::batch::BatchHeader;
use crate::error::ErrorCode;

/// How many batches per producer are remembered for duplicate detection.
const MAX_CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
}

/// The verdict on an incoming idempotent batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log at these offsets: acknowledge, don't append.
    Duplicate { first_offset: i64, last_offset: i64 },
    /// Refuse it with this error.
    Reject(ErrorCode),
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    pub fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if !h.is_idempotent() {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer (new, or its state aged out with retention): accept.
            return SequenceCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if h.producer_epoch > entry.epoch {
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
            };
        }
        let last_seq = h.last_sequence();
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return SequenceCheck::Duplicate {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
            };
        }
        match entry.batches.back() {
            Some(last) if h.base_sequence != next_seq(last.last_seq) => {
                SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Records a batch that was appended (or read back from the log) at its offsets.
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == MAX_CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
    }

    pub fn max_producer_id(&self) -> i64 {
        self.producers.keys().copied().max().unwrap_or(-1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            size: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        let b0 = header(7, 0, 0, 10, 0);
        assert_eq!(s.check(&b0), SequenceCheck::Append);
        s.record(&b0);
        let b1 = header(7, 0, 10, 5, 10);
        assert_eq!(s.check(&b1), SequenceCheck::Append);
        s.record(&b1);
        // A retry of b0 gets its original offsets.
        assert_eq!(
            s.check(&header(7, 0, 0, 10, 999)),
            SequenceCheck::Duplicate {
                first_offset: 0,
                last_offset: 9
            }
        );
        // A gap.
        assert_eq!(
            s.check(&header(7, 0, 20, 1, 999)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        // A stale epoch.
        assert_eq!(
            s.check(&header(7, -1, 15, 1, 999)),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        // A new epoch starts at sequence 0.
        assert_eq!(s.check(&header(7, 1, 0, 1, 15)), SequenceCheck::Append);
        assert_eq!(
            s.check(&header(7, 1, 3, 1, 15)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&header(1, 0, i, 1, i as i64));
        }
        assert_eq!(
            s.check(&header(1, 0, 6, 1, 0)),
            SequenceCheck::Duplicate {
                first_offset: 6,
                last_offset: 6
            }
        );
        assert_eq!(
            s.check(&header(1, 0, 1, 1, 0)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
    }
}
