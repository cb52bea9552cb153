//! `KTable::suppress` (KIP-328): hold a table's updates in a buffer and emit a key's
//! latest value later — once its window has closed (`until_window_closes`), or once
//! the first update held has waited a time limit (`until_time_limit`), as Kafka's
//! KTableSuppressProcessor does.
//!
//! The buffer is a logged store (one entry per key: the time it was first buffered,
//! the latest update's timestamp, headers, new value and the value before the first
//! buffered update), so it survives a crash; each task keeps its time order in memory,
//! loaded from the store the first time the task uses it, as Kafka's in-memory buffer
//! is rebuilt from its changelog.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::ktable::{Change, KTable};
use super::{add_store, graph, Materialized, Values};
use crate::error::Error;
use crate::record::Record;
use crate::serde::{key_bytes, Serde};
use crate::state::window::Windowed;
use crate::topology::{Node, Sink, TaskCtx};

/// What a full suppression buffer does (Kafka's `BufferConfig`): emit its oldest keys
/// early, or stop the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferFullStrategy {
    EmitEarly,
    ShutDown,
}

/// How much a suppression buffer may hold (`Suppressed.BufferConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
    pub when_full: BufferFullStrategy,
}

impl BufferConfig {
    /// No bound (the buffer grows with the keys it holds); never full.
    pub fn unbounded() -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: None,
            when_full: BufferFullStrategy::ShutDown,
        }
    }
    /// At most `n` keys; when full, the oldest are emitted early.
    pub fn max_records(n: u64) -> BufferConfig {
        BufferConfig {
            max_records: Some(n),
            max_bytes: None,
            when_full: BufferFullStrategy::EmitEarly,
        }
    }
    /// At most `n` bytes of keys and values; when full, the oldest are emitted early.
    pub fn max_bytes(n: u64) -> BufferConfig {
        BufferConfig {
            max_records: None,
            max_bytes: Some(n),
            when_full: BufferFullStrategy::EmitEarly,
        }
    }
    pub fn with_max_records(mut self, n: u64) -> BufferConfig {
        self.max_records = Some(n);
        self
    }
    pub fn with_max_bytes(mut self, n: u64) -> BufferConfig {
        self.max_bytes = Some(n);
        self
    }
    pub fn emit_early_when_full(mut self) -> BufferConfig {
        self.when_full = BufferFullStrategy::EmitEarly;
        self
    }
    /// A full buffer fails the task rather than emit a result before its time.
    pub fn shut_down_when_full(mut self) -> BufferConfig {
        self.when_full = BufferFullStrategy::ShutDown;
        self
    }
}

/// What `KTable::suppress` holds back (Kafka's `Suppressed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Only a window's final result, once stream time passes its end plus grace
    /// (windowed tables only). Intermediate results and deletes are never emitted.
    UntilWindowCloses(BufferConfig),
    /// A key's latest update once stream time is `limit` past the first update held
    /// for it (rate limiting); deletes are emitted too.
    UntilTimeLimit { limit_ms: i64, buffer: BufferConfig },
}

impl Suppressed {
    /// Final results only, with an unbounded buffer.
    pub fn until_window_closes() -> Suppressed {
        Suppressed::UntilWindowCloses(BufferConfig::unbounded())
    }
    /// Final results only, with a bounded buffer that shuts down when full (Kafka
    /// allows no early emission for final results).
    pub fn until_window_closes_with(buffer: BufferConfig) -> Suppressed {
        Suppressed::UntilWindowCloses(buffer.shut_down_when_full())
    }
    pub fn until_time_limit(limit: Duration, buffer: BufferConfig) -> Suppressed {
        Suppressed::UntilTimeLimit {
            limit_ms: i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            buffer,
        }
    }
}

/// For a windowed aggregation's table: what `suppress(until_window_closes)` waits for.
pub(crate) struct WindowClose<K> {
    /// Kafka's GraphGraceSearchUtil: the window grace (gap + grace for sessions).
    pub grace_ms: i64,
    pub end: EndOf<K>,
}

/// A windowed key's window end.
pub(crate) type EndOf<K> = Arc<dyn Fn(&K) -> i64 + Send + Sync>;

impl<K> WindowClose<Windowed<K>> {
    /// Windows that close `grace_ms` after their end.
    pub fn at_end(grace_ms: i64) -> WindowClose<Windowed<K>> {
        WindowClose {
            grace_ms,
            end: Arc::new(|k: &Windowed<K>| k.window.end),
        }
    }
}

impl<K> Clone for WindowClose<K> {
    fn clone(&self) -> Self {
        WindowClose {
            grace_ms: self.grace_ms,
            end: self.end.clone(),
        }
    }
}

/// How the processor picks a key's buffer time and what it may drop.
#[derive(Clone)]
struct Plan<K> {
    /// The buffer time of an update: its window's end, or (`None`) its timestamp.
    window_end: Option<EndOf<K>>,
    /// How long past its buffer time a key waits.
    wait_ms: i64,
    buffer: BufferConfig,
    /// Final results never emit deletes (Kafka's `safeToDropTombstones`).
    drop_deletes: bool,
}

