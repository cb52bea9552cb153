//! Log compaction (`cleanup.policy=compact`): closed segments are rewritten keeping only
//! the latest record per key; tombstones (null values) are dropped once older than
//! `delete.retention.ms`. Offsets never change; batches keep their producer fields.
//! Transactions (as Kafka's LogCleaner): nothing at or past the last stable offset is
//! cleaned or counts as a newer value, records of aborted transactions are dropped and
//! never hide an older committed value, control markers are kept.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{split_batches, BatchHeader, HEADER_LEN};
use super::partition::PartitionLog;
use super::segment::{Segment, CLEANED, SWAP};
use super::transactions::{is_aborted, AbortedTxn};
use crate::durable;
use crate::error::{Error, Result};

/// What one compaction pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    pub records_before: usize,
    pub records_after: usize,
}

/// A segment as it was when the pass began: closed segments never change, and the
/// active one is read only up to the size it had.
struct Snapshot {
    base: i64,
    file: Arc<File>,
    path: String,
    size: u64,
    max_timestamp: i64,
    next_offset: i64,
}

/// What a pass keeps: the offset of each key's latest committed record, and the
/// aborted transactions whose records go.
struct Keep<'a> {
    latest: &'a HashMap<Bytes, i64>,
    aborted: &'a [AbortedTxn],
}

impl Keep<'_> {
    fn keeps(&self, r: &Record, tombstones_expire: bool) -> bool {
        r.control
            || (r.key.as_ref().and_then(|k| self.latest.get(k)) == Some(&r.offset)
                && !(r.value.is_none() && tombstones_expire)
                && !is_aborted(r, self.aborted))
    }
}

/// Calls `f` with each batch's compression and records, one batch at a time.
fn for_each_batch(
    s: &Snapshot,
    mut f: impl FnMut(Compression, Vec<Record>) -> Result<()>,
) -> Result<()> {
    let io = |e| Error::io(&s.path, e);
    let mut pos = 0u64;
    let mut head = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= s.size {
        s.file.read_exact_at(&mut head, pos).map_err(io)?;
        let h = BatchHeader::parse(&head)?;
        if pos + h.size as u64 > s.size {
            break;
        }
        let data = Segment::read_at(&s.file, pos, h.size).map_err(io)?;
        let set = RecordBatchDecoder::decode(&mut Bytes::from(data))
            .map_err(|e| Error::CorruptBatch(e.to_string()))?;
        f(set.compression, set.records)?;
        pos += h.size as u64;
    }
    Ok(())
}

/// Finishes or rolls back swaps a crash interrupted, before the segments are listed
/// (Kafka's protocol: output is written as `.cleaned`, renamed to `.swap` once
/// complete and fsynced — the `.log.swap` rename decides the swap — and only then
/// replaces the old segment).
pub(super) fn recover_swaps(dir: &Path) -> Result<()> {
    let mut changed = false;
    let mut swapped_logs = Vec::new();
    let mut leftovers = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))? {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".log.swap") {
            if let Ok(base) = stem.parse::<i64>() {
                swapped_logs.push(base);
            }
        } else if name.ends_with(CLEANED) || name.ends_with(SWAP) {
            leftovers.push(entry.path());
        }
    }
    for base in &swapped_logs {
        // Decided: the old files go (an index already renamed into place is new), the
        // new ones take their names, the log last.
        let [old_log, old_index, old_time] = Segment::paths(dir, *base, "");
        let [log, index, time] = Segment::paths(dir, *base, SWAP);
        remove_if_present(&old_log)?;
        for (swap, old) in [(&index, &old_index), (&time, &old_time)] {
            if swap.exists() {
                rename(swap, old)?;
            }
        }
        rename(&log, &old_log)?;
        tracing::warn!(dir = %dir.display(), base, "completed a compaction swap interrupted by a crash");
        changed = true;
    }
    for p in leftovers {
        // Index `.swap` files of a decided swap were renamed above; what is left is an
        // undecided pass: its output goes, the old segment stays.
        if p.exists() {
            remove_if_present(&p)?;
            changed = true;
        }
    }
    if changed {
        durable::fsync_dir(dir)?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(from.display(), e))
}

