//! Making a partition durable: group-committed fsyncs for acks=all, `flush.messages` /
//! `flush.ms`, background fsyncs of rolled segments, and the recovery point — the base
//! offset of the first segment not known to be on disk, kept in a `recovery-point` file
//! so start-up after a crash re-validates only what may be torn.

use std::fs::{self, File};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::partition::{now_ms, LogInner, PartitionLog};
use crate::durable;
use crate::error::{Error, Result};

const RECOVERY_POINT_FILE: &str = "recovery-point";

/// The recovery point written by the last completed flush; 0 (check everything) if none.
pub(super) fn read_recovery_point(dir: &Path) -> i64 {
    fs::read_to_string(dir.join(RECOVERY_POINT_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Written only after the data it vouches for is fsynced.
fn write_recovery_point(dir: &Path, offset: i64) -> Result<()> {
    durable::write_atomic(
        &dir.join(RECOVERY_POINT_FILE),
        offset.to_string().as_bytes(),
    )
}

/// A file waiting for its fsync, with the segment base offset it belongs to.
#[derive(Debug, Clone)]
pub(super) struct Unsynced {
    pub file: Arc<File>,
    pub path: String,
    pub base: i64,
}

/// Test-only fault injection and hooks; empty (and free) in real builds.
#[derive(Default)]
pub(super) struct Faults {
    #[cfg(test)]
    pub fail_sync: std::sync::atomic::AtomicBool,
    /// Called by a compaction pass between its snapshot and its swap.
    #[cfg(test)]
    pub during_compaction: std::sync::Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    pub(super) fn compaction_running(&self) {
        #[cfg(test)]
        if let Some(hook) = self.during_compaction.lock().unwrap().as_ref() {
            hook();
        }
    }

    fn sync_error(&self) -> Option<std::io::Error> {
        #[cfg(test)]
        if self.fail_sync.load(Ordering::Acquire) {
            return Some(std::io::Error::other("injected fsync failure"));
        }
        None
    }
}

/// The closed segments waiting for an fsync, and the active one.
fn to_sync(inner: &LogInner) -> Vec<Unsynced> {
    let mut files = inner.unsynced_closed.clone();
    let active = inner.active();
    files.push(Unsynced {
        file: active.file(),
        path: active.path().display().to_string(),
        base: active.base_offset,
    });
    files
}

/// fsyncs the files (and the directory, when entries changed) and, when closed
/// segments were among them, moves the recovery point to the active segment.
fn sync_files(
    files: &[Unsynced],
    dir: &Path,
    dir_dirty: bool,
    recovery_point: Option<i64>,
) -> Result<()> {
    for u in files {
        u.file.sync_data().map_err(|e| Error::io(&u.path, e))?;
    }
    if dir_dirty {
        durable::fsync_dir(dir)?;
    }
    if let Some(offset) = recovery_point {
        write_recovery_point(dir, offset)?;
    }
    Ok(())
}

impl PartitionLog {
    /// Makes every offset below `offset` durable. Concurrent callers share one fsync:
    /// whoever waits behind the lock usually finds its data already flushed. A failed
    /// fsync takes the log offline: what it should have made durable never counts as
    /// flushed, and no later fsync can vouch for it (Linux may drop the dirty pages).
    pub async fn sync_to(&self, offset: i64) -> Result<()> {
        self.check_online()?;
        if self.flushed.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _guard = self.sync_lock.lock().await;
        self.check_online()?;
        if self.flushed.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (files, end, active_base) = {
            let mut inner = self.lock();
            inner.unflushed_messages = 0;
            inner.last_flush_ms = now_ms();
            let files = to_sync(&inner);
            (files, inner.next_offset(), inner.active().base_offset)
        };
        let closed = files.len() > 1;
        let dir = self.dir().to_path_buf();
        let dir_dirty = self.dir_dirty.swap(false, Ordering::AcqRel);
        let injected = self.faults.sync_error();
        let synced = tokio::task::spawn_blocking(move || -> Result<Vec<Unsynced>> {
            if let Some(e) = injected {
                return Err(Error::io(&files[0].path, e));
            }
            sync_files(&files, &dir, dir_dirty, closed.then_some(active_base))?;
            Ok(files)
        })
        .await
        .map_err(|e| Error::io(self.dir().display(), std::io::Error::other(e)))
        .and_then(|r| r);
        match synced {
            Ok(files) => {
                self.forget_synced(&files);
                self.flushed.fetch_max(end, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => Err(self.take_offline(e)),
        }
    }

    /// Drops the closed segments just synced from the waiting list (others may have
    /// been added meanwhile; each segment is synced once it is closed, so by base).
    fn forget_synced(&self, files: &[Unsynced]) {
        let done = files.iter().map(|u| u.base).max().unwrap_or(i64::MIN);
        self.lock().unsynced_closed.retain(|u| u.base > done);
    }

    /// Flushes when `flush.ms` has passed since the last flush and data is waiting, and
    /// fsyncs rolled segments in the background.
    pub async fn flush_if_due(&self, now: i64) -> Result<()> {
        if self.is_offline() {
            return Ok(());
        }
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

    /// Synchronous flush of everything, for shutdown (holds the log lock throughout,
    /// so nothing is appended meanwhile).
    pub fn flush_now(&self) -> Result<()> {
        self.check_online()?;
        let inner = self.lock();
        let files = to_sync(&inner);
        let active = inner.active();
        let dir_dirty = self.dir_dirty.swap(false, Ordering::AcqRel);
        let result = match self.faults.sync_error() {
            Some(e) => Err(Error::io(&files[0].path, e)),
            None => sync_files(&files, self.dir(), dir_dirty, Some(active.base_offset)),
        };
        let end = inner.next_offset();
        drop(inner);
        match result {
            Ok(()) => {
                self.forget_synced(&files);
                self.flushed.fetch_max(end, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => Err(self.take_offline(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfig;
    use crate::log::batch::tests::batch;
    use crate::log::partition::tests::open;

    /// A log of 24 records in three segments, two of them closed and not yet synced.
    fn rolled_log(dir: &Path) -> PartitionLog {
        let one = batch(4, "k", 0).len() as u64;
        let log = open(
            dir,
            TopicConfig {
                segment_bytes: one * 2,
                ..TopicConfig::default()
            },
        );
        for i in 0..6 {
            log.append(&batch(4, "k", i), 0).unwrap();
        }
        log
    }

    #[tokio::test]
    async fn rolled_segments_are_synced_and_the_recovery_point_advances() {
        let dir = tempfile::tempdir().unwrap();
        let log = rolled_log(dir.path());
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

    #[tokio::test]
    async fn a_failed_fsync_takes_the_log_offline_and_keeps_what_was_unsynced() {
        let dir = tempfile::tempdir().unwrap();
        let log = rolled_log(dir.path());
        log.faults.fail_sync.store(true, Ordering::Release);
        let err = log.sync_to(24).await.unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::KafkaStorageError);
        // Before the fix the closed segments were dropped from the list before the
        // fsync and the failure was forgotten.
        assert_eq!(
            log.lock().unsynced_closed.len(),
            2,
            "still waiting for an fsync"
        );
        assert_eq!(
            log.flushed.load(Ordering::Acquire),
            0,
            "nothing counts as flushed"
        );
        assert_eq!(
            read_recovery_point(dir.path()),
            0,
            "the recovery point stays"
        );
        // Offline: nothing is acknowledged any more, even once fsync works again.
        log.faults.fail_sync.store(false, Ordering::Release);
        for e in [
            log.append(&batch(1, "k", 9), 0).unwrap_err(),
            log.read(0, 100).unwrap_err(),
            log.sync_to(25).await.unwrap_err(),
            log.flush_now().unwrap_err(),
        ] {
            assert_eq!(e.code(), crate::error::ErrorCode::KafkaStorageError, "{e}");
            assert!(e.to_string().contains("offline"), "{e}");
        }
        assert_eq!(log.log_end_offset(), 24);
    }
}
