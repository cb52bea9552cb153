//! Checks a producer's record batch before it is appended, as Kafka's `LogValidator`
//! does: the header's counts and offsets agree, every record is well formed (walked
//! without allocating, decompressing as a stream when the batch is compressed), record
//! offsets run 0, 1, 2..., and a compacted topic gets no keyless record.
//!
//! Decompression is bounded: a batch may inflate to at most
//! `max(max.message.bytes, 100 × its compressed size)` bytes, and nothing of it is
//! held beyond a small window, so a few bytes of zstd or gzip cannot make the broker
//! allocate or burn CPU out of proportion to what it received.

use std::io::{self, BufRead, BufReader, Read};

use super::batch::{BatchHeader, HEADER_LEN};
use crate::error::{Error, ErrorCode, Result};

/// How far a compressed batch may inflate relative to its own size (see the module doc).
pub const MAX_COMPRESSION_RATIO: u64 = 100;
/// The largest zstd window accepted (2^24 = 16 MiB); producers use far less.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// What the validator needs to know of the partition.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `topic-partition`, for messages.
    pub partition: &'a str,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub require_keys: bool,
    /// The topic's `max.message.bytes`.
    pub max_message_bytes: usize,
}

fn invalid(msg: String) -> Error {
    Error::Kafka(ErrorCode::InvalidRecord, msg)
}

/// Validates one whole batch (`bytes` is exactly the batch, CRC already checked).
pub fn validate_batch(h: &BatchHeader, bytes: &[u8], rules: &Rules) -> Result<()> {
    let tp = rules.partition;
    if h.is_control() {
        return Err(invalid(format!(
            "Clients are not allowed to write control records in topic partition {tp}."
        )));
    }
    let count = h.record_count;
    if count <= 0 {
        return Err(invalid(format!(
            "Invalid reported count for record batch: {count} in topic partition {tp}."
        )));
    }
    if h.last_offset_delta < 0 {
        return Err(invalid(format!(
            "Batch has an invalid offset range: [{}, {}] in topic partition {tp}.",
            h.base_offset,
            h.last_offset()
        )));
    }
    if h.last_offset_delta as i64 + 1 != count as i64 {
        return Err(invalid(format!(
            "Inconsistent batch offset range [{}, {}] and count of records {count} in topic partition {tp}.",
            h.base_offset,
            h.last_offset()
        )));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(invalid(format!(
            "Invalid sequence number {} in record batch with producerId {} in topic partition {tp}.",
            h.base_sequence, h.producer_id
        )));
    }
    let body = &bytes[HEADER_LEN..h.size];
    match h.compression() {
        0 => {
            let mut src = SliceSource { buf: body, pos: 0 };
            walk_records(&mut src, count, rules)?;
            if src.pos != body.len() {
                return Err(invalid(format!(
                    "Found {} unexpected bytes after the last record of a batch in topic partition {tp}.",
                    body.len() - src.pos
                )));
            }
            Ok(())
        }
        codec => {
            let budget =
                (rules.max_message_bytes as u64).max(body.len() as u64 * MAX_COMPRESSION_RATIO);
            let reader = decompressor(codec, body).map_err(|e| corrupt(tp, &e))?;
            let mut src = StreamSource {
                reader: BufReader::with_capacity(
                    16 * 1024,
                    Bounded {
                        inner: reader,
                        budget,
                    },
                ),
            };
            walk_records(&mut src, count, rules)?;
            if src
                .reader
                .fill_buf()
                .map_err(|e| stream_error(tp, e))?
                .is_empty()
            {
                Ok(())
            } else {
                Err(invalid(format!(
                    "Found unexpected bytes after the last record of a compressed batch in topic partition {tp}."
                )))
            }
        }
    }
}

fn corrupt(tp: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Kafka(
        ErrorCode::CorruptMessage,
        format!("Failed to decompress a record batch in topic partition {tp}: {e}"),
    )
}

/// An error from inside the decompressing reader: over the budget or corrupt data.
fn stream_error(tp: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::FileTooLarge {
        Error::Kafka(
            ErrorCode::MessageTooLarge,
            format!("{e} in topic partition {tp}"),
        )
    } else {
        corrupt(tp, &e)
    }
}

