//! Log compaction (`cleanup.policy=compact`): closed segments are rewritten keeping only
//! the latest record per key; tombstones (null values) are dropped once older than
//! `delete.retention.ms`. Offsets never change; batches keep their producer fields.

use std::collections::HashMap;
use std::fs;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::partition::PartitionLog;
use super::segment::{file_stem, Segment};
use crate::error::{Error, Result};

/// What one compaction pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    pub records_before: usize,
    pub records_after: usize,
}

fn decode_segment(seg: &Segment) -> Result<Vec<(Compression, Vec<Record>)>> {
    let mut out = Vec::new();
    for (pos, h) in seg.headers_from(0)? {
        let data = Segment::read_at(&seg.file(), pos, h.size)
            .map_err(|e| Error::io(seg.path().display(), e))?;
        let set = RecordBatchDecoder::decode(&mut Bytes::from(data))
            .map_err(|e| Error::CorruptBatch(e.to_string()))?;
        out.push((set.compression, set.records));
    }
    Ok(out)
}

impl PartitionLog {
    /// Compacts the closed segments when the dirty share of the log reaches
    /// `min.cleanable.dirty.ratio` (or `force`).
    pub fn compact(&self, now: i64, force: bool) -> Result<Option<CompactionStats>> {
        let config = self.config();
        if !config.compact {
            return Ok(None);
        }
        let mut inner = self.lock();
        let closed = inner.segments.len() - 1;
        if closed == 0 {
            return Ok(None);
        }
        let total: u64 = inner.segments[..closed].iter().map(|s| s.size()).sum();
        let dirty: u64 = inner.segments[..closed]
            .iter()
            .filter(|s| s.next_offset() > inner.cleaned_to)
            .map(|s| s.size())
            .sum();
        let ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        if !force && (dirty == 0 || ratio < config.min_cleanable_dirty_ratio) {
            return Ok(None);
        }
        // Segments younger than min.compaction.lag.ms stay as they are.
        let cleanable = inner.segments[..closed]
            .iter()
            .take_while(|s| now - s.max_timestamp() >= config.min_compaction_lag_ms)
            .count();
        if cleanable == 0 {
            return Ok(None);
        }
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for seg in &inner.segments {
            for (_, records) in decode_segment(seg)? {
                for r in records {
                    if let Some(k) = r.key {
                        latest.insert(k, r.offset);
                    }
                }
            }
        }
        let mut stats = CompactionStats::default();
        let dir = self.dir().to_path_buf();
        let mut i = 0;
        let mut remaining = cleanable;
        while remaining > 0 {
            remaining -= 1;
            let seg = &inner.segments[i];
            let base = seg.base_offset;
            let tombstones_expire = now - seg.max_timestamp() >= config.delete_retention_ms;
            let mut out = BytesMut::new();
            for (compression, records) in decode_segment(seg)? {
                stats.records_before += records.len();
                let kept: Vec<Record> = records
                    .into_iter()
                    .filter(|r| {
                        r.key.as_ref().and_then(|k| latest.get(k)) == Some(&r.offset)
                            && !(r.value.is_none() && tombstones_expire)
                    })
                    .collect();
                stats.records_after += kept.len();
                if kept.is_empty() {
                    continue;
                }
                let opts = RecordEncodeOptions {
                    version: 2,
                    compression,
                };
                RecordBatchEncoder::encode(&mut out, &kept, &opts).map_err(|e| {
                    Error::CorruptBatch(format!("re-encoding a compacted batch: {e}"))
                })?;
            }
            let stem = file_stem(base);
            let cleaned = dir.join(format!("{stem}.log.cleaned"));
            fs::write(&cleaned, &out).map_err(|e| Error::io(cleaned.display(), e))?;
            let file = fs::File::open(&cleaned).map_err(|e| Error::io(cleaned.display(), e))?;
            file.sync_all()
                .map_err(|e| Error::io(cleaned.display(), e))?;
            let old = inner.segments.remove(i);
            old.delete()?;
            if out.is_empty() {
                let _ = fs::remove_file(&cleaned);
                continue;
            }
            let target = dir.join(format!("{stem}.log"));
            fs::rename(&cleaned, &target).map_err(|e| Error::io(target.display(), e))?;
            let (seg, _) = Segment::open(&dir, base, true)?;
            inner.segments.insert(i, seg);
            i += 1;
        }
        inner.cleaned_to = inner.segments[i.min(inner.segments.len() - 1)].base_offset;
        tracing::info!(topic = %self.topic, partition = self.partition,
            before = stats.records_before, after = stats.records_after, "compacted");
        Ok(Some(stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::partition::tests::open;

    fn keyed(pairs: &[(&str, Option<&str>)], ts: i64) -> Vec<u8> {
        let rows = pairs.iter().map(|(k, v)| {
            (
                Some(Bytes::copy_from_slice(k.as_bytes())),
                v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                ts,
            )
        });
        crate::log::batch::encode_plain(rows, Compression::Lz4)
            .unwrap()
            .to_vec()
    }

    fn all_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, 1 << 20).unwrap();
            if r.records.is_empty() {
                break;
            }
            for set in RecordBatchDecoder::decode_all(&mut r.records.clone()).unwrap() {
                for rec in set.records {
                    offset = rec.offset + 1;
                    let s = |b: &Bytes| String::from_utf8_lossy(b).to_string();
                    out.push((
                        rec.offset,
                        s(rec.key.as_ref().unwrap()),
                        rec.value.as_ref().map(s),
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn keeps_latest_per_key_and_expires_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let one = keyed(&[("a", Some("1")), ("b", Some("1"))], 0).len() as u64;
        let config = TopicConfig {
            compact: true,
            delete: false,
            segment_bytes: one,
            delete_retention_ms: 1000,
            ..TopicConfig::default()
        };
        let log = open(dir.path(), config);
        log.append(&keyed(&[("a", Some("1")), ("b", Some("1"))], 100), 0)
            .unwrap(); // 0,1
        log.append(&keyed(&[("a", Some("2")), ("c", Some("1"))], 100), 0)
            .unwrap(); // 2,3
        log.append(&keyed(&[("b", None), ("c", Some("2"))], 100), 0)
            .unwrap(); // 4,5
        log.append(&keyed(&[("d", Some("1")), ("d", Some("2"))], 5000), 0)
            .unwrap(); // 6,7 active
        let stats = log.compact(500, true).unwrap().unwrap();
        assert_eq!(
            stats,
            CompactionStats {
                records_before: 6,
                records_after: 3
            }
        );
        let s = |x: &str| Some(x.to_string());
        assert_eq!(
            all_records(&log),
            vec![
                (2, "a".into(), s("2")),
                (4, "b".into(), None),
                (5, "c".into(), s("2")),
                (6, "d".into(), s("1")),
                (7, "d".into(), s("2")),
            ]
        );
        // Much later the tombstone goes too; offsets stay.
        log.compact(100_000, true).unwrap();
        let offsets: Vec<i64> = all_records(&log).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![2, 5, 6, 7]);
        assert_eq!(log.log_end_offset(), 8);
        // Reopening finds the same.
        let cfg = log.config().as_ref().clone();
        drop(log);
        let log = open(dir.path(), cfg);
        let offsets: Vec<i64> = all_records(&log).iter().map(|r| r.0).collect();
        assert_eq!(offsets, vec![2, 5, 6, 7]);
    }
}