impl<K: Serde, V: Serde> KTable<K, V> {
    /// Holds updates back as `s` says: final results of windows, or a key's latest
    /// update per time limit. `until_window_closes` on a table that is not a windowed
    /// aggregation's is a topology error (reported when the application starts).
    pub fn suppress(&self, s: Suppressed) -> KTable<K, V> {
        let plan: Plan<K> = match (s, &self.window_close) {
            (Suppressed::UntilWindowCloses(buffer), Some(w)) => Plan {
                window_end: Some(w.end.clone()),
                wait_ms: w.grace_ms,
                buffer,
                drop_deletes: true,
            },
            (Suppressed::UntilWindowCloses(buffer), None) => {
                graph(&self.graph).errors.push(format!(
                    "suppress(until_window_closes) of table {}: window close time is only \
                     defined for windowed computations",
                    self.store
                ));
                Plan {
                    window_end: None,
                    wait_ms: 0,
                    buffer,
                    drop_deletes: true,
                }
            }
            (Suppressed::UntilTimeLimit { limit_ms, buffer }, _) => Plan {
                window_end: None,
                wait_ms: limit_ms,
                buffer,
                drop_deletes: false,
            },
        };
        let store = add_store(
            &self.graph,
            self.group,
            &Materialized::default(),
            "KTABLE-SUPPRESS-STATE-STORE",
            None,
            Values::Plain,
        );
        let child: Arc<Node<K, Change<V>>> = Node::new();
        let (c, st) = (child.clone(), store.clone());
        self.node.add(Arc::new(move |b| {
            let next: Sink<K, Change<V>> = c.build(b);
            let mut p = Processor {
                store: st.clone(),
                plan: plan.clone(),
                next,
                observed: i64::MIN,
                held: None,
            };
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V>>| p.process(ctx, r))
        }));
        let mut t = KTable::new(child, self.group, self.graph.clone(), store);
        t.window_close = self.window_close.clone();
        t
    }
}

/// One task's suppression processor.
struct Processor<K, V> {
    store: String,
    plan: Plan<K>,
    next: Sink<K, Change<V>>,
    /// The largest timestamp this processor has seen (KTableSuppressProcessor's
    /// observedStreamTime): records dropped upstream do not close windows here.
    observed: i64,
    /// What the buffer holds, loaded from the store on first use.
    held: Option<Held>,
}

/// The buffered keys in emission order (buffer time, then key), each key's buffer
/// time and entry size, and the entries' total size.
#[derive(Default)]
struct Held {
    order: BTreeSet<(i64, Vec<u8>)>,
    index: HashMap<Vec<u8>, (i64, u64)>,
    bytes: u64,
}

impl<K: Serde, V: Serde> Processor<K, V> {
    fn process(&mut self, ctx: &mut TaskCtx, r: Record<K, Change<V>>) {
        self.load(ctx);
        self.observed = self.observed.max(r.timestamp);
        let kb = key_bytes(&r.key);
        let held = self.held.as_ref().and_then(|h| h.index.get(&kb).copied());
        // Non-resetting: a key keeps the time it was first buffered, and the value
        // before that first update (InMemoryTimeOrderedKeyValueBuffer).
        let (time, prior) = match held {
            Some((time, _)) => {
                let prior = ctx
                    .get(&self.store, &kb)
                    .and_then(|e| Entry::decode(&e))
                    .and_then(|e| e.prior);
                (time, prior)
            }
            None => (
                self.plan
                    .window_end
                    .as_ref()
                    .map_or(r.timestamp, |end| end(&r.key)),
                r.value.old.as_ref().and_then(Serde::to_bytes),
            ),
        };
        let entry = Entry {
            time,
            timestamp: r.timestamp,
            headers: r.headers,
            new: r.value.new.as_ref().and_then(Serde::to_bytes),
            prior,
        }
        .encode();
        let size = (kb.len() + entry.len()) as u64;
        ctx.put(&self.store, &kb, Some(&entry));
        if let Some(h) = self.held.as_mut() {
            if let Some((_, old_size)) = h.index.insert(kb.clone(), (time, size)) {
                h.bytes -= old_size;
            }
            h.order.insert((time, kb));
            h.bytes += size;
        }
        self.enforce(ctx);
    }

