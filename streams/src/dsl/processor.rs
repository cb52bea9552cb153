//! The Processor API underneath the DSL: a processor sees each record with a context
//! that reads and writes the task's stores, forwards records downstream, and is called
//! back on stream-time or wall-clock punctuations.

use std::sync::{Arc, Mutex};

use super::kstream::KStream;
use crate::record::Record;
use crate::serde::Serde;
use crate::topology::{Node, PunctuationType, Sink, TaskCtx};

pub trait Processor<K, V, KO, VO>: Send {
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KO, VO>) {}
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KO, VO>, record: Record<K, V>);
    /// How many records this processor takes at once; 1 (the default) processes each
    /// record as it arrives. Above 1 the task collects records and calls
    /// [`Processor::process_batch`] when that many wait, when the consumer has caught
    /// up with its input or records have waited 20 ms
    /// (`runtime::task::MAX_BATCH_WAIT`), and always before a punctuation and before a
    /// commit, so a batch's results are written before the offsets of its input are
    /// committed — the guarantees of the per-record path. Records reach a batching processor later
    /// than their neighbours in the graph, so it suits processors whose outputs go to a
    /// sink, and ones that do not read the task's stream time; outputs a batch writes
    /// to a repartition topic carry no origin header (by which a task drops records a
    /// crash made it read twice).
    fn max_batch(&self) -> usize {
        1
    }
    /// A batch of records, each with its offset; the default processes each in turn
    /// with its own timestamp and offset in `ctx`.
    fn process_batch(&mut self, ctx: &mut ProcessorContext<'_, KO, VO>, batch: Vec<Batched<K, V>>) {
        for b in batch {
            ctx.process_as(&b);
            self.process(ctx, b.record);
        }
    }
    /// Called when the task commits, after its batches ran and before its record
    /// cache is flushed: a processor that holds results back (as a cached KTable
    /// holds its updates) forwards them here, so they are written before the offsets
    /// of their input are committed.
    fn commit(&mut self, _ctx: &mut ProcessorContext<'_, KO, VO>) {}
    /// The punctuations this processor wants: (type, interval in ms).
    fn punctuations(&self) -> Vec<(PunctuationType, i64)> {
        Vec::new()
    }
    fn punctuate(
        &mut self,
        _ctx: &mut ProcessorContext<'_, KO, VO>,
        _kind: PunctuationType,
        _time: i64,
    ) {
    }
}

/// A record waiting in a batch, with the partition and offset it had in its input
/// topic.
pub struct Batched<K, V> {
    pub record: Record<K, V>,
    pub partition: i32,
    pub offset: i64,
}

/// What a processor may do while it runs.
pub struct ProcessorContext<'a, KO, VO> {
    pub(crate) task: &'a mut TaskCtx,
    pub(crate) next: &'a mut Sink<KO, VO>,
}

impl<KO, VO> ProcessorContext<'_, KO, VO> {
    /// Makes a batched record the one being processed (its timestamp and offset are
    /// what `timestamp()` and `offset()` answer), for a batching processor that handles
    /// records one at a time.
    pub fn process_as<K, V>(&mut self, b: &Batched<K, V>) {
        self.task.timestamp = b.record.timestamp;
        self.task.offset = b.offset;
        self.task.record_partition = b.partition;
    }

    pub fn forward(&mut self, record: Record<KO, VO>) {
        (self.next)(self.task, record)
    }
    pub fn stream_time(&self) -> i64 {
        self.task.stream_time
    }
    pub fn timestamp(&self) -> i64 {
        self.task.timestamp
    }
    /// The partition of the input record being processed (Kafka's
    /// `ProcessorContext.partition()`; ksqlDB's ROWPARTITION).
    // The task's own partition is another thing (its stores' changelog partition).
    #[allow(clippy::misnamed_getters)]
    pub fn partition(&self) -> i32 {
        self.task.record_partition
    }
    /// The offset of the input record being processed (ksqlDB's ROWOFFSET).
    pub fn offset(&self) -> i64 {
        self.task.offset
    }
    pub fn get<K: Serde, V: Serde>(&mut self, store: &str, key: &K) -> Option<V> {
        super::get_typed(self.task, store, &crate::serde::key_bytes(key))
    }
    pub fn put<K: Serde, V: Serde>(&mut self, store: &str, key: &K, value: Option<&V>) {
        super::put_typed(self.task, store, &crate::serde::key_bytes(key), value)
    }
    /// A store's raw bytes under `key` (for processors with their own key layout).
    pub fn get_raw(&mut self, store: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.task.get(store, key)
    }
    /// Writes (`Some`) or deletes (`None`) raw bytes; logged to the changelog.
    pub fn put_raw(&mut self, store: &str, key: &[u8], value: Option<&[u8]>) {
        self.task.put(store, key, value)
    }
    /// Raw entries with keys in `[from, to)`, in key order.
    pub fn range_raw(&mut self, store: &str, from: &[u8], to: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.task.range(
            store,
            std::ops::Bound::Included(from),
            std::ops::Bound::Excluded(to),
        )
    }
    /// Every entry of a store, in key order.
    pub fn all<K: Serde, V: Serde>(&mut self, store: &str) -> Vec<(K, V)> {
        let entries = self.task.range(
            store,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
        );
        let mut out = Vec::new();
        for (k, v) in entries {
            match (K::from_bytes(Some(&k)), V::from_bytes(Some(&v))) {
                (Ok(k), Ok(v)) => out.push((k, v)),
                (Err(e), _) | (_, Err(e)) => self.task.fail(e),
            }
        }
        out
    }
}

