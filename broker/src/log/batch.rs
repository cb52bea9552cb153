//! Kafka v2 record batch headers: parsing, validation and the few in-place rewrites the
//! broker makes (base offset, log-append time).
//!
//! Layout (big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8, crc u32, attributes i16, lastOffsetDelta i32, baseTimestamp i64,
//! maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence i32, recordCount i32.
//! The CRC-32C covers attributes through the end, so rewriting the base offset, the
//! length or the leader epoch keeps it valid.

use crate::error::{Error, Result};

/// Bytes before `batchLength`'s payload: base offset and the length itself.
pub const LOG_OVERHEAD: usize = 12;
/// The size of a v2 batch header.
pub const HEADER_LEN: usize = 61;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// The fields of a batch header the broker cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size on disk, including the 12-byte log overhead.
    pub size: usize,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses a header from at least [`HEADER_LEN`] bytes. Checks the magic byte and that
    /// the declared length is plausible, not the CRC (see [`validate_crc`]).
    pub fn parse(b: &[u8]) -> Result<BatchHeader> {
        if b.len() < HEADER_LEN {
            return Err(Error::CorruptBatch(format!(
                "batch header needs {HEADER_LEN} bytes, got {}",
                b.len()
            )));
        }
        let length = be_i32(b, 8);
        if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(Error::CorruptBatch(format!(
                "batch length {length} is too small"
            )));
        }
        let magic = b[16] as i8;
        if magic != 2 {
            return Err(Error::CorruptBatch(format!(
                "record batch magic {magic} is not supported (only v2 batches)"
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(b, 0),
            size: length as usize + LOG_OVERHEAD,
            magic,
            crc: be_i32(b, CRC_OFFSET) as u32,
            attributes: be_i16(b, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(b, 23),
            base_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(b, 43),
            producer_epoch: be_i16(b, 51),
            base_sequence: be_i32(b, 53),
            record_count: be_i32(b, 57),
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        // Sequences wrap at i32::MAX, as Kafka's DefaultRecordBatch.incrementSequence.
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }

    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
}

/// Checks the CRC-32C of a whole batch (`b` is exactly one batch).
pub fn validate_crc(header: &BatchHeader, b: &[u8]) -> Result<()> {
    let actual = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..header.size]);
    if actual != header.crc {
        return Err(Error::CorruptBatch(format!(
            "CRC mismatch at offset {}: stored {:#010x}, computed {actual:#010x}",
            header.base_offset, header.crc
        )));
    }
    Ok(())
}

/// Rewrites the base offset of the batch at the start of `b`.
pub fn set_base_offset(b: &mut [u8], offset: i64) {
    b[0..8].copy_from_slice(&offset.to_be_bytes());
}

/// Marks a batch as log-append-time stamped with `now` and recomputes its CRC. The
/// batch is given as its header (`head`, rewritten) and the records after it (`rest`),
/// so the records need not be copied.
pub fn set_log_append_time(head: &mut [u8; HEADER_LEN], rest: &[u8], now: i64) {
    let attrs = be_i16(head, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    head[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    head[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[ATTRIBUTES_OFFSET..]), rest);
    head[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a produce request's record bytes into batches, checking each header and CRC.
pub fn split_batches(records: &[u8]) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let header = BatchHeader::parse(&records[pos..])?;
        let end = pos + header.size;
        if end > records.len() {
            return Err(Error::CorruptBatch(format!(
                "batch declares {} bytes but only {} remain",
                header.size,
                records.len() - pos
            )));
        }
        validate_crc(&header, &records[pos..end])?;
        out.push((header, pos..end));
        pos = end;
    }
    Ok(out)
}

/// A plain (non-idempotent) record at `offset` of its batch, as the broker writes its
/// own records (`__consumer_offsets`) and compaction rewrites them.
pub fn plain_record(
    offset: i64,
    key: Option<bytes::Bytes>,
    value: Option<bytes::Bytes>,
    timestamp: i64,
) -> kafka_protocol::records::Record {
    kafka_protocol::records::Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset,
        // offset - sequence must be constant inside a batch; the base sequence is -1.
        sequence: offset as i32 - 1,
        timestamp,
        key,
        value,
        headers: Default::default(),
    }
}

/// Encodes records into one v2 batch.
pub fn encode_records(
    records: &[kafka_protocol::records::Record],
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::BytesMut> {
    use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions};
    let mut buf = bytes::BytesMut::new();
    let opts = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &opts)
        .map_err(|e| Error::CorruptBatch(format!("encoding a batch: {e}")))?;
    Ok(buf)
}

/// Encodes plain records with offsets from 0 into one v2 batch. Each row is
/// (key, value, timestamp).
pub fn encode_plain(
    rows: impl IntoIterator<Item = (Option<bytes::Bytes>, Option<bytes::Bytes>, i64)>,
    compression: kafka_protocol::records::Compression,
) -> Result<bytes::BytesMut> {
    let records: Vec<_> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (key, value, timestamp))| plain_record(i as i64, key, value, timestamp))
        .collect();
    encode_records(&records, compression)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    /// A record with one header (`h` = `v`), so header parsing is exercised.
    pub(crate) fn with_header(
        mut r: kafka_protocol::records::Record,
    ) -> kafka_protocol::records::Record {
        r.headers = [(
            kafka_protocol::protocol::StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"v")),
        )]
        .into_iter()
        .collect();
        r
    }

    /// Encodes `n` keyed records into one v2 batch starting at offset 0.
    pub(crate) fn batch(n: i64, key_prefix: &str, ts: i64) -> Vec<u8> {
        let rows = (0..n).map(|i| {
            let key = Bytes::from(format!("{key_prefix}{i}"));
            (Some(key), Some(Bytes::from(format!("value-{i}"))), ts + i)
        });
        encode_plain(rows, Compression::None).unwrap().to_vec()
    }

    #[test]
    fn parses_and_validates_an_encoded_batch() {
        let b = batch(3, "k", 1000);
        let batches = split_batches(&b).unwrap();
        assert_eq!(batches.len(), 1);
        let h = batches[0].0;
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.record_count),
            (0, 2, 3)
        );
        assert_eq!(h.size, b.len());
        assert_eq!(h.max_timestamp, 1002);
    }

    #[test]
    fn base_offset_rewrite_keeps_crc_valid_and_flipped_byte_breaks_it() {
        let mut b = batch(2, "k", 0);
        set_base_offset(&mut b, 1234);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 1234);
        validate_crc(&h, &b).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(validate_crc(&h, &b).is_err());
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error_not_a_panic() {
        let b = batch(2, "k", 0);
        assert!(split_batches(&b[..b.len() - 1]).is_err());
        assert!(split_batches(&b[..10]).is_err());
        assert!(split_batches(&[0xff; 80]).is_err());
    }
}