fn remove_if_present(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p.display(), e)),
        _ => Ok(()),
    }
}

impl PartitionLog {
    /// Compacts the closed segments when the dirty share of the log reaches
    /// `min.cleanable.dirty.ratio` (or `force`). The partition lock is held only to
    /// take a snapshot of the segments and, at the end, to swap the cleaned ones in:
    /// produce and fetch go on while records are read, filtered and rewritten.
    pub fn compact(&self, now: i64, force: bool) -> Result<Option<CompactionStats>> {
        let config = self.config();
        if !config.compact || self.is_offline() {
            return Ok(None);
        }
        // One pass at a time per partition.
        let Ok(_cleaning) = self.cleaning.try_lock() else {
            return Ok(None);
        };
        let (snapshots, cleanable, lso, aborted) = {
            let inner = self.lock();
            let lso = inner.txns.last_stable_offset(inner.next_offset());
            let aborted = inner.txns.aborted().to_vec();
            // Segments holding records of open transactions stay as they are.
            let closed = inner
                .segments
                .iter()
                .take(inner.segments.len() - 1)
                .take_while(|s| s.next_offset() <= lso)
                .count();
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
            let snapshots: Vec<Snapshot> = inner
                .segments
                .iter()
                .map(|s| Snapshot {
                    base: s.base_offset,
                    file: s.file(),
                    path: s.path().display().to_string(),
                    size: s.size(),
                    max_timestamp: s.max_timestamp(),
                    next_offset: s.next_offset(),
                })
                .collect();
            (snapshots, cleanable, lso, aborted)
        };
        self.faults.compaction_running();
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for s in &snapshots {
            for_each_batch(s, |_, records| {
                for r in records {
                    if r.offset >= lso || r.control || is_aborted(&r, &aborted) {
                        continue;
                    }
                    if let Some(k) = r.key {
                        latest.insert(k, r.offset);
                    }
                }
                Ok(())
            })?;
        }
        let keep = Keep {
            latest: &latest,
            aborted: &aborted,
        };
        let mut stats = CompactionStats::default();
        let dir = self.dir().to_path_buf();
        let mut cleaned: Vec<(i64, Option<Segment>)> = Vec::new();
        for s in &snapshots[..cleanable] {
            let out = self.clean_segment(s, &keep, &dir, &config, now, &mut stats)?;
            cleaned.push((s.base, out));
        }
        // Every output is complete and on disk: decide the swaps.
        for (_, seg) in cleaned.iter_mut() {
            if let Some(seg) = seg {
                seg.rename_suffix(SWAP)?;
            }
        }
        durable::fsync_dir(&dir)?;
        let cleaned_to = snapshots[cleanable - 1].next_offset;
        self.swap_in(cleaned, cleaned_to)?;
        tracing::info!(topic = %self.topic, partition = self.partition,
            before = stats.records_before, after = stats.records_after, "compacted");
        Ok(Some(stats))
    }

