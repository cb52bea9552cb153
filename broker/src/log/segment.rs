//! One segment of a partition: a `.log` file of record batches named after its base
//! offset, with its `.index` and `.timeindex`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::index::{OffsetIndex, TimeIndex};
use crate::error::{Error, Result};

/// File name stem of a segment: the base offset as 20 zero-padded digits, as Kafka names it.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// What recovery found in a segment's tail.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub valid_batches: usize,
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    path: PathBuf,
    file: Arc<File>,
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    /// Max timestamp of the first batch: the reference for `segment.ms` rolling, as in Kafka.
    first_batch_timestamp: Option<i64>,
    index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index: u64,
    /// Wall-clock creation (or opening) time, for `segment.ms` without timestamps.
    created_ms: i64,
}

impl Segment {
    /// The segment's three files; `suffix` is `""`, or `.cleaned`/`.swap` during compaction.
    pub fn paths(dir: &Path, base_offset: i64, suffix: &str) -> [PathBuf; 3] {
        let stem = file_stem(base_offset);
        ["log", "index", "timeindex"].map(|ext| dir.join(format!("{stem}.{ext}{suffix}")))
    }

    /// Opens (or creates) a segment. With `recover`, every batch is re-validated (length,
    /// magic, CRC-32C), the file is truncated at the first bad one and the indexes rebuilt;
    /// otherwise the indexes are trusted when sane and only the tail past the last index
    /// entry is read.
    pub fn open(dir: &Path, base_offset: i64, recover: bool) -> Result<(Segment, RecoveryReport)> {
        Self::open_suffixed(dir, base_offset, "", recover)
    }

    /// A new, empty segment under the compaction suffix `.cleaned` (any leftover of an
    /// earlier attempt removed first).
    pub fn create_cleaned(dir: &Path, base_offset: i64) -> Result<Segment> {
        for p in Self::paths(dir, base_offset, CLEANED) {
            remove_if_present(&p)?;
        }
        Ok(Self::open_suffixed(dir, base_offset, CLEANED, false)?.0)
    }

    fn open_suffixed(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        recover: bool,
    ) -> Result<(Segment, RecoveryReport)> {
        let [log_path, index_path, time_path] = Self::paths(dir, base_offset, suffix);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&log_path)
            .map_err(|e| Error::io(log_path.display(), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(log_path.display(), e))?
            .len();
        let mut seg = Segment {
            base_offset,
            path: log_path,
            file: Arc::new(file),
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            first_batch_timestamp: None,
            index: OffsetIndex::open(&index_path, base_offset)?,
            time_index: TimeIndex::open(&time_path, base_offset)?,
            bytes_since_index: 0,
            created_ms: crate::log::now_ms(),
        };
        let report = if recover || !seg.index.is_sane(size) {
            seg.rebuild(true)?
        } else {
            seg.load_tail()?;
            RecoveryReport::default()
        };
        Ok((seg, report))
    }

    /// Reads headers from the last index entry to the end to find the next offset.
    fn load_tail(&mut self) -> Result<()> {
        let start = self.index.lookup(i64::MAX);
        let mut pos = start;
        let mut first = true;
        while pos < self.size {
            let Some(h) = self.header_at(pos)? else { break };
            if first && pos == 0 {
                self.first_batch_timestamp = Some(h.max_timestamp);
            }
            first = false;
            self.next_offset = h.next_offset();
            self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
            self.bytes_since_index += h.size as u64;
            pos += h.size as u64;
        }
        if pos != self.size {
            // A torn tail in a segment believed clean: fall back to a full recovery.
            self.rebuild(true)?;
            return Ok(());
        }
        if let Some(ts) = self.time_index.last_timestamp() {
            self.max_timestamp = self.max_timestamp.max(ts);
        }
        if self.first_batch_timestamp.is_none() && self.size > 0 {
            self.first_batch_timestamp = self.header_at(0)?.map(|h| h.max_timestamp);
        }
        Ok(())
    }

