//! What a processor sees while it runs inside a task: the record's time, the task's
//! stream time, its state stores, and where produced records go. Store writes are
//! remembered per key; the runtime writes the changed keys' values to the changelogs at
//! each commit.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::error::Error;
use crate::record::Output;
use crate::state::{Entries, StoreHandle};

/// Looks up a topic's partition count.
pub type PartitionsOf = Arc<dyn Fn(&str) -> Option<i32> + Send + Sync>;

pub struct TaskCtx {
    pub(crate) application_id: Arc<str>,
    pub(crate) partition: i32,
    /// The largest record timestamp this task has seen.
    pub(crate) stream_time: i64,
    /// The current record's timestamp.
    pub(crate) timestamp: i64,
    /// The current input record's offset in its partition (-1 outside processing).
    pub(crate) offset: i64,
    /// The current input record's partition: the task's, except in the `LocalRunner`,
    /// whose one task per sub-topology reads every partition.
    pub(crate) record_partition: i32,
    pub(crate) stores: HashMap<String, StoreHandle>,
    /// Keys written since the last commit, per store.
    pub(crate) dirty: HashMap<String, BTreeSet<Vec<u8>>>,
    pub(crate) out: Vec<Output>,
    pub(crate) error: Option<Error>,
    /// Records dropped because they arrived after their window's grace period.
    pub(crate) dropped_late: u64,
    /// Records an operator skipped: a null key where one is needed, a null value an
    /// aggregation ignores (Kafka's `dropped-records` metric).
    pub(crate) dropped_records: u64,
    pub(crate) global: Arc<HashMap<String, StoreHandle>>,
    /// `default.deserialization.exception.handler` = LogAndContinue: skip bad records.
    pub(crate) skip_bad_records: bool,
    /// Partition counts of output topics, for user partitioners.
    pub(crate) partitions_of: PartitionsOf,
    /// A per-task sequence for store keys that must not collide (join buffers).
    pub(crate) seq: u64,
    /// Writes to cached stores, waiting for the task's next flush.
    pub(crate) cache: super::cache::RecordCache,
}

impl TaskCtx {
    pub(crate) fn new(
        application_id: Arc<str>,
        partition: i32,
        stores: HashMap<String, StoreHandle>,
        global: Arc<HashMap<String, StoreHandle>>,
    ) -> TaskCtx {
        TaskCtx {
            application_id,
            partition,
            stream_time: i64::MIN,
            timestamp: 0,
            offset: -1,
            record_partition: partition,
            stores,
            dirty: HashMap::new(),
            out: Vec::new(),
            error: None,
            dropped_late: 0,
            dropped_records: 0,
            global,
            skip_bad_records: false,
            partitions_of: Arc::new(|_| None),
            seq: 0,
            cache: Default::default(),
        }
    }

    /// A record an operator cannot use (a null key, a null value to aggregate): skipped,
    /// logged and counted, as Kafka Streams does, never a failure.
    pub(crate) fn skip_record(&mut self, why: &str) {
        self.dropped_records += 1;
        tracing::debug!(
            partition = self.partition,
            offset = self.offset,
            "skipping a record: {why}"
        );
    }

    /// A record that cannot be deserialized: skipped and counted, or the task fails.
    pub(crate) fn bad_record(&mut self, e: Error) {
        if self.skip_bad_records {
            self.dropped_records += 1;
            tracing::warn!(error = %e, "skipping a record that cannot be deserialized");
        } else {
            self.fail(e);
        }
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub fn stream_time(&self) -> i64 {
        self.stream_time
    }
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Records the first error; the runtime stops the task with it.
    pub fn fail(&mut self, e: Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn handle(&mut self, store: &str) -> Option<StoreHandle> {
        match self.stores.get(store).or_else(|| self.global.get(store)) {
            Some(h) => Some(h.clone()),
            None => {
                self.fail(Error::UnknownStore(store.to_string()));
                None
            }
        }
    }

    pub fn get(&mut self, store: &str, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(pending) = self.cache.get(store, key) {
            return pending;
        }
        self.get_stored(store, key)
    }

    /// A key's value in the store itself, past the record cache.
    pub(crate) fn get_stored(&mut self, store: &str, key: &[u8]) -> Option<Vec<u8>> {
        let h = self.handle(store)?;
        let r = h.lock().get(key);
        r.unwrap_or_else(|e| {
            self.fail(e);
            None
        })
    }

    /// Writes (`Some`) or deletes (`None`) a key; a cached store's write waits in the
    /// record cache until the task flushes.
    pub fn put(&mut self, store: &str, key: &[u8], value: Option<&[u8]>) {
        if self.cache.caches(store) {
            self.cache.put(store, key, value);
            return;
        }
        self.put_stored(store, key, value);
    }

    /// Writes to the store itself (and its changelog at the next commit).
    pub(crate) fn put_stored(&mut self, store: &str, key: &[u8], value: Option<&[u8]>) {
        let Some(h) = self.handle(store) else { return };
        let r = match value {
            Some(v) => h.lock().put(key, v),
            None => h.lock().delete(key),
        };
        match r {
            Ok(()) => {
                self.dirty
                    .entry(store.to_string())
                    .or_default()
                    .insert(key.to_vec());
            }
            Err(e) => self.fail(e),
        }
    }

    pub fn range(&mut self, store: &str, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Entries {
        let Some(h) = self.handle(store) else {
            return Vec::new();
        };
        let r = h.lock().range(from, to);
        let stored = r.unwrap_or_else(|e| {
            self.fail(e);
            Vec::new()
        });
        crate::state::overlay::merge(stored, self.cache.range(store, from, to))
    }

    pub fn send(&mut self, out: Output) {
        self.out.push(out);
    }
}