fn decompressor<'a>(codec: i16, body: &'a [u8]) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        1 => Box::new(flate2::read::GzDecoder::new(body)),
        2 => Box::new(XerialSnappy::new(body)),
        3 => Box::new(lz4::Decoder::new(body)?),
        4 => {
            let mut d = zstd::stream::read::Decoder::with_buffer(body)?;
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Box::new(d)
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown compression type id {other}"),
            ))
        }
    })
}

/// A reader that fails once more than `budget` bytes came out of `inner`.
struct Bounded<R> {
    inner: R,
    budget: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.budget {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "a compressed record batch inflates past the broker's limit (max(max.message.bytes, 100 x its compressed size))",
            ));
        }
        self.budget -= n as u64;
        Ok(n)
    }
}

/// Snappy as Kafka writes it: xerial's framing (a magic header, then blocks each
/// preceded by its compressed length), or a bare snappy block without the header.
struct XerialSnappy<'a> {
    rest: &'a [u8],
    framed: Option<bool>,
    block: Vec<u8>,
    pos: usize,
    decoder: snap::raw::Decoder,
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

impl<'a> XerialSnappy<'a> {
    fn new(body: &'a [u8]) -> Self {
        XerialSnappy {
            rest: body,
            framed: None,
            block: Vec::new(),
            pos: 0,
            decoder: snap::raw::Decoder::new(),
        }
    }

    fn next_block(&mut self) -> io::Result<bool> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let framed = *self.framed.get_or_insert_with(|| {
            // Magic, then version and compatible-version (4 bytes each).
            self.rest.len() >= 16 && &self.rest[..8] == XERIAL_MAGIC
        });
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if framed {
            if self.rest.len() >= 16 && &self.rest[..8] == XERIAL_MAGIC {
                self.rest = &self.rest[16..];
                if self.rest.is_empty() {
                    return Ok(false);
                }
            }
            if self.rest.len() < 4 {
                return Err(bad("truncated snappy block length"));
            }
            let len = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]])
                as usize;
            if len > self.rest.len() - 4 {
                return Err(bad("snappy block longer than the batch"));
            }
            let block = &self.rest[4..4 + len];
            self.rest = &self.rest[4 + len..];
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let len = snap::raw::decompress_len(compressed).map_err(|e| bad(&e.to_string()))?;
        // A block cannot inflate past what the snappy format allows for its size
        // (about 6x per byte of literal copy plus framing); refuse absurd declarations
        // before allocating.
        if len as u64 > (compressed.len() as u64 + 16) * MAX_COMPRESSION_RATIO {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "a snappy block declares an uncompressed size past the broker's limit",
            ));
        }
        self.block.resize(len, 0);
        self.decoder
            .decompress(compressed, &mut self.block)
            .map_err(|e| bad(&e.to_string()))?;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for XerialSnappy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Where record bytes come from: the batch itself, or a decompressing stream.
trait Source {
    /// The next byte, or `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, io::Error>;
    /// Skips `n` bytes; false when fewer remained.
    fn skip(&mut self, n: u64) -> Result<bool, io::Error>;
}

struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, io::Error> {
        let b = self.buf.get(self.pos).copied();
        self.pos += b.is_some() as usize;
        Ok(b)
    }
    fn skip(&mut self, n: u64) -> Result<bool, io::Error> {
        if n > (self.buf.len() - self.pos) as u64 {
            self.pos = self.buf.len();
            return Ok(false);
        }
        self.pos += n as usize;
        Ok(true)
    }
}

struct StreamSource<R: Read> {
    reader: BufReader<R>,
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<Option<u8>, io::Error> {
        let buf = self.reader.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        Ok(Some(b))
    }
    fn skip(&mut self, mut n: u64) -> Result<bool, io::Error> {
        while n > 0 {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(false);
            }
            let k = (buf.len() as u64).min(n) as usize;
            self.reader.consume(k);
            n -= k as u64;
        }
        Ok(true)
    }
}

/// Counts the bytes taken from a source, to check each record's declared length.
struct Counted<'s, S: Source> {
    src: &'s mut S,
    read: u64,
}