    /// Scans every batch from the start, truncating at the first invalid one, and rebuilds
    /// both indexes.
    fn rebuild(&mut self, check_crc: bool) -> Result<RecoveryReport> {
        self.index.clear()?;
        self.time_index.clear()?;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.first_batch_timestamp = None;
        self.bytes_since_index = u64::MAX;
        let mut report = RecoveryReport::default();
        let mut pos = 0u64;
        let mut buf = Vec::new();
        while pos < self.size {
            let Some(h) = self.header_at(pos)? else { break };
            if h.base_offset < self.next_offset || pos + h.size as u64 > self.size {
                break;
            }
            if check_crc {
                buf.resize(h.size, 0);
                self.file
                    .read_exact_at(&mut buf, pos)
                    .map_err(|e| Error::io(self.path.display(), e))?;
                if batch::validate_crc(&h, &buf).is_err() {
                    break;
                }
            }
            self.index_batch(&h, pos, 4096)?;
            self.first_batch_timestamp.get_or_insert(h.max_timestamp);
            self.next_offset = h.next_offset();
            self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
            report.valid_batches += 1;
            pos += h.size as u64;
        }
        if pos < self.size {
            report.truncated_bytes = self.size - pos;
            tracing::warn!(
                segment = %self.path.display(),
                valid_bytes = pos,
                truncated_bytes = report.truncated_bytes,
                "truncating an invalid or torn tail"
            );
            self.file
                .set_len(pos)
                .map_err(|e| Error::io(self.path.display(), e))?;
            self.size = pos;
        }
        Ok(report)
    }

    /// Reads and parses the batch header at `pos`; `None` when it is not a valid header.
    pub fn header_at(&self, pos: u64) -> Result<Option<BatchHeader>> {
        if pos + HEADER_LEN as u64 > self.size {
            return Ok(None);
        }
        let mut b = [0u8; HEADER_LEN];
        self.file
            .read_exact_at(&mut b, pos)
            .map_err(|e| Error::io(self.path.display(), e))?;
        Ok(BatchHeader::parse(&b).ok())
    }

