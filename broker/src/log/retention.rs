//! Time- and size-based retention: whole closed segments are deleted, oldest first,
//! as Kafka's `retention.ms` / `retention.bytes` do. The active segment is never deleted.

use super::partition::PartitionLog;
use crate::error::Result;

impl PartitionLog {
    /// Deletes the segments retention allows to go; returns how many went.
    pub fn apply_retention(&self, now: i64) -> Result<usize> {
        let config = self.config();
        if !config.delete {
            return Ok(0);
        }
        let mut inner = self.lock();
        let closed = inner.segments.len() - 1;
        let mut keep_from = 0;
        if config.retention_ms >= 0 {
            while keep_from < closed
                && inner.segments[keep_from].max_timestamp() < now - config.retention_ms
            {
                keep_from += 1;
            }
        }
        if config.retention_bytes >= 0 {
            let mut size: u64 = inner.segments[keep_from..].iter().map(|s| s.size()).sum();
            while keep_from < closed {
                let seg = inner.segments[keep_from].size();
                if size.saturating_sub(seg) < config.retention_bytes as u64 {
                    break;
                }
                size -= seg;
                keep_from += 1;
            }
        }
        if keep_from == 0 {
            return Ok(0);
        }
        let n = self.remove_segments_before(&mut inner, keep_from)?;
        tracing::info!(topic = %self.topic, partition = self.partition, segments = n,
            log_start = inner.log_start, "retention deleted segments");
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::TopicConfig;
    use crate::log::batch::tests::batch;
    use crate::log::partition::tests::open;

    #[test]
    fn retention_by_size_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(4, "k", 0).len() as u64;
        let config = TopicConfig {
            segment_bytes: one * 2,
            retention_bytes: (one * 5) as i64,
            retention_ms: -1,
            ..TopicConfig::default()
        };
        let log = open(dir.path(), config);
        let now = 1_000_000;
        for i in 0..10 {
            log.append(&batch(4, "k", now + i), now).unwrap();
        }
        // 5 segments of 2 batches: keeping >= 5 batches' worth means dropping 2 segments.
        assert_eq!(log.apply_retention(now).unwrap(), 2);
        assert_eq!(log.log_start_offset(), 16);
        assert!(
            log.read(0, 100).is_err(),
            "deleted offsets are out of range"
        );
        assert!(!log.read(16, 100).unwrap().records.is_empty());
        assert_eq!(log.log_end_offset(), 40);

        let config = TopicConfig {
            retention_ms: 1000,
            retention_bytes: -1,
            ..log.config().as_ref().clone()
        };
        log.set_config(std::sync::Arc::new(config));
        // Everything is older than 1 s at now + 10 s, but the active segment stays.
        assert_eq!(log.apply_retention(now + 10_000).unwrap(), 2);
        assert_eq!(log.log_start_offset(), 32);
        assert_eq!(log.log_end_offset(), 40);
    }
}