impl<S: Source> Counted<'_, S> {
    fn byte(&mut self) -> Result<Option<u8>, io::Error> {
        let b = self.src.byte()?;
        self.read += b.is_some() as u64;
        Ok(b)
    }

    /// A zigzag varint of at most `max_bytes` bytes (5 for an int, 10 for a long).
    fn varint(&mut self, max_bytes: u32) -> Result<Option<i64>, io::Error> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let Some(b) = self.byte()? else {
                return Ok(None);
            };
            raw |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(Some((raw >> 1) as i64 ^ -((raw & 1) as i64)));
            }
        }
        Ok(None)
    }

    fn skip(&mut self, n: u64) -> Result<bool, io::Error> {
        let ok = self.src.skip(n)?;
        if ok {
            self.read += n;
        }
        Ok(ok)
    }
}

/// Walks `count` records (Kafka's `DefaultRecord` layout), checking their structure.
/// Generic over the source so the per-byte reads of the uncompressed path inline.
fn walk_records<S: Source>(src: &mut S, count: i32, rules: &Rules) -> Result<()> {
    let tp = rules.partition;
    let malformed = |i: i32, what: &str| {
        invalid(format!(
            "Found invalid record structure in record {i} of a batch in topic partition {tp}: {what}."
        ))
    };
    for i in 0..count {
        let mut c = Counted {
            src: &mut *src,
            read: 0,
        };
        let io = |e: io::Error| stream_error(tp, e);
        let Some(size) = c.varint(5).map_err(io)? else {
            return Err(malformed(
                i,
                "the batch ends before its declared record count",
            ));
        };
        if size < 0 {
            return Err(malformed(i, "negative record length"));
        }
        let start = c.read;
        let _attributes = c
            .byte()
            .map_err(io)?
            .ok_or_else(|| malformed(i, "truncated"))?;
        c.varint(10)
            .map_err(io)?
            .ok_or_else(|| malformed(i, "bad timestamp delta"))?;
        let offset_delta = c
            .varint(5)
            .map_err(io)?
            .ok_or_else(|| malformed(i, "bad offset delta"))?;
        if offset_delta != i as i64 {
            return Err(invalid(format!(
                "Record {i} of a batch in topic partition {tp} has offset delta {offset_delta}; \
                 records must have incremental offsets (expected {i})."
            )));
        }
        for field in ["key", "value"] {
            let len = c
                .varint(5)
                .map_err(io)?
                .ok_or_else(|| malformed(i, "bad length"))?;
            if len < -1 {
                return Err(malformed(i, &format!("{field} length {len}")));
            }
            if len == -1 && field == "key" && rules.require_keys {
                return Err(invalid(format!(
                    "Compacted topic cannot accept message without key in topic partition {tp}."
                )));
            }
            if len > 0 && !c.skip(len as u64).map_err(io)? {
                return Err(malformed(i, &format!("truncated {field}")));
            }
        }
        let headers = c
            .varint(5)
            .map_err(io)?
            .ok_or_else(|| malformed(i, "bad header count"))?;
        if headers < 0 {
            return Err(malformed(i, "negative header count"));
        }
        for _ in 0..headers {
            let klen = c
                .varint(5)
                .map_err(io)?
                .ok_or_else(|| malformed(i, "bad header key length"))?;
            if klen < 0 || !c.skip(klen as u64).map_err(io)? {
                return Err(malformed(i, "bad header key"));
            }
            let vlen = c
                .varint(5)
                .map_err(io)?
                .ok_or_else(|| malformed(i, "bad header value length"))?;
            if vlen < -1 || (vlen > 0 && !c.skip(vlen as u64).map_err(io)?) {
                return Err(malformed(i, "bad header value"));
            }
            if c.read - start > size as u64 {
                break;
            }
        }
        if c.read - start != size as u64 {
            return Err(invalid(format!(
                "Invalid record size: expected to read {size} bytes in record payload, but instead read {} in topic partition {tp}.",
                c.read - start
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch::tests::{batch, with_header};
    use crate::log::batch::{encode_records, plain_record, split_batches};
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    const RULES: Rules = Rules {
        partition: "t-0",
        require_keys: false,
        max_message_bytes: 1_048_588,
    };

    fn check(b: &[u8], rules: &Rules) -> Result<()> {
        let (h, range) = split_batches(b)?.remove(0);
        validate_batch(&h, &b[range], rules)
    }

    fn encoded(n: usize, value_len: usize, key: bool, compression: Compression) -> Vec<u8> {
        let records: Vec<_> = (0..n as i64)
            .map(|i| {
                let key = key.then(|| Bytes::from(format!("k{i}")));
                let value = Some(Bytes::from(vec![b'x'; value_len]));
                with_header(plain_record(i, key, value, 1000 + i))
            })
            .collect();
        encode_records(&records, compression).unwrap().to_vec()
    }

    /// Rewrites a header field at `at` and fixes the CRC, as a hostile client can.
    pub(crate) fn with_field(mut b: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn well_formed_batches_pass_in_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            check(&encoded(50, 100, true, c), &RULES).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        }
        check(&batch(3, "k", 0), &RULES).unwrap();
    }

    #[test]
    fn last_offset_delta_must_match_the_record_count() {
        // Kafka's LogValidator: "Inconsistent batch offset range".
        let b = with_field(batch(3, "k", 0), 23, &7i32.to_be_bytes());
        let e = check(&b, &RULES).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRecord);
        assert!(
            e.to_string().contains("Inconsistent batch offset range"),
            "{e}"
        );
        let b = with_field(batch(3, "k", 0), 23, &(-5i32).to_be_bytes());
        let e = check(&b, &RULES).unwrap_err();
        assert!(e.to_string().contains("invalid offset range"), "{e}");
    }

    #[test]
    fn record_count_must_match_the_records() {
        let b = with_field(batch(3, "k", 0), 57, &0i32.to_be_bytes());
        assert!(check(&b, &RULES)
            .unwrap_err()
            .to_string()
            .contains("Invalid reported count"));
        // Count and delta agree with each other but not with the 3 records present.
        let b = with_field(batch(3, "k", 0), 23, &3i32.to_be_bytes());
        let b = with_field(b, 57, &4i32.to_be_bytes());
        let e = check(&b, &RULES).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRecord, "{e}");
        let b = with_field(batch(3, "k", 0), 23, &1i32.to_be_bytes());
        let b = with_field(b, 57, &2i32.to_be_bytes());
        let e = check(&b, &RULES).unwrap_err();
        assert!(e.to_string().contains("unexpected bytes"), "{e}");
    }

    #[test]
    fn control_batches_and_bad_sequences_are_refused() {
        let b = with_field(batch(1, "k", 0), 21, &0x20i16.to_be_bytes());
        assert!(check(&b, &RULES)
            .unwrap_err()
            .to_string()
            .contains("control records"));
        let b = with_field(batch(1, "k", 0), 43, &5i64.to_be_bytes());
        assert!(check(&b, &RULES)
            .unwrap_err()
            .to_string()
            .contains("Invalid sequence number"));
    }

    #[test]
    fn compacted_topics_need_keys_also_inside_compressed_batches() {
        let rules = Rules {
            require_keys: true,
            ..RULES
        };
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let e = check(&encoded(3, 10, false, c), &rules).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidRecord);
            assert!(e.to_string().contains("without key"), "{e}");
            check(&encoded(3, 10, true, c), &rules).unwrap();
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_without_inflating_it() {
        // 64 MiB of one byte compresses to a few KiB in zstd and gzip.
        // (Snappy cannot inflate more than ~21x, so it is no bomb.)
        for c in [Compression::Zstd, Compression::Gzip, Compression::Lz4] {
            let b = encoded(64, 1 << 20, true, c);
            assert!(b.len() < 4 << 20, "{c:?} compressed to {}", b.len());
            let e = check(&b, &RULES).unwrap_err();
            assert_eq!(e.code(), ErrorCode::MessageTooLarge, "{c:?}: {e}");
        }
        // The same data is fine where the topic allows such records.
        let big = Rules {
            max_message_bytes: 100 << 20,
            ..RULES
        };
        check(&encoded(64, 1 << 20, true, Compression::Zstd), &big).unwrap();
    }

    #[test]
    fn corrupt_compressed_data_is_an_error() {
        let b = encoded(20, 100, true, Compression::Zstd);
        let mut bad = b.clone();
        for x in &mut bad[HEADER_LEN + 4..HEADER_LEN + 20] {
            *x ^= 0x5a;
        }
        let bad = with_field(bad, 0, &0i64.to_be_bytes());
        assert!(check(&bad, &RULES).is_err());
        // An unknown codec id.
        let b = with_field(b, 21, &6i16.to_be_bytes());
        assert_eq!(
            check(&b, &RULES).unwrap_err().code(),
            ErrorCode::CorruptMessage
        );
    }
}
