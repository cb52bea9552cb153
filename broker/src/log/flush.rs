//! Making a partition durable: group-committed fsyncs for acks=all, `flush.messages` /
//! `flush.ms`, background fsyncs of rolled segments, and the recovery point — the base
//! offset of the first segment not known to be on disk, kept in a `recovery-point` file
//! so start-up after a crash re-validates only what may be torn.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::partition::{now_ms, PartitionLog};
use crate::error::{Error, Result};

const RECOVERY_POINT_FILE: &str = "recovery-point";

/// The recovery point written by the last completed flush; 0 (check everything) if none.
pub(super) fn read_recovery_point(dir: &Path) -> i64 {
    fs::read_to_string(dir.join(RECOVERY_POINT_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_recovery_point(dir: &Path, offset: i64) -> Result<()> {
    // Written after the data it vouches for is fsynced. A stale or missing file only
    // means more checking at start-up, so the file itself needs no fsync.
    let tmp = dir.join(format!("{RECOVERY_POINT_FILE}.tmp"));
    fs::write(&tmp, offset.to_string()).map_err(|e| Error::io(tmp.display(), e))?;
    let path = dir.join(RECOVERY_POINT_FILE);
    fs::rename(&tmp, &path).map_err(|e| Error::io(path.display(), e))
}

impl PartitionLog {
    /// Makes every offset below `offset` durable. Concurrent callers share one fsync:
    /// whoever waits behind the lock usually finds its data already flushed.
    pub async fn sync_to(&self, offset: i64) -> Result<()> {
        if self.flushed.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _guard = self.sync_lock.lock().await;
        if self.flushed.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (mut files, end, active_base) = {
            let mut inner = self.lock();
            inner.unflushed_messages = 0;
            inner.last_flush_ms = now_ms();
            let mut files = std::mem::take(&mut inner.unsynced_closed);
            let active = inner.active();
            files.push((active.file(), active.path().display().to_string()));
            (files, inner.next_offset(), active.base_offset)
        };
        let closed = files.len() > 1;
        let dir = self.dir().to_path_buf();
        let synced = tokio::task::spawn_blocking(move || -> Result<()> {
            for (file, path) in files.drain(..) {
                file.sync_data().map_err(|e| Error::io(&path, e))?;
            }
            if closed {
                write_recovery_point(&dir, active_base)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::io(self.dir().display(), std::io::Error::other(e)))?;
        synced?;
        self.flushed.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// Flushes when `flush.ms` has passed since the last flush and data is waiting, and
    /// fsyncs rolled segments in the background.
    pub async fn flush_if_due(&self, now: i64) -> Result<()> {
        let flush_ms = self.config().flush_ms;
        let (due, end) = {
            let inner = self.lock();
            let timed = inner.unflushed_messages > 0 && now - inner.last_flush_ms >= flush_ms;
            (
                timed || !inner.unsynced_closed.is_empty(),
                inner.next_offset(),
            )
        };
        if due {
            self.sync_to(end).await?;
        }
        Ok(())
    }

    /// Synchronous flush of everything, for shutdown.
    pub fn flush_now(&self) -> Result<()> {
        let mut inner = self.lock();
        for (file, path) in std::mem::take(&mut inner.unsynced_closed) {
            file.sync_data().map_err(|e| Error::io(&path, e))?;
        }
        inner.active().sync()?;
        write_recovery_point(self.dir(), inner.active().base_offset)?;
        self.flushed
            .fetch_max(inner.next_offset(), Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::batch::tests::batch;
    use crate::log::partition::tests::open;

    #[tokio::test]
    async fn rolled_segments_are_synced_and_the_recovery_point_advances() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(4, "k", 0).len() as u64;
        let log = open(
            dir.path(),
            TopicConfig {
                segment_bytes: one * 2,
                ..TopicConfig::default()
            },
        );
        for i in 0..6 {
            log.append(&batch(4, "k", i), 0).unwrap();
        }
        assert_eq!(read_recovery_point(dir.path()), 0);
        assert_eq!(log.lock().unsynced_closed.len(), 2);
        log.sync_to(24).await.unwrap();
        assert!(log.lock().unsynced_closed.is_empty());
        assert_eq!(
            read_recovery_point(dir.path()),
            16,
            "the active segment starts at 16"
        );
    }
}
