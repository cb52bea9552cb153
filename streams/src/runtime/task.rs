//! A task: one sub-topology on one partition number, with its own processors and store
//! instances. It processes records one at a time, runs punctuations, and at each commit
//! hands out the changelog records for the keys it changed, followed by a commit marker
//! carrying the input offsets they reflect.
//!
//! The changelog is written only at commits, each batch tagged with an epoch header and
//! closed by its marker. Restoring applies a batch only once its marker is read, so a
//! crash between the changelog write and the offset commit neither loses nor double
//! counts: the marker's offsets tell the task which input records its state already
//! reflects, and those are skipped when they are read again.
//!
//! Records written to repartition topics carry their origin (input topic, partition,
//! offset, index among the outputs of that input record). An upstream task that crashed
//! writes the same records again when it reprocesses; the downstream task remembers the
//! last origin it applied per upstream partition — in its markers too — and skips
//! repeats. So counts after a crash are exact without broker transactions.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::record::{Output, RawRecord};
use crate::state::overlay::Overlay;
use crate::state::{StoreHandle, StoreSpec};
use crate::topology::cache::RecordCache;
use crate::topology::{
    BatchFlush, BuildCtx, CommitHook, FlushListener, PunctuationType, Punctuator, RawSink,
    SubTopology, TaskCtx,
};

/// Header naming the commit a changelog record belongs to.
pub const EPOCH_HEADER: &str = "runnel.epoch";
/// Header marking a commit marker record.
pub const COMMIT_HEADER: &str = "runnel.commit";
/// The commit marker's key: never a key a store writes, since store records carry no
/// commit header.
pub const MARKER_KEY: &[u8] = b"\0runnel.commit";
/// Header with a repartitioned record's origin.
pub const ORIGIN_HEADER: &str = "runnel.origin";

/// What a commit marker records: input offsets, and the last origin applied per
/// upstream partition of repartition topics.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub offsets: HashMap<String, i64>,
    #[serde(default)]
    pub origins: HashMap<String, (i64, u32)>,
}

/// `<topic>\0<partition>` → (offset, index), from an origin header.
fn parse_origin(v: &[u8]) -> Option<(String, (i64, u32))> {
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.split('\0');
    let (topic, partition, offset, idx) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some((
        format!("{topic}\0{partition}"),
        (offset.parse().ok()?, idx.parse().ok()?),
    ))
}

/// Kafka Streams' task id: `<sub-topology>_<partition>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub subtopology: usize,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

pub struct Task {
    pub id: TaskId,
    pub(crate) ctx: TaskCtx,
    sources: HashMap<String, Vec<RawSink>>,
    punctuators: Vec<Punctuator>,
    pub(crate) specs: Vec<StoreSpec>,
    /// Input records below these offsets are already reflected in restored state.
    pub(crate) skip_below: HashMap<String, i64>,
    /// The next offset to commit, per input topic.
    pub(crate) consumed: HashMap<String, i64>,
    /// The last origin applied per upstream partition (repartition topics).
    pub(crate) origins: HashMap<String, (i64, u32)>,
    epochs: u64,
    /// What forwards a cached store's writes when the record cache flushes.
    flush_listeners: HashMap<String, FlushListener>,
    /// The batching processors' flushes, upstream ones first.
    batches: Vec<BatchFlush>,
    /// The processors' commit callbacks, upstream ones first.
    commits: Vec<CommitHook>,
    /// Since when records wait in batches (set by the first record after a run).
    batched_since: Option<std::time::Instant>,
}

/// How long records may wait in a batch while more keep arriving: batches grow past
/// one poll's records (bigger batches share their per-batch and per-group costs),
/// within a bound on the latency they add.
pub const MAX_BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// A unique id for a commit batch: this process's start, the task, a counter.
fn epoch_id(task: TaskId, n: u64) -> Vec<u8> {
    static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    });
    format!("{start:x}-{task}-{n}").into_bytes()
}