    /// Writes the records of `s` still needed into a `.cleaned` segment (fsynced);
    /// `None` when nothing is left.
    fn clean_segment(
        &self,
        s: &Snapshot,
        keep: &Keep<'_>,
        dir: &Path,
        config: &crate::config::TopicConfig,
        now: i64,
        stats: &mut CompactionStats,
    ) -> Result<Option<Segment>> {
        let tombstones_expire = now - s.max_timestamp >= config.delete_retention_ms;
        let mut out = Segment::create_cleaned(dir, s.base)?;
        let mut buf = BytesMut::new();
        for_each_batch(s, |compression, records| {
            stats.records_before += records.len();
            let kept: Vec<Record> = records
                .into_iter()
                .filter(|r| keep.keeps(r, tombstones_expire))
                .collect();
            stats.records_after += kept.len();
            if kept.is_empty() {
                return Ok(());
            }
            buf.clear();
            let opts = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut buf, &kept, &opts)
                .map_err(|e| Error::CorruptBatch(format!("re-encoding a compacted batch: {e}")))?;
            for (h, range) in split_batches(&buf)? {
                out.append(&h, &[&buf[range]], config.index_interval_bytes)?;
            }
            Ok(())
        })?;
        if out.size() == 0 {
            out.delete()?;
            return Ok(None);
        }
        out.sync_all_files()?;
        Ok(Some(out))
    }

    /// Replaces the old segments by their cleaned versions (or drops them when nothing
    /// was left), under the partition lock. A segment retention removed meanwhile is
    /// not brought back.
    fn swap_in(&self, cleaned: Vec<(i64, Option<Segment>)>, cleaned_to: i64) -> Result<()> {
        let mut inner = self.lock();
        for (base, new) in cleaned {
            let Some(i) = inner.segments.iter().position(|s| s.base_offset == base) else {
                if let Some(seg) = new {
                    seg.delete()?;
                }
                continue;
            };
            let old = inner.segments.remove(i);
            old.delete()?;
            if let Some(mut seg) = new {
                seg.rename_suffix("")?;
                inner.segments.insert(i, seg);
            }
        }
        inner.cleaned_to = inner.cleaned_to.max(cleaned_to);
        drop(inner);
        durable::fsync_dir(self.dir())
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

    /// A transactional batch from `pid` (epoch 0) holding one keyed record.
    fn txn_record(pid: i64, key: &str, value: &str) -> Vec<u8> {
        let mut r = crate::log::batch::plain_record(
            0,
            Some(Bytes::copy_from_slice(key.as_bytes())),
            Some(Bytes::copy_from_slice(value.as_bytes())),
            100,
        );
        (r.transactional, r.producer_id, r.producer_epoch, r.sequence) = (true, pid, 0, 0);
        crate::log::batch::encode_records(&[r], Compression::None)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn aborted_records_never_hide_committed_ones_and_open_transactions_are_left_alone() {
        // Kafka's LogCleaner: aborted transactional records are removed and do not count
        // as a newer value; markers stay; nothing at or past the LSO is cleaned.
        let dir = tempfile::tempdir().unwrap();
        let config = TopicConfig {
            compact: true,
            delete: false,
            segment_bytes: 1, // one batch per segment
            ..TopicConfig::default()
        };
        let log = open(dir.path(), config);
        log.append(&keyed(&[("a", Some("1"))], 100), 0).unwrap(); // 0
        log.append(&txn_record(5, "a", "aborted"), 0).unwrap(); // 1
        log.append_marker(5, 0, false, 0, 100).unwrap(); // 2
        log.append(&txn_record(6, "b", "committed"), 0).unwrap(); // 3
        log.append_marker(6, 0, true, 0, 100).unwrap(); // 4
        log.append(&txn_record(7, "a", "open"), 0).unwrap(); // 5: holds the LSO
        log.append(&keyed(&[("a", Some("after"))], 100), 0).unwrap(); // 6
        log.append(&keyed(&[("z", Some("active"))], 100), 0)
            .unwrap(); // 7
        log.compact(500, true).unwrap().unwrap();
        let s = |x: &str| Some(x.to_string());
        let control = |t: u8| String::from_utf8_lossy(&[0, 0, 0, t]).to_string();
        assert_eq!(
            all_records(&log),
            vec![
                (0, "a".into(), s("1")),
                (
                    2,
                    control(0),
                    Some(String::from_utf8_lossy(&[0; 6]).to_string())
                ),
                (3, "b".into(), s("committed")),
                (
                    4,
                    control(1),
                    Some(String::from_utf8_lossy(&[0; 6]).to_string())
                ),
                (5, "a".into(), s("open")),
                (6, "a".into(), s("after")),
                (7, "z".into(), s("active")),
            ]
        );
        assert_eq!(log.last_stable_offset(), 5);
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

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    /// A log of three closed segments and an active one, before and after compaction.
    fn before_and_after(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, TopicConfig) {
        let one = keyed(&[("a", Some("1")), ("b", Some("1"))], 0).len() as u64;
        let config = TopicConfig {
            compact: true,
            delete: false,
            segment_bytes: one,
            ..TopicConfig::default()
        };
        let before = root.join("before");
        let log = open(&before, config.clone());
        log.append(&keyed(&[("a", Some("1")), ("b", Some("1"))], 100), 0)
            .unwrap();
        log.append(&keyed(&[("a", Some("2")), ("c", Some("1"))], 100), 0)
            .unwrap();
        log.append(&keyed(&[("b", Some("2")), ("c", Some("2"))], 100), 0)
            .unwrap();
        log.append(&keyed(&[("d", Some("1"))], 100), 0).unwrap();
        log.flush_now().unwrap();
        drop(log);
        let after = root.join("after");
        copy_dir(&before, &after);
        let log = open(&after, config.clone());
        log.compact(500, true).unwrap().unwrap();
        drop(log);
        (before, after, config)
    }

    fn offsets(dir: &Path, config: &TopicConfig) -> Vec<i64> {
        all_records(&open(dir, config.clone()))
            .iter()
            .map(|r| r.0)
            .collect()
    }

    #[test]
    fn a_crash_at_any_step_of_a_swap_loses_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (before, after, config) = before_and_after(root.path());
        let all = vec![0, 1, 2, 3, 4, 5, 6];
        let compacted = vec![2, 4, 5, 6];
        assert_eq!(offsets(&before, &config), all);
        assert_eq!(offsets(&after, &config), compacted);
        let base = 2; // the second segment: [a=2, c=1] keeps only a=2
        let stage = |name: &str, suffix: &str, delete_old: bool| {
            let dir = root.path().join(name);
            copy_dir(&before, &dir);
            for (from, to) in Segment::paths(&after, base, "")
                .iter()
                .zip(Segment::paths(&dir, base, suffix))
            {
                if delete_old {
                    let _ = fs::remove_file(Segment::paths(&dir, base, "")[0].clone());
                }
                fs::copy(from, to).unwrap();
            }
            dir
        };
        // Output still being written: it goes, the old segment stays.
        let dir = stage("cleaned", CLEANED, false);
        assert_eq!(offsets(&dir, &config), all);
        assert!(!Segment::paths(&dir, base, CLEANED)[0].exists());
        // Output complete and decided: the swap is finished at start-up.
        let dir = stage("swap", SWAP, false);
        assert_eq!(offsets(&dir, &config), vec![0, 1, 2, 4, 5, 6]);
        // The old segment already deleted (where the earlier code then lost the
        // segment: it deleted `.cleaned` at start-up).
        let dir = stage("swap-old-gone", SWAP, true);
        assert_eq!(offsets(&dir, &config), vec![0, 1, 2, 4, 5, 6]);
        assert!(!Segment::paths(&dir, base, SWAP)[0].exists());
    }

    #[test]
    fn produce_and_fetch_go_on_while_a_pass_runs() {
        // The pass holds the partition lock only to snapshot and to swap (before, it
        // held it for the whole pass and stalled produce, fetch and flushes).
        let root = tempfile::tempdir().unwrap();
        let (before, _, config) = before_and_after(root.path());
        let log = Arc::new(open(&before, config));
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (l2, seen2) = (log.clone(), seen.clone());
        *log.faults.during_compaction.lock().unwrap() = Some(Box::new(move || {
            let free = l2.inner.try_lock().is_ok();
            let appended = free && l2.append(&keyed(&[("e", Some("1"))], 600), 0).is_ok();
            *seen2.lock().unwrap() = Some((free, appended));
        }));
        log.compact(500, true).unwrap().unwrap();
        *log.faults.during_compaction.lock().unwrap() = None;
        assert_eq!(*seen.lock().unwrap(), Some((true, true)));
        assert_eq!(log.log_end_offset(), 8);
        let got: Vec<i64> = all_records(&log).iter().map(|r| r.0).collect();
        assert_eq!(got, vec![2, 4, 5, 6, 7]);
    }
}
