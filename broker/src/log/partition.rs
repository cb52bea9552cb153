//! A partition's log: an ordered list of segments, the last one active, with offset
//! assignment, idempotent-producer checks, reads for Fetch and group-committed fsyncs.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::flush::{Faults, Unsynced};
use super::producer_state::{ProducerStates, SequenceCheck};
use super::segment::Segment;
use super::transactions::{marker_type, AbortedTxn, PartitionTxns};
use super::validator::{validate_batch, Rules};
use crate::config::TopicConfig;
use crate::error::{Error, ErrorCode, Result};

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    /// True when `flush.messages` asks for an fsync now.
    pub flush_due: bool,
}

/// Bytes for a Fetch: whole batches, as stored.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For `read_committed` reads: the aborted transactions overlapping the records.
    pub aborted: Vec<AbortedTxn>,
}

/// Fetch's `isolation_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    /// Only up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

#[derive(Debug)]
pub(super) struct LogInner {
    pub(super) segments: Vec<Segment>,
    pub(super) log_start: i64,
    pub(super) producers: ProducerStates,
    pub(super) txns: PartitionTxns,
    pub(super) unflushed_messages: i64,
    pub(super) last_flush_ms: i64,
    /// Offsets below this were already compacted.
    pub(super) cleaned_to: i64,
    /// Closed segments whose data may not be on disk yet.
    pub(super) unsynced_closed: Vec<Unsynced>,
}

impl LogInner {
    pub(super) fn active(&self) -> &Segment {
        // `open` always leaves at least one segment and nothing removes the last one.
        self.segments
            .last()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }
    pub(super) fn next_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub(super) fn size(&self) -> u64 {
        self.segments.iter().map(Segment::size).sum()
    }
}

#[derive(Debug)]
pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    dir: PathBuf,
    pub(super) inner: Mutex<LogInner>,
    config: RwLock<Arc<TopicConfig>>,
    /// Every offset below this is fsynced.
    pub(super) flushed: AtomicI64,
    pub(super) sync_lock: tokio::sync::Mutex<()>,
    /// Held by a compaction pass.
    pub(super) cleaning: Mutex<()>,
    /// A segment file was created since the last directory fsync.
    pub(super) dir_dirty: AtomicBool,
    /// Set (with the reason) by a failed write or fsync: the log serves no more
    /// requests until a restart, as Kafka takes a failed log directory offline.
    offline: OnceLock<String>,
    pub(super) faults: Faults,
}