impl Task {
    pub(crate) fn new(
        id: TaskId,
        sub: &SubTopology,
        application_id: &str,
        stores: HashMap<String, StoreHandle>,
        global: Arc<HashMap<String, StoreHandle>>,
        cache_max_bytes: usize,
    ) -> Task {
        let mut ctx = TaskCtx::new(application_id.into(), id.partition, stores, global);
        let mut overlays = HashMap::new();
        if cache_max_bytes > 0 {
            for spec in sub.stores.iter().filter(|s| s.cached) {
                let overlay = Overlay::default();
                if let Some(h) = ctx.stores.get_mut(&spec.name) {
                    h.set_overlay(overlay.clone());
                }
                overlays.insert(spec.name.clone(), overlay);
            }
        }
        let cached: HashSet<String> = overlays.keys().cloned().collect();
        ctx.cache = RecordCache::new(overlays, cache_max_bytes);
        let mut b = BuildCtx {
            cached,
            ..BuildCtx::default()
        };
        let mut sources: HashMap<String, Vec<RawSink>> = HashMap::new();
        for (topic, factory) in &sub.sources {
            sources
                .entry(topic.resolve(application_id))
                .or_default()
                .push(factory(&mut b));
        }
        ctx.stream_time = i64::MIN;
        Task {
            id,
            ctx,
            sources,
            punctuators: b.punctuators,
            specs: sub.stores.clone(),
            skip_below: HashMap::new(),
            consumed: HashMap::new(),
            origins: HashMap::new(),
            epochs: 0,
            flush_listeners: b.flush_listeners,
            batches: b.batches.into_iter().rev().collect(),
            commits: b.commits.into_iter().rev().collect(),
            batched_since: None,
        }
    }

    /// Runs the records batching processors hold when the consumer has caught up
    /// (`caught_up`: its last poll came back short) or they have waited
    /// [`MAX_BATCH_WAIT`].
    pub fn flush_batches_if_due(&mut self, caught_up: bool) -> Result<()> {
        let due = self
            .batched_since
            .is_some_and(|t| caught_up || t.elapsed() >= MAX_BATCH_WAIT);
        if due {
            self.flush_batches()?;
        }
        Ok(())
    }