use crate::sync::lock;

/// Runs `f` on this task's processor with its context, initializing it on first use.
fn call<K, V, K2, V2, P: Processor<K, V, K2, V2>>(
    task: &mut TaskCtx,
    next: &Mutex<Sink<K2, V2>>,
    processor: &Mutex<P>,
    initialized: &std::sync::atomic::AtomicBool,
    f: impl FnOnce(&mut P, &mut ProcessorContext<'_, K2, V2>),
) {
    let mut next = lock(next);
    let mut ctx = ProcessorContext {
        task,
        next: &mut *next,
    };
    let mut p = lock(processor);
    if !initialized.swap(true, std::sync::atomic::Ordering::Relaxed) {
        p.init(&mut ctx);
    }
    f(&mut p, &mut ctx)
}

pub(crate) fn attach<K, V, K2, V2, P>(
    stream: &KStream<K, V>,
    make: impl Fn() -> P + Send + Sync + 'static,
) -> KStream<K2, V2>
where
    K: Serde,
    V: Serde,
    K2: Serde,
    V2: Serde,
    P: Processor<K, V, K2, V2> + 'static,
{
    let child: Arc<Node<K2, V2>> = Node::new();
    let c = child.clone();
    stream.node.add(Arc::new(move |b| {
        let next = Arc::new(Mutex::new(c.build(b)));
        let processor = Arc::new(Mutex::new(make()));
        let wanted = lock(&processor).punctuations();
        for (kind, interval) in wanted {
            let (p, n) = (processor.clone(), next.clone());
            b.schedule(
                kind,
                interval,
                Box::new(move |task: &mut TaskCtx, time| {
                    let mut next = lock(&n);
                    let mut ctx = ProcessorContext {
                        task,
                        next: &mut *next,
                    };
                    lock(&p).punctuate(&mut ctx, kind, time)
                }),
            );
        }
        let initialized = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (p, n, i) = (processor.clone(), next.clone(), initialized.clone());
            b.commits.push(Box::new(move |task: &mut TaskCtx| {
                call(task, &n, &p, &i, |p, ctx| p.commit(ctx))
            }));
        }
        let max_batch = lock(&processor).max_batch();
        if max_batch <= 1 {
            return Box::new(move |task: &mut TaskCtx, r: Record<K, V>| {
                call(task, &next, &processor, &initialized, |p, ctx| {
                    p.process(ctx, r)
                })
            });
        }
        let pending: Arc<Mutex<Vec<Batched<K, V>>>> = Arc::default();
        let run = {
            let pending = pending.clone();
            move |task: &mut TaskCtx| -> bool {
                let batch = std::mem::take(&mut *lock(&pending));
                if batch.is_empty() {
                    return false;
                }
                let (timestamp, offset, partition) =
                    (task.timestamp, task.offset, task.record_partition);
                call(task, &next, &processor, &initialized, |p, ctx| {
                    p.process_batch(ctx, batch)
                });
                // The record being processed upstream is still the current one.
                (task.timestamp, task.offset, task.record_partition) =
                    (timestamp, offset, partition);
                true
            }
        };
        let run = Arc::new(Mutex::new(run));
        let flush = run.clone();
        b.batches
            .push(Box::new(move |task: &mut TaskCtx| (lock(&flush))(task)));
        Box::new(move |task: &mut TaskCtx, r: Record<K, V>| {
            let full = {
                let mut pending = lock(&pending);
                pending.push(Batched {
                    record: r,
                    partition: task.record_partition,
                    offset: task.offset,
                });
                pending.len() >= max_batch
            };
            if full {
                (lock(&run))(task);
            }
        })
    }));
    KStream::new(child, stream.group, stream.graph.clone(), true)
}
