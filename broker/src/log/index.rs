//! Sparse offset and time indexes of one segment, kept in memory and appended to files
//! in Kafka's entry formats: `.index` = 4-byte relative offset + 4-byte position,
//! `.timeindex` = 8-byte timestamp + 4-byte relative offset.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One file of fixed-size entries, mirrored in memory.
#[derive(Debug)]
pub struct EntryFile {
    path: PathBuf,
    file: File,
}

impl EntryFile {
    fn open(path: &Path) -> Result<(EntryFile, Vec<u8>)> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path.display(), e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(path.display(), e))?;
        Ok((
            EntryFile {
                path: path.to_path_buf(),
                file,
            },
            bytes,
        ))
    }

    fn append(&mut self, entry: &[u8]) -> Result<()> {
        self.file
            .write_all(entry)
            .map_err(|e| Error::io(self.path.display(), e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file (the handle stays valid).
    pub fn rename(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(|e| Error::io(self.path.display(), e))?;
        self.path = to.to_path_buf();
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(self.path.display(), e))
    }

    fn rewrite(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.path.display();
        self.file.set_len(0).map_err(|e| Error::io(&path, e))?;
        self.file.write_all(bytes).map_err(|e| Error::io(&path, e))
    }
}

/// Maps offsets to file positions of the batches that start there.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    entries: Vec<(u32, u32)>,
    file: EntryFile,
}

impl OffsetIndex {
    pub fn open(path: &Path, base_offset: i64) -> Result<OffsetIndex> {
        let (file, bytes) = EntryFile::open(path)?;
        let entries = bytes
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        Ok(OffsetIndex {
            base_offset,
            entries,
            file,
        })
    }

    /// The file behind the index.
    pub fn file(&mut self) -> &mut EntryFile {
        &mut self.file
    }

    /// True when the entries are strictly increasing and point inside a file of `log_size`.
    pub fn is_sane(&self, log_size: u64) -> bool {
        self.entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && self.entries.last().is_none_or(|e| (e.1 as u64) < log_size)
    }

    pub fn append(&mut self, offset: i64, position: u64) -> Result<()> {
        let rel = (offset - self.base_offset) as u32;
        let mut entry = [0u8; 8];
        entry[..4].copy_from_slice(&rel.to_be_bytes());
        entry[4..].copy_from_slice(&(position as u32).to_be_bytes());
        self.entries.push((rel, position as u32));
        self.file.append(&entry)
    }

    /// The position of the last indexed batch starting at or before `offset` (0 if none).
    pub fn lookup(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        let i = self.entries.partition_point(|e| e.0 <= rel);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1 as u64
        }
    }

    /// Drops entries at or past `position` (after a truncation).
    pub fn truncate_to_position(&mut self, position: u64) -> Result<()> {
        self.entries.retain(|e| (e.1 as u64) < position);
        let bytes: Vec<u8> = self
            .entries
            .iter()
            .flat_map(|e| e.0.to_be_bytes().into_iter().chain(e.1.to_be_bytes()))
            .collect();
        self.file.rewrite(&bytes)
    }

    pub fn clear(&mut self) -> Result<()> {
        self.truncate_to_position(0)
    }
}

/// Maps the largest timestamp seen so far to the offset of the batch that carried it.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    entries: Vec<(i64, u32)>,
    file: EntryFile,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64) -> Result<TimeIndex> {
        let (file, bytes) = EntryFile::open(path)?;
        let entries = bytes
            .chunks_exact(12)
            .map(|c| {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&c[..8]);
                (
                    i64::from_be_bytes(ts),
                    u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                )
            })
            .collect();
        Ok(TimeIndex {
            base_offset,
            entries,
            file,
        })
    }

    /// The file behind the index.
    pub fn file(&mut self) -> &mut EntryFile {
        &mut self.file
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|e| e.0)
    }

    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> Result<()> {
        if self.last_timestamp().is_some_and(|t| t >= timestamp) {
            return Ok(());
        }
        let rel = (offset - self.base_offset) as u32;
        let mut entry = [0u8; 12];
        entry[..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..].copy_from_slice(&rel.to_be_bytes());
        self.entries.push((timestamp, rel));
        self.file.append(&entry)
    }

    /// An offset from which to scan for the first record with a timestamp >= `target`:
    /// every batch before the returned offset has a smaller maximum timestamp.
    pub fn scan_start(&self, target: i64) -> i64 {
        let i = self.entries.partition_point(|e| e.0 < target);
        if i == 0 {
            self.base_offset
        } else {
            // Entry i-1's batch has max timestamp < target, so later batches are candidates.
            self.base_offset + self.entries[i - 1].1 as i64 + 1
        }
    }

    pub fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.file.rewrite(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::open(&path, 100).unwrap();
        idx.append(100, 0).unwrap();
        idx.append(150, 4096).unwrap();
        idx.append(200, 8192).unwrap();
        assert_eq!(idx.lookup(99), 0);
        assert_eq!(idx.lookup(149), 0);
        assert_eq!(idx.lookup(150), 4096);
        assert_eq!(idx.lookup(10_000), 8192);
        drop(idx);
        let mut idx = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(idx.lookup(199), 4096);
        assert!(idx.is_sane(9000));
        assert!(!idx.is_sane(8000));
        idx.truncate_to_position(5000).unwrap();
        assert_eq!(idx.lookup(10_000), 4096);
        let idx = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(idx.lookup(10_000), 4096);
    }

    #[test]
    fn time_index_scan_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), 0).unwrap();
        idx.maybe_append(1000, 0).unwrap();
        idx.maybe_append(900, 5).unwrap(); // not larger: skipped
        idx.maybe_append(2000, 10).unwrap();
        assert_eq!(idx.scan_start(500), 0);
        assert_eq!(idx.scan_start(1500), 1);
        assert_eq!(idx.scan_start(2500), 11);
    }
}