    /// Runs the records batching processors hold (upstream ones first, as their
    /// results may fill batches further down); called when the consumer has caught up
    /// or they waited long enough, before punctuations and before a commit.
    pub fn flush_batches(&mut self) -> Result<()> {
        self.run_batches();
        self.batched_since = None;
        match self.ctx.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn run_batches(&mut self) {
        for _ in 0..64 {
            let mut ran = false;
            for flush in &mut self.batches {
                ran |= flush(&mut self.ctx);
            }
            if !ran {
                break;
            }
        }
    }

    /// Empties the record cache: each pending write goes to its store (and so to the
    /// changelog at commit) and its listener forwards it downstream, in write order.
    /// Forwarding may fill caches further down the same task; those are flushed too.
    pub fn flush_cache(&mut self) -> Result<()> {
        self.run_batches();
        // What processors held back (Processor::commit) goes downstream now, and
        // through any batch it fills, before the stores' pending writes.
        for commit in &mut self.commits {
            commit(&mut self.ctx);
        }
        self.run_batches();
        for _ in 0..64 {
            if self.ctx.cache.is_empty() {
                break;
            }
            for (seq, store, key, new) in self.ctx.cache.pending() {
                let listener = self.flush_listeners.get_mut(&store);
                // Only a listener needs the value being replaced.
                let old = match listener {
                    Some(_) => self.ctx.get_stored(&store, &key),
                    None => None,
                };
                self.ctx.put_stored(&store, &key, new.as_deref());
                self.ctx.cache.written(&store, &key, seq);
                if let Some(listener) = listener {
                    listener(&mut self.ctx, &key, new.as_deref(), old.as_deref());
                }
            }
        }
        match self.ctx.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &String> {
        self.sources.keys()
    }

    pub fn stream_time(&self) -> i64 {
        self.ctx.stream_time
    }

    pub fn dropped_records(&self) -> u64 {
        self.ctx.dropped_records
    }

    pub fn dropped_late_records(&self) -> u64 {
        self.ctx.dropped_late
    }

    /// Processes one input record; an error stops the task.
    pub fn process(&mut self, rec: &RawRecord) -> Result<()> {
        // No per-record allocation: the topic's name is copied once.
        match self.consumed.get_mut(&rec.topic) {
            Some(next) => *next = rec.offset + 1,
            None => {
                self.consumed.insert(rec.topic.clone(), rec.offset + 1);
            }
        }
        if self
            .skip_below
            .get(&rec.topic)
            .is_some_and(|o| rec.offset < *o)
        {
            return Ok(());
        }
        if let Some((upstream, origin)) = rec
            .headers
            .iter()
            .find(|(k, _)| k == ORIGIN_HEADER)
            .and_then(|(_, v)| parse_origin(v))
        {
            if self
                .origins
                .get(&upstream)
                .is_some_and(|seen| origin <= *seen)
            {
                return Ok(());
            }
            self.origins.insert(upstream, origin);
        }
        if self.batched_since.is_none() && !self.batches.is_empty() {
            self.batched_since = Some(std::time::Instant::now());
        }
        self.ctx.timestamp = rec.timestamp;
        self.ctx.offset = rec.offset;
        self.ctx.record_partition = rec.partition;
        let first_output = self.ctx.out.len();
        if let Some(sinks) = self.sources.get_mut(&rec.topic) {
            for s in sinks {
                s(&mut self.ctx, rec);
            }
        }
        let app = &self.ctx.application_id;
        for (i, o) in self.ctx.out[first_output..]
            .iter_mut()
            .filter(|o| o.topic.starts_with(&**app) && o.topic.ends_with("-repartition"))
            .enumerate()
        {
            let origin = format!("{}\0{}\0{}\0{i}", rec.topic, rec.partition, rec.offset);
            o.headers.push((ORIGIN_HEADER.into(), origin.into_bytes()));
        }
        self.punctuate(PunctuationType::StreamTime, self.ctx.stream_time);
        if let Some(e) = self.ctx.error.take() {
            return Err(e);
        }
        // A full cache is flushed at once rather than at the next commit.
        if self.ctx.cache.is_full() {
            self.flush_cache()?;
        }
        Ok(())
    }

    /// Runs the punctuations of `kind` that are due at `now`.
    pub fn punctuate(&mut self, kind: PunctuationType, now: i64) {
        if now == i64::MIN {
            return;
        }
        let due = |p: &Punctuator| {
            p.kind == kind
                && now
                    >= p.next
                        .unwrap_or(now - now.rem_euclid(p.interval_ms) + p.interval_ms)
        };
        if !self.batches.is_empty() && self.punctuators.iter().any(due) {
            // A punctuation sees the results of every record before it.
            self.run_batches();
        }
        for p in self.punctuators.iter_mut().filter(|p| p.kind == kind) {
            let next = *p
                .next
                .get_or_insert(now - now.rem_euclid(p.interval_ms) + p.interval_ms);
            if now >= next {
                (p.f)(&mut self.ctx, now);
                p.next = Some(now - now.rem_euclid(p.interval_ms) + p.interval_ms);
            }
        }
    }

    /// Wall-clock punctuations; errors they record stop the task.
    pub fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<()> {
        self.punctuate(PunctuationType::WallClockTime, now_ms);
        match self.ctx.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.ctx.out)
    }

    /// The changelog records of this commit: each changed key's current value (or a
    /// tombstone), then a marker per changelog with the consumed offsets.
    pub fn changelog_batch(&mut self) -> Vec<Output> {
        let dirty = std::mem::take(&mut self.ctx.dirty);
        let logged: Vec<&StoreSpec> = self.specs.iter().filter(|s| s.logged).collect();
        if logged.is_empty() {
            return Vec::new();
        }
        self.epochs += 1;
        let epoch = epoch_id(self.id, self.epochs);
        let ts = self.ctx.stream_time.max(0);
        let mut out = Vec::new();
        let marker = Marker {
            offsets: self.consumed.clone(),
            origins: self.origins.clone(),
        };
        let offsets = serde_json::to_vec(&marker).unwrap_or_default();
        for spec in logged {
            let topic = spec.changelog_topic(&self.ctx.application_id);
            let handle = self.ctx.stores.get(&spec.name).cloned();
            if let (Some(keys), Some(h)) = (dirty.get(&spec.name), handle) {
                let store = h.lock();
                for k in keys {
                    let value = match store.get(k) {
                        Ok(v) => v,
                        Err(e) => {
                            self.ctx.fail(e);
                            None
                        }
                    };
                    out.push(Output {
                        topic: topic.clone(),
                        partition: Some(self.id.partition),
                        key: Some(k.clone()),
                        value,
                        timestamp: ts,
                        headers: vec![(EPOCH_HEADER.into(), epoch.clone())],
                    });
                }
            }
            out.push(Output {
                topic,
                partition: Some(self.id.partition),
                key: Some(MARKER_KEY.to_vec()),
                value: Some(offsets.clone()),
                timestamp: ts,
                headers: vec![
                    (EPOCH_HEADER.into(), epoch.clone()),
                    (COMMIT_HEADER.into(), b"1".to_vec()),
                ],
            });
        }
        out
    }
}
