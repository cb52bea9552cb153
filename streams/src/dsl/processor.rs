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

/// What a processor may do while it runs.
pub struct ProcessorContext<'a, KO, VO> {
    pub(crate) task: &'a mut TaskCtx,
    pub(crate) next: &'a mut Sink<KO, VO>,
}

impl<KO, VO> ProcessorContext<'_, KO, VO> {
    pub fn forward(&mut self, record: Record<KO, VO>) {
        (self.next)(self.task, record)
    }
    pub fn stream_time(&self) -> i64 {
        self.task.stream_time
    }
    pub fn timestamp(&self) -> i64 {
        self.task.timestamp
    }
    pub fn partition(&self) -> i32 {
        self.task.partition
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
        let mut initialized = false;
        Box::new(move |task: &mut TaskCtx, r: Record<K, V>| {
            let mut next = lock(&next);
            let mut ctx = ProcessorContext {
                task,
                next: &mut *next,
            };
            let mut p = lock(&processor);
            if !initialized {
                p.init(&mut ctx);
                initialized = true;
            }
            p.process(&mut ctx, r)
        })
    }));
    KStream::new(child, stream.group, stream.graph.clone(), true)
}
