//! Restoring a task's stores: its changelog partitions are read into them before it
//! processes anything (`mod.rs`), a commit batch applied only once its marker is read
//! (`batches.rs`).

mod batches;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use self::batches::Restorer;
use super::task::Task;
use crate::error::{Error, Result};

/// Observes restoration, as Kafka Streams' StateRestoreListener.
pub trait StateRestoreListener: Send + Sync {
    fn on_restore_start(
        &self,
        _store: &str,
        _partition: i32,
        _start_offset: i64,
        _end_offset: i64,
    ) {
    }
    fn on_batch_restored(
        &self,
        _store: &str,
        _partition: i32,
        _batch_end_offset: i64,
        _restored: u64,
    ) {
    }
    fn on_restore_end(&self, _store: &str, _partition: i32, _total_restored: u64) {}
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer's position in `topic`-`partition` (-1 when it has none).
fn position(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    consumer
        .position()
        .ok()
        .and_then(|tpl| match tpl.find_partition(topic, partition)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .unwrap_or(-1)
}
/// Records applied between progress reports.
const BATCH: u64 = 10_000;

/// Restores every logged store of `task` from its changelog partition; the task then
/// skips input its restored state already reflects, and rewrites keys of dropped
/// (uncommitted) batches at its next commit.
pub fn restore(
    consumer: &BaseConsumer,
    task: &mut Task,
    listener: Option<&dyn StateRestoreListener>,
) -> Result<()> {
    let partition = task.id.partition;
    let specs: Vec<_> = task.specs.iter().filter(|s| s.logged).cloned().collect();
    for spec in specs {
        let topic = spec.changelog_topic(&task.ctx.application_id);
        let Some(handle) = task.ctx.stores.get(&spec.name).cloned() else {
            continue;
        };
        let (low, high) = consumer.fetch_watermarks(&topic, partition, TIMEOUT)?;
        handle.lock().clear()?;
        if let Some(l) = listener {
            l.on_restore_start(&spec.name, partition, low, high);
        }
        let mut restorer = Restorer::default();
        if high > low {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition, Offset::Beginning)?;
            consumer.assign(&tpl)?;
            let mut next = low;
            let mut idle = std::time::Instant::now();
            let mut store = handle.lock();
            while next < high {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        idle = std::time::Instant::now();
                        next = m.offset() + 1;
                        let headers: Vec<(String, Vec<u8>)> = m
                            .headers()
                            .map(|hs| {
                                hs.iter()
                                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                    .collect()
                            })
                            .unwrap_or_default();
                        restorer.apply(&mut **store, m.key().unwrap_or_default(), m.payload(), &headers)?;
                        if restorer.applied % BATCH == 0 {
                            if let Some(l) = listener {
                                l.on_batch_restored(&spec.name, partition, next, restorer.applied);
                            }
                        }
                    }
                    Some(Err(e)) => return Err(e.into()),
                    // Under read_committed the log may end with a transaction marker,
                    // which is never delivered: librdkafka's position moves past it.
                    None if position(consumer, &topic, partition) >= high => break,
                    None if idle.elapsed() > TIMEOUT => {
                        return Err(Error::Runtime(format!(
                            "restoring {topic}-{partition}: no records for {TIMEOUT:?} at offset {next} of {high}"
                        )))
                    }
                    None => {}
                }
            }
            consumer.unassign()?;
        }
        restorer.finish();
        if let Some(marker) = restorer.marker.take() {
            for (upstream, origin) in marker.origins {
                let e = task.origins.entry(upstream).or_insert(origin);
                *e = (*e).max(origin);
            }
            for (t, o) in marker.offsets {
                let e = task.skip_below.entry(t.clone()).or_insert(o);
                *e = (*e).max(o);
                // The next commit (and its marker) starts from here, not from nothing.
                let c = task.consumed.entry(t).or_insert(o);
                *c = (*c).max(o);
            }
        }
        if !restorer.dropped.is_empty() {
            task.ctx
                .dirty
                .entry(spec.name.clone())
                .or_default()
                .extend(restorer.dropped.iter().cloned());
        }
        tracing::info!(store = %spec.name, partition, restored = restorer.applied, "state store restored");
        if let Some(l) = listener {
            l.on_restore_end(&spec.name, partition, restorer.applied);
        }
    }
    Ok(())
}