/// Base offsets of the `.log` files in a partition directory, sorted.
fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))? {
        let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// The marker type of the control batch at `pos` (`None` if it holds no marker).
fn read_marker(seg: &Segment, pos: u64, h: &BatchHeader) -> Result<Option<bool>> {
    let data = Segment::read_at(&seg.file(), pos, h.size)
        .map_err(|e| Error::io(seg.path().display(), e))?;
    let set = RecordBatchDecoder::decode(&mut Bytes::from(data))
        .map_err(|e| Error::CorruptBatch(e.to_string()))?;
    Ok(set
        .records
        .first()
        .and_then(|r| marker_type(r.key.as_ref())))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PartitionLog {
    /// Opens a partition directory, creating it if needed. With `recover` (after an
    /// unclean shutdown) the active segment is re-validated batch by batch.
    pub fn open(
        dir: &Path,
        topic: &str,
        partition: i32,
        config: Arc<TopicConfig>,
        recover: bool,
    ) -> Result<PartitionLog> {
        crate::durable::create_dir_all(dir)?;
        super::compaction::recover_swaps(dir)?;
        let bases = segment_bases(dir)?;
        let mut segments = Vec::new();
        let last = bases.len().saturating_sub(1);
        // After an unclean shutdown, every segment not known to be fsynced is checked.
        let recovery_point = super::flush::read_recovery_point(dir);
        for (i, base) in bases.iter().enumerate() {
            let check = recover && (i == last || *base >= recovery_point);
            let (seg, report) = Segment::open(dir, *base, check)?;
            if report.truncated_bytes > 0 {
                tracing::warn!(%topic, partition, bytes = report.truncated_bytes, "recovered a torn log tail");
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::open(dir, 0, false)?.0);
        }
        let mut producers = ProducerStates::default();
        let mut txns = PartitionTxns::default();
        for seg in &segments {
            for (pos, h) in seg.headers_from(0)? {
                producers.record(&h);
                txns.on_batch(&h);
                if h.is_control() {
                    if let Some(commit) = read_marker(seg, pos, &h)? {
                        txns.on_marker(h.producer_id, commit, h.base_offset);
                    }
                }
            }
        }
        let log_start = segments[0].base_offset;
        let inner = LogInner {
            segments,
            log_start,
            producers,
            txns,
            unflushed_messages: 0,
            last_flush_ms: now_ms(),
            cleaned_to: log_start,
            unsynced_closed: Vec::new(),
        };
        let next = inner.next_offset();
        Ok(PartitionLog {
            topic: topic.to_string(),
            partition,
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
            config: RwLock::new(config),
            flushed: AtomicI64::new(next),
            sync_lock: tokio::sync::Mutex::new(()),
            cleaning: Mutex::new(()),
            // The directory or the first segment may just have been created.
            dir_dirty: AtomicBool::new(true),
            offline: OnceLock::new(),
            faults: Faults::default(),
        })
    }

    /// `Err(KAFKA_STORAGE_ERROR)` once the log is offline.
    pub(super) fn check_online(&self) -> Result<()> {
        match self.offline.get() {
            None => Ok(()),
            Some(reason) => Err(Error::Kafka(
                ErrorCode::KafkaStorageError,
                format!(
                    "the log of {}-{} is offline after an I/O failure ({reason}); restart the broker once the disk is fixed",
                    self.topic, self.partition
                ),
            )),
        }
    }

    pub fn is_offline(&self) -> bool {
        self.offline.get().is_some()
    }

    /// Takes the log offline after a failed write or fsync; returns the error to report.
    pub(super) fn take_offline(&self, e: Error) -> Error {
        if self.offline.set(e.to_string()).is_ok() {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e,
                "taking the partition's log offline after an I/O failure");
        }
        Error::Kafka(ErrorCode::KafkaStorageError, e.to_string())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock would be a bug; keep serving the data regardless.
        crate::sync::lock(&self.inner)
    }

    pub fn config(&self) -> Arc<TopicConfig> {
        crate::sync::read(&self.config).clone()
    }

    pub fn set_config(&self, config: Arc<TopicConfig>) {
        *crate::sync::write(&self.config) = config;
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock().next_offset()
    }

    pub fn log_start_offset(&self) -> i64 {
        self.lock().log_start
    }

    pub fn size_bytes(&self) -> u64 {
        self.lock().size()
    }

    pub fn max_producer_id(&self) -> i64 {
        self.lock().producers.max_producer_id()
    }

    /// Validates and appends the batches of one produce request for this partition.
    pub fn append(&self, records: &[u8], now: i64) -> Result<AppendResult> {
        self.append_from(records, now, true)
    }

    /// Appends batches the broker's own coordinators wrote (e.g. a transaction's
    /// offsets, which carry a producer id without a sequence): Kafka's LogValidator
    /// applies its client-only record checks to client data alone.
    pub fn append_as_coordinator(&self, records: &[u8], now: i64) -> Result<AppendResult> {
        self.append_from(records, now, false)
    }

    fn append_from(&self, records: &[u8], now: i64, client: bool) -> Result<AppendResult> {
        self.check_online()?;
        let config = self.config();
        let batches = batch::split_batches(records)?;
        let tp = format!("{}-{}", self.topic, self.partition);
        if batches.is_empty() {
            return Err(Error::Kafka(
                ErrorCode::InvalidRecord,
                "no record batch in request".into(),
            ));
        }
        for (h, range) in &batches {
            if h.size > config.max_message_bytes {
                return Err(Error::Kafka(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "batch of {} bytes exceeds max.message.bytes={}",
                        h.size, config.max_message_bytes
                    ),
                ));
            }
            let rules = Rules {
                partition: &tp,
                require_keys: config.compact,
                max_message_bytes: config.max_message_bytes,
            };
            if client {
                validate_batch(h, &records[range.clone()], &rules)?;
            }
        }
        let mut inner = self.lock();
        let mut result: Option<AppendResult> = None;
        for (h, range) in batches {
            match inner.producers.check(&h) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    first_offset,
                    last_offset,
                } => {
                    let r = result.get_or_insert(AppendResult {
                        base_offset: first_offset,
                        last_offset,
                        log_append_time: -1,
                        flush_due: false,
                    });
                    r.last_offset = r.last_offset.max(last_offset);
                    continue;
                }
                SequenceCheck::Reject(code) => {
                    return Err(Error::Kafka(
                        code,
                        format!(
                            "producer {} epoch {} sequence {} refused",
                            h.producer_id, h.producer_epoch, h.base_sequence
                        ),
                    ));
                }
            }
            // Only the header changes (base offset, maybe the append time and CRC): it is
            // rewritten in a copy and the records are written from the request as sent.
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(&records[range.start..range.start + HEADER_LEN]);
            let rest = &records[range.start + HEADER_LEN..range.end];
            let base = inner.next_offset();
            batch::set_base_offset(&mut head, base);
            let log_append_time = if config.log_append_time {
                batch::set_log_append_time(&mut head, rest, now);
                now
            } else {
                -1
            };
            let header = BatchHeader::parse(&head)?;
            self.write_batch(&mut inner, &header, &[&head, rest], &config, now)?;
            let r = result.get_or_insert(AppendResult {
                base_offset: base,
                last_offset: header.last_offset(),
                log_append_time,
                flush_due: false,
            });
            r.last_offset = header.last_offset();
        }
        // `batches` was not empty, so `result` is set.
        let mut result = result.ok_or_else(|| Error::CorruptBatch("empty request".into()))?;
        result.flush_due = inner.unflushed_messages >= config.flush_messages;
        Ok(result)
    }

    /// Writes one batch whose base offset is set at the log end (rolling first if
    /// due) and updates the producer and transaction state.
    pub(super) fn write_batch(
        &self,
        inner: &mut LogInner,
        header: &BatchHeader,
        parts: &[&[u8]],
        config: &TopicConfig,
        now: i64,
    ) -> Result<()> {
        let written = self.maybe_roll(inner, header, config, now).and_then(|()| {
            inner
                .active_mut()
                .append(header, parts, config.index_interval_bytes)
        });
        if let Err(e) = written {
            return Err(self.take_offline(e));
        }
        inner.producers.record(header);
        inner.txns.on_batch(header);
        inner.unflushed_messages += header.record_count as i64;
        Ok(())
    }

    fn maybe_roll(
        &self,
        inner: &mut LogInner,
        next: &BatchHeader,
        config: &TopicConfig,
        now: i64,
    ) -> Result<()> {
        let active = inner.active();
        if active.size() == 0 {
            return Ok(());
        }
        let full = active.size() + next.size as u64 > config.segment_bytes;
        // As Kafka: the incoming batch's timestamp against the segment's first one, so
        // producers with old CreateTimes do not roll a segment per batch; wall-clock
        // time only when timestamps are missing.
        let old = match active.first_batch_timestamp() {
            Some(first) if first >= 0 && next.max_timestamp >= 0 => {
                next.max_timestamp - first > config.segment_ms
            }
            _ => now - active.created_ms() > config.segment_ms,
        };
        if !(full || old) {
            return Ok(());
        }
        // The old segment becomes immutable. It is fsynced outside the lock (by the next
        // sync_to or the background flusher), then the recovery point moves past it.
        let closed = Unsynced {
            file: active.file(),
            path: active.path().display().to_string(),
            base: active.base_offset,
        };
        inner.unsynced_closed.push(closed);
        let base = inner.next_offset();
        let (seg, _) = Segment::open(&self.dir, base, false)?;
        inner.segments.push(seg);
        self.dir_dirty
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Reads whole batches from `offset`: at least one batch (even above `max_bytes`, so a
    /// consumer always progresses), then more while they fit.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }

    /// [`PartitionLog::read`] with Fetch's isolation level: `read_committed` stops at
    /// the last stable offset and lists the aborted transactions in what it returns.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult> {
        self.check_online()?;
        let inner = self.lock();
        let hw = inner.next_offset();
        let log_start = inner.log_start;
        if offset < log_start || offset > hw {
            return Err(Error::Kafka(
                ErrorCode::OffsetOutOfRange,
                format!("offset {offset} is outside {log_start}..{hw}"),
            ));
        }
        let lso = inner.txns.last_stable_offset(hw);
        let upper = match isolation {
            Isolation::ReadUncommitted => hw,
            Isolation::ReadCommitted => lso,
        };
        let empty = ReadResult {
            records: Bytes::new(),
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
            aborted: Vec::new(),
        };
        if offset >= upper {
            return Ok(empty);
        }
        let first = inner
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &inner.segments[first..] {
            let start = match seg.position_of(offset)? {
                Some(p) => p,
                None => continue,
            };
            let mut end = start;
            let mut last = offset;
            while let Some(h) = seg.header_at(end)? {
                let next_end = end + h.size as u64;
                // A transaction's first batch starts at the LSO, so batches never
                // straddle it.
                if next_end > seg.size()
                    || h.base_offset >= upper
                    || (end > start && (next_end - start) as usize > max_bytes)
                {
                    break;
                }
                end = next_end;
                last = h.last_offset();
            }
            let data = Segment::read_at(&seg.file(), start, (end - start) as usize)
                .map_err(|e| Error::io(seg.path().display(), e))?;
            let aborted = match isolation {
                Isolation::ReadCommitted => inner.txns.aborted_overlapping(offset, last),
                Isolation::ReadUncommitted => Vec::new(),
            };
            return Ok(ReadResult {
                records: Bytes::from(data),
                aborted,
                ..empty
            });
        }
        Ok(empty)
    }

    /// The first offset whose record timestamp is >= `target`, with that timestamp.
    pub fn offset_for_timestamp(&self, target: i64) -> Result<Option<(i64, i64)>> {
        let inner = self.lock();
        for seg in &inner.segments {
            if seg.max_timestamp() < target {
                continue;
            }
            let start = seg.timestamp_scan_start(target)?;
            for (pos, h) in seg.headers_from(start)? {
                if h.max_timestamp < target {
                    continue;
                }
                let data = Segment::read_at(&seg.file(), pos, h.size)
                    .map_err(|e| Error::io(seg.path().display(), e))?;
                let mut b = Bytes::from(data);
                let set = RecordBatchDecoder::decode(&mut b)
                    .map_err(|e| Error::CorruptBatch(e.to_string()))?;
                let log_append = h.attributes & 0x08 != 0;
                for r in set.records {
                    let ts = if log_append {
                        h.max_timestamp
                    } else {
                        r.timestamp
                    };
                    if ts >= target && r.offset >= inner.log_start {
                        return Ok(Some((r.offset, ts)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn offset_for_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let max = self
            .lock()
            .segments
            .iter()
            .map(Segment::max_timestamp)
            .max()
            .unwrap_or(-1);
        if max < 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(max)
    }

    /// Drops the first `keep_from` segments (retention).
    pub(super) fn remove_segments_before(
        &self,
        inner: &mut LogInner,
        keep_from: usize,
    ) -> Result<usize> {
        let removed: Vec<Segment> = inner.segments.drain(..keep_from).collect();
        let n = removed.len();
        for seg in removed {
            seg.delete()?;
        }
        crate::durable::fsync_dir(&self.dir)?;
        inner.log_start = inner.log_start.max(inner.segments[0].base_offset);
        let log_start = inner.log_start;
        inner.txns.truncate_before(log_start);
        inner.cleaned_to = inner.cleaned_to.max(inner.log_start);
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch::tests::batch;

    pub(crate) fn open(dir: &Path, config: TopicConfig) -> PartitionLog {
        PartitionLog::open(dir, "t", 0, Arc::new(config), true).unwrap()
    }

    #[test]
    fn append_read_and_roll() {
        let dir = tempfile::tempdir().unwrap();
        let config = TopicConfig {
            segment_bytes: 2000,
            ..TopicConfig::default()
        };
        let log = open(dir.path(), config.clone());
        for i in 0..50 {
            let r = log.append(&batch(4, "k", 1000 + i), 0).unwrap();
            assert_eq!((r.base_offset, r.last_offset), (i * 4, i * 4 + 3));
        }
        assert!(
            log.lock().segments.len() > 1,
            "segment.bytes=2000 should roll"
        );
        let r = log.read(97, 1).unwrap();
        let h = BatchHeader::parse(&r.records).unwrap();
        assert_eq!(h.base_offset, 96, "the whole batch containing offset 97");
        assert_eq!(
            r.records.len(),
            h.size,
            "at least one batch even above max_bytes"
        );
        assert_eq!(r.high_watermark, 200);
        assert!(log.read(201, 100).is_err());
        assert!(log.read(200, 100).unwrap().records.is_empty());
        drop(log);
        let log = open(dir.path(), config);
        assert_eq!(log.log_end_offset(), 200);
        let r = log.read(0, 1 << 20).unwrap();
        let n: usize = batch::split_batches(&r.records).unwrap().len();
        assert!(n > 1 && n < 50, "one segment's batches, got {n}");
    }

    #[test]
    fn segment_ms_rolls_on_record_time_not_on_old_create_times() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(
            dir.path(),
            TopicConfig {
                segment_ms: 1000,
                ..TopicConfig::default()
            },
        );
        let now = 1_700_000_000_000;
        // Ten-year-old timestamps, 10 ms apart: one segment.
        for i in 0..5 {
            log.append(&batch(2, "k", 1_000 + i * 10), now).unwrap();
        }
        assert_eq!(log.lock().segments.len(), 1);
        // A batch 2 s after the segment's first record rolls.
        log.append(&batch(2, "k", 3_000), now).unwrap();
        assert_eq!(log.lock().segments.len(), 2);
    }

    #[test]
    fn offsets_by_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), TopicConfig::default());
        log.append(&batch(10, "k", 1000), 0).unwrap(); // ts 1000..1009
        log.append(&batch(10, "k", 2000), 0).unwrap(); // ts 2000..2009
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
        assert_eq!(log.offset_for_timestamp(1005).unwrap(), Some((5, 1005)));
        assert_eq!(log.offset_for_timestamp(1500).unwrap(), Some((10, 2000)));
        assert_eq!(log.offset_for_timestamp(2009).unwrap(), Some((19, 2009)));
        assert_eq!(log.offset_for_timestamp(3000).unwrap(), None);
    }

    #[test]
    fn flush_messages_asks_for_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(
            dir.path(),
            TopicConfig {
                flush_messages: 10,
                ..TopicConfig::default()
            },
        );
        assert!(!log.append(&batch(4, "k", 0), 0).unwrap().flush_due);
        assert!(
            log.append(&batch(8, "k", 0), 0).unwrap().flush_due,
            "12 unflushed >= 10"
        );
    }

    #[test]
    fn size_and_key_checks() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(
            dir.path(),
            TopicConfig {
                max_message_bytes: 100,
                ..TopicConfig::default()
            },
        );
        let err = log.append(&batch(10, "k", 0), 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MessageTooLarge);
        assert_eq!(log.log_end_offset(), 0);
        let err = log.append(&[1, 2, 3], 0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CorruptMessage);
    }

    #[test]
    fn log_append_time_rewrites_the_header_and_keeps_the_crc_valid() {
        // message.timestamp.type=LogAppendTime: Kafka stamps the batch's max timestamp
        // with the broker's time and sets the timestamp-type attribute.
        let dir = tempfile::tempdir().unwrap();
        let log = open(
            dir.path(),
            TopicConfig {
                log_append_time: true,
                ..TopicConfig::default()
            },
        );
        log.append(&batch(2, "k", 0), 0).unwrap();
        let r = log.append(&batch(3, "k", 1_000), 1_234_567).unwrap();
        assert_eq!((r.base_offset, r.log_append_time), (2, 1_234_567));
        let read = log.read(2, 1 << 20).unwrap();
        let (h, range) = batch::split_batches(&read.records).unwrap().remove(0);
        assert_eq!(range.len(), read.records.len());
        assert_eq!(h.max_timestamp, 1_234_567);
        assert_ne!(h.attributes & 0x08, 0, "timestamp type LogAppendTime");
        let set = RecordBatchDecoder::decode(&mut read.records.clone()).unwrap();
        assert_eq!(set.records.len(), 3);
        assert_eq!(
            log.offset_for_timestamp(1_234_567).unwrap(),
            Some((2, 1_234_567))
        );
    }

    #[test]
    fn a_lying_last_offset_delta_is_refused_and_offsets_stay_monotonic() {
        use crate::log::validator::tests::with_field;
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), TopicConfig::default());
        log.append(&batch(3, "k", 0), 0).unwrap();
        // A valid CRC over a header claiming offsets [b, b-5]: before validation this was
        // stored, moved the log end backwards, and recovery then truncated after it.
        for delta in [-5i32, 0, 9] {
            let bad = with_field(batch(3, "k", 0), 23, &delta.to_be_bytes());
            let err = log.append(&bad, 0).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidRecord, "delta {delta}: {err}");
        }
        log.append(&batch(2, "k", 0), 0).unwrap();
        assert_eq!(log.log_end_offset(), 5);
        drop(log);
        assert_eq!(open(dir.path(), TopicConfig::default()).log_end_offset(), 5);
    }
}