    fn enforce(&mut self, ctx: &mut TaskCtx) {
        let expiry = self.observed.saturating_sub(self.plan.wait_ms);
        while self.first().is_some_and(|(t, _)| t <= expiry) {
            self.evict(ctx);
        }
        if !self.over_capacity() {
            return;
        }
        match self.plan.buffer.when_full {
            BufferFullStrategy::EmitEarly => {
                while self.over_capacity() {
                    self.evict(ctx);
                }
            }
            BufferFullStrategy::ShutDown => {
                let (records, bytes) = self
                    .held
                    .as_ref()
                    .map_or((0, 0), |h| (h.order.len(), h.bytes));
                let show = |v: Option<u64>| v.map_or("unbounded".to_string(), |n| n.to_string());
                ctx.fail(Error::Runtime(format!(
                    "suppression buffer {} exceeded its max capacity. Currently [{}/{}] \
                     records and [{}/{}] bytes.",
                    self.store,
                    records,
                    show(self.plan.buffer.max_records),
                    bytes,
                    show(self.plan.buffer.max_bytes),
                )));
            }
        }
    }

    fn over_capacity(&self) -> bool {
        let Some(h) = self.held.as_ref() else {
            return false;
        };
        self.plan
            .buffer
            .max_records
            .is_some_and(|m| h.order.len() as u64 > m)
            || self.plan.buffer.max_bytes.is_some_and(|m| h.bytes > m)
    }

    fn first(&self) -> Option<(i64, Vec<u8>)> {
        self.held.as_ref()?.order.first().cloned()
    }

    /// Emits the oldest buffered key and removes it from the buffer.
    fn evict(&mut self, ctx: &mut TaskCtx) {
        let Some(h) = self.held.as_mut() else {
            return;
        };
        let Some((_, kb)) = h.order.pop_first() else {
            return;
        };
        if let Some((_, size)) = h.index.remove(&kb) {
            h.bytes -= size;
        }
        let stored = ctx.get(&self.store, &kb);
        ctx.put(&self.store, &kb, None);
        let Some(e) = stored.as_deref().and_then(Entry::decode) else {
            return ctx.fail(Error::store(&self.store, "a buffered entry is corrupt"));
        };
        if e.new.is_none() && self.plan.drop_deletes {
            return;
        }
        let decode = |b: Option<&Vec<u8>>| b.map(|b| V::from_bytes(Some(b))).transpose();
        let (key, new, old) = match (
            K::from_bytes(Some(&kb)),
            decode(e.new.as_ref()),
            decode(e.prior.as_ref()),
        ) {
            (Ok(k), Ok(n), Ok(o)) => (k, n, o),
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return ctx.fail(err),
        };
        let mut out = Record::new(key, Change { new, old }, e.timestamp);
        out.headers = e.headers;
        (self.next)(ctx, out);
    }

    /// Rebuilds the time order from the store (after a restore) the first time.
    fn load(&mut self, ctx: &mut TaskCtx) {
        if self.held.is_some() {
            return;
        }
        let mut h = Held::default();
        for (k, v) in ctx.range(&self.store, Bound::Unbounded, Bound::Unbounded) {
            let Some(e) = Entry::decode(&v) else {
                return ctx.fail(Error::store(&self.store, "a buffered entry is corrupt"));
            };
            let size = (k.len() + v.len()) as u64;
            h.bytes += size;
            h.order.insert((e.time, k.clone()));
            h.index.insert(k, (e.time, size));
        }
        self.held = Some(h);
    }
}

/// A buffered key's entry in the store.
#[derive(Debug, PartialEq)]
struct Entry {
    time: i64,
    timestamp: i64,
    headers: Vec<(String, Vec<u8>)>,
    new: Option<Vec<u8>>,
    prior: Option<Vec<u8>>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.extend(self.time.to_be_bytes());
        out.extend(self.timestamp.to_be_bytes());
        out.extend((self.headers.len() as u32).to_be_bytes());
        for (k, v) in &self.headers {
            put_bytes(&mut out, Some(k.as_bytes()));
            put_bytes(&mut out, Some(v));
        }
        put_bytes(&mut out, self.new.as_deref());
        put_bytes(&mut out, self.prior.as_deref());
        out
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let mut r = Reader(b);
        let time = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let timestamp = i64::from_be_bytes(r.take(8)?.try_into().ok()?);
        let n = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let mut headers = Vec::new();
        for _ in 0..n {
            let k = String::from_utf8(r.bytes()??).ok()?;
            headers.push((k, r.bytes()??));
        }
        Some(Entry {
            time,
            timestamp,
            headers,
            new: r.bytes()?,
            prior: r.bytes()?,
        })
    }
}

/// A length-prefixed optional byte string: `u32::MAX` is none.
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend((b.len() as u32).to_be_bytes());
            out.extend(b);
        }
        None => out.extend(u32::MAX.to_be_bytes()),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    /// `None` when the input is short; `Some(None)` for an absent value.
    fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        if len == u32::MAX {
            return Some(None);
        }
        self.take(len as usize).map(|b| Some(b.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_short_input_is_refused() {
        let e = Entry {
            time: -5,
            timestamp: 42,
            headers: vec![("h".into(), b"v".to_vec())],
            new: Some(b"new".to_vec()),
            prior: None,
        };
        let b = e.encode();
        assert_eq!(Entry::decode(&b), Some(e));
        assert_eq!(Entry::decode(&b[..b.len() - 1]), None);
    }
}