    fn index_batch(&mut self, h: &BatchHeader, pos: u64, index_interval: u64) -> Result<()> {
        if self.bytes_since_index >= index_interval {
            self.index.append(h.base_offset, pos)?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index = self.bytes_since_index.saturating_add(h.size as u64);
        self.time_index.maybe_append(h.max_timestamp, h.base_offset)
    }

    /// Appends one batch whose base offset was already assigned, given as consecutive
    /// parts (a rewritten header and the records as the producer sent them).
    pub fn append(&mut self, h: &BatchHeader, parts: &[&[u8]], index_interval: u64) -> Result<()> {
        let pos = self.size;
        let mut at = pos;
        for part in parts {
            self.file
                .write_all_at(part, at)
                .map_err(|e| Error::io(self.path.display(), e))?;
            at += part.len() as u64;
        }
        if self.size == 0 {
            self.bytes_since_index = u64::MAX;
        }
        self.size = at;
        self.index_batch(h, pos, index_interval)?;
        self.first_batch_timestamp.get_or_insert(h.max_timestamp);
        self.next_offset = h.next_offset();
        self.max_timestamp = self.max_timestamp.max(h.max_timestamp);
        Ok(())
    }

    /// The position of the batch containing `offset` or the first one after it.
    pub fn position_of(&self, offset: i64) -> Result<Option<u64>> {
        let mut pos = self.index.lookup(offset);
        while pos < self.size {
            let Some(h) = self.header_at(pos)? else {
                return Ok(None);
            };
            if h.last_offset() >= offset {
                return Ok(Some(pos));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Headers of the batches from `pos` on, with their positions.
    pub fn headers_from(&self, mut pos: u64) -> Result<Vec<(u64, BatchHeader)>> {
        let mut out = Vec::new();
        while let Some(h) = self.header_at(pos)? {
            out.push((pos, h));
            pos += h.size as u64;
        }
        Ok(out)
    }

    /// The first position to scan for a timestamp >= `target`.
    pub fn timestamp_scan_start(&self, target: i64) -> Result<u64> {
        let offset = self.time_index.scan_start(target);
        Ok(self.position_of(offset)?.unwrap_or(self.size))
    }

    pub fn read_at(file: &File, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    pub fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(self.path.display(), e))
    }

    /// fsyncs the log and both indexes (a compacted segment is trusted after a crash).
    pub fn sync_all_files(&mut self) -> Result<()> {
        self.sync()?;
        self.index.file().sync()?;
        self.time_index.file().sync()
    }

    /// Renames the three files to carry `suffix` (`""` for the final names). The
    /// indexes go first and the `.log` last: the log file's name is what recovery
    /// reads as the state of a swap.
    pub fn rename_suffix(&mut self, suffix: &str) -> Result<()> {
        let dir = self.dir();
        let [log, index, time] = Self::paths(&dir, self.base_offset, suffix);
        self.index.file().rename(&index)?;
        self.time_index.file().rename(&time)?;
        fs::rename(&self.path, &log).map_err(|e| Error::io(self.path.display(), e))?;
        self.path = log;
        Ok(())
    }

    fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Removes the segment's files, the `.log` first (once it is gone the segment is).
    pub fn delete(mut self) -> Result<()> {
        remove_if_present(&self.path)?;
        remove_if_present(self.index.file().path())?;
        remove_if_present(self.time_index.file().path())
    }
}

/// The suffix of a compaction's output while it is being written.
pub const CLEANED: &str = ".cleaned";
/// The suffix of a compaction's output once it is complete and decided.
pub const SWAP: &str = ".swap";

fn remove_if_present(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p.display(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{set_base_offset, split_batches, tests::batch};
    use std::io::Write;

    fn append_batches(seg: &mut Segment, n: usize, per_batch: i64) {
        let mut next = seg.next_offset();
        for _ in 0..n {
            let mut b = batch(per_batch, "k", 1_000 + next);
            set_base_offset(&mut b, next);
            let h = split_batches(&b).unwrap()[0].0;
            seg.append(&h, &[&b], 200).unwrap();
            next = h.next_offset();
        }
    }

    #[test]
    fn append_reopen_and_find_positions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, _) = Segment::open(dir.path(), 0, false).unwrap();
        append_batches(&mut seg, 20, 5);
        assert_eq!(seg.next_offset(), 100);
        let size = seg.size();
        drop(seg);
        let (seg, report) = Segment::open(dir.path(), 0, false).unwrap();
        assert_eq!(report, RecoveryReport::default());
        assert_eq!((seg.next_offset(), seg.size()), (100, size));
        let pos = seg.position_of(57).unwrap().unwrap();
        let h = seg.header_at(pos).unwrap().unwrap();
        assert_eq!(h.base_offset, 55);
        assert_eq!(seg.position_of(100).unwrap(), None);
    }

    #[test]
    fn recovery_truncates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, _) = Segment::open(dir.path(), 0, false).unwrap();
        append_batches(&mut seg, 10, 3);
        let good = seg.size();
        let path = seg.path().to_path_buf();
        drop(seg);
        // Half a batch written by a crash.
        let mut torn = batch(3, "k", 0);
        set_base_offset(&mut torn, 30);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() / 2]).unwrap();
        drop(f);
        let (seg, report) = Segment::open(dir.path(), 0, true).unwrap();
        assert_eq!(report.valid_batches, 10);
        assert_eq!(report.truncated_bytes, (torn.len() / 2) as u64);
        assert_eq!((seg.size(), seg.next_offset()), (good, 30));
        assert_eq!(fs::metadata(&path).unwrap().len(), good);
    }

    #[test]
    fn recovery_truncates_at_a_corrupt_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, _) = Segment::open(dir.path(), 0, false).unwrap();
        append_batches(&mut seg, 4, 3);
        let path = seg.path().to_path_buf();
        let third = seg.position_of(6).unwrap().unwrap();
        drop(seg);
        let mut bytes = fs::read(&path).unwrap();
        let flip = third as usize + 70;
        bytes[flip] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let (seg, report) = Segment::open(dir.path(), 0, true).unwrap();
        assert_eq!(report.valid_batches, 2);
        assert_eq!((seg.size(), seg.next_offset()), (third, 6));
    }

    #[test]
    fn garbage_file_recovers_to_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(format!("{}.log", file_stem(0))),
            vec![0xabu8; 5000],
        )
        .unwrap();
        let (seg, report) = Segment::open(dir.path(), 0, true).unwrap();
        assert_eq!(
            (seg.size(), seg.next_offset(), report.truncated_bytes),
            (0, 0, 5000)
        );
    }
}
