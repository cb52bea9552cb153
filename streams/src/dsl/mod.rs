//! The typed DSL: [`StreamsBuilder`] makes [`KStream`]s, [`KTable`]s and
//! [`GlobalKTable`]s; grouping, windowing and joining them builds the processor graph.
//!
//! Layout: `builder.rs` (sources), `kstream.rs` (stateless operators, repartitioning),
//! `ktable.rs` (tables and their changes), `named.rs` (operator names and options), `grouped.rs` (count, reduce, aggregate),
//! `windowed.rs` (time and session windows), `suppress.rs`, `sliding.rs`, `joins.rs`, `fk_join.rs`,
//! `processor.rs` (the Processor API the DSL compiles to).

/// `emit_strategy`, `count`, `reduce` and `aggregate` of a windowed grouped stream,
/// which Kafka's TimeWindowedKStream and SlidingWindowedKStream share, written once.
/// The type has an `emit` field and its own `aggregate_with` (where the window kinds
/// differ); the caller's scope provides the types named here.
macro_rules! windowed_aggregations {
    ($ty:ident) => {
        /// `emitStrategy(EmitStrategy.onWindowClose())`: one final result per window.
        pub fn emit_strategy(mut self, emit: EmitStrategy) -> $ty<K, V> {
            self.emit = emit;
            self
        }

        pub fn count(&self, m: Materialized) -> KTable<Windowed<K>, i64> {
            self.aggregate_with(m, Arc::new(|| 0), Arc::new(|_, _, n| n + 1))
        }

        /// Combines the values of each window; a window's first value is taken as it is.
        pub fn reduce(
            &self,
            f: impl Fn(V, V) -> V + Send + Sync + 'static,
            m: Materialized,
        ) -> KTable<Windowed<K>, V> {
            let t: KTable<Windowed<K>, Option<V>> =
                self.aggregate_with(m, Arc::new(|| None), super::reduce_step(f));
            super::ktable::flatten(t)
        }

        pub fn aggregate<A: Serde>(
            &self,
            init: impl Fn() -> A + Send + Sync + 'static,
            f: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
            m: Materialized,
        ) -> KTable<Windowed<K>, A> {
            self.aggregate_with(m, Arc::new(init), Arc::new(f))
        }
    };
}

mod builder;
mod fk_join;
mod grouped;
mod joins;
mod kstream;
mod ktable;
mod named;
mod processor;
mod sliding;
mod suppress;
mod windowed;

pub use builder::StreamsBuilder;
pub use grouped::{KGroupedStream, KGroupedTable};
pub use joins::JoinWindows;
pub use kstream::{Branches, KStream};
pub use ktable::{Change, GlobalKTable, KTable};
pub use named::{Consumed, Grouped, Joined, StreamJoined};
pub use processor::{Batched, Processor, ProcessorContext};
pub use sliding::{SlidingWindowedKStream, SlidingWindows};
pub use suppress::{BufferConfig, BufferFullStrategy, Suppressed};
pub use windowed::{
    EmitStrategy, SessionWindowedKStream, SessionWindows, TimeWindowedKStream, TimeWindows,
};

use std::sync::{Arc, Mutex};

use crate::serde::Serde;
use crate::state::{StoreSpec, StoreType};
use crate::topology::{Graph, TaskCtx};

/// How an operator's state store is named and kept.
#[derive(Debug, Clone, Default)]
pub struct Materialized {
    pub(crate) name: Option<String>,
    pub(crate) store_type: Option<StoreType>,
    pub(crate) disable_logging: bool,
    pub(crate) disable_caching: bool,
    pub(crate) enable_caching: bool,
}

impl Materialized {
    /// A store with this name: queryable, and its changelog is
    /// `<application.id>-<name>-changelog`.
    pub fn named(name: &str) -> Materialized {
        Materialized {
            name: Some(name.to_string()),
            ..Materialized::default()
        }
    }
    pub fn in_memory(mut self) -> Materialized {
        self.store_type = Some(StoreType::InMemory);
        self
    }
    pub fn persistent(mut self) -> Materialized {
        self.store_type = Some(StoreType::Persistent);
        self
    }
    /// No changelog: the store is rebuilt from nothing after a crash or a move.
    pub fn without_logging(mut self) -> Materialized {
        self.disable_logging = true;
        self
    }
    /// Every update is forwarded at once instead of being folded per key in the record
    /// cache until the next commit (`Materialized.withCachingDisabled()`).
    pub fn with_caching_disabled(mut self) -> Materialized {
        self.disable_caching = true;
        self
    }
    /// A Processor API store behind the record cache (Kafka's
    /// `StoreBuilder.withCachingEnabled()`): its writes wait in the cache, where reads
    /// and ranges see them, until the task flushes (each commit, or a full cache), so a
    /// key written by every record reaches the store and its changelog once per flush.
    /// The processor forwards its own records; a flush forwards nothing.
    pub fn with_caching_enabled(mut self) -> Materialized {
        self.enable_caching = true;
        self
    }
}

pub(crate) type SharedGraph = Arc<Mutex<Graph>>;

pub(crate) fn graph(g: &SharedGraph) -> std::sync::MutexGuard<'_, Graph> {
    crate::sync::lock(g)
}

/// How an operator lays out its store's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// The value's bytes (the Processor API's stores, operators' internal buffers).
    Plain,
    /// Timestamped as Kafka's DSL stores (KIP-258): [`get_stamped`]/[`put_stamped`].
    Stamped,
}

/// An aggregation's initial value.
pub(crate) type Init<A> = Arc<dyn Fn() -> A + Send + Sync>;
/// An aggregation's step: (key, value, aggregate so far) to the new aggregate.
pub(crate) type Step<K, V, A> = Arc<dyn Fn(&K, &V, A) -> A + Send + Sync>;

/// `reduce(f)` as an aggregation over `Option<V>`: a group's first value is taken as
/// it is, later ones combined with `f`.
pub(crate) fn reduce_step<K, V: Clone + 'static>(
    f: impl Fn(V, V) -> V + Send + Sync + 'static,
) -> Step<K, V, Option<V>> {
    Arc::new(move |_, v: &V, acc: Option<V>| {
        Some(match acc {
            Some(a) => f(a, v.clone()),
            None => v.clone(),
        })
    })
}

/// A windowed aggregation's store: timestamped, cached unless `m` says not, its
/// changelog kept a day past the windows' `retention_ms` as Kafka Streams keeps it.
pub(crate) fn windowed_store<K, V>(
    s: &KStream<K, V>,
    m: &Materialized,
    retention_ms: i64,
) -> String {
    const CHANGELOG_EXTRA_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
    let store = add_store(
        &s.graph,
        s.group,
        m,
        "KSTREAM-AGGREGATE-STATE-STORE",
        Some(retention_ms + CHANGELOG_EXTRA_RETENTION_MS),
        Values::Stamped,
    );
    cache_store(&s.graph, m, &store);
    store
}

/// Registers a store for `group`'s tasks and returns its name.
pub(crate) fn add_store(
    g: &SharedGraph,
    group: usize,
    m: &Materialized,
    prefix: &str,
    changelog_retention_ms: Option<i64>,
    values: Values,
) -> String {
    let mut g = graph(g);
    let name = m.name.clone().unwrap_or_else(|| g.name(prefix));
    let spec = StoreSpec {
        name: name.clone(),
        // Kafka Streams' default is a persistent (RocksDB) store.
        store_type: m.store_type.unwrap_or(StoreType::Persistent),
        logged: !m.disable_logging,
        changelog_retention_ms,
        timestamped: values == Values::Stamped,
        cached: false,
    };
    if spec.logged {
        g.internal.push(crate::topology::InternalTopic {
            topic: crate::topology::TopicRef::Internal(format!("{name}-changelog")),
            compact: true,
            retention_ms: changelog_retention_ms,
        });
    }
    g.stores.push(crate::topology::StoreDef { spec, group });
    name
}

pub(crate) fn get_typed<V: Serde>(ctx: &mut TaskCtx, store: &str, key: &[u8]) -> Option<V> {
    let bytes = ctx.get(store, key)?;
    match V::from_bytes(Some(&bytes)) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.fail(e);
            None
        }
    }
}

pub(crate) fn put_typed<V: Serde>(ctx: &mut TaskCtx, store: &str, key: &[u8], value: Option<&V>) {
    let bytes = value.and_then(Serde::to_bytes);
    ctx.put(store, key, bytes.as_deref());
}

/// A timestamped store's value and the timestamp of the record behind it.
pub(crate) fn get_stamped<V: Serde>(
    ctx: &mut TaskCtx,
    store: &str,
    key: &[u8],
) -> Option<(V, i64)> {
    let bytes = ctx.get(store, key)?;
    decode_stamped(ctx, store, &bytes)
}

/// A timestamped store's stored bytes as the value and its timestamp; `None`, with the
/// task failed, when they do not decode.
pub(crate) fn decode_stamped<V: Serde>(
    ctx: &mut TaskCtx,
    store: &str,
    bytes: &[u8],
) -> Option<(V, i64)> {
    let decoded = match crate::state::stamped::split(bytes) {
        Some((value, ts)) => V::from_bytes(Some(value)).map(|v| (v, ts)),
        None => Err(crate::error::Error::Deserialize {
            what: format!("a value of store {store}"),
            reason: "shorter than its 8-byte timestamp".into(),
        }),
    };
    match decoded {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.fail(e);
            None
        }
    }
}

/// Writes a value with its timestamp to a timestamped store; `None` deletes the key.
pub(crate) fn put_stamped<V: Serde>(
    ctx: &mut TaskCtx,
    store: &str,
    key: &[u8],
    value: Option<&V>,
    timestamp: i64,
) {
    let bytes = value
        .and_then(Serde::to_bytes)
        .map(|b| crate::state::stamped::join(&b, timestamp));
    ctx.put(store, key, bytes.as_deref());
}

/// The key's bytes for an operator that needs a key and a value (aggregations,
/// stream-stream joins); `None`, with the record skipped and counted, for a null key
/// or value (KStreamAggregate, KStreamKStreamJoin).
pub(crate) fn keyed<K: Serde, V: Serde>(
    ctx: &mut TaskCtx,
    r: &crate::record::Record<K, V>,
) -> Option<Vec<u8>> {
    if r.value.is_null() {
        ctx.skip_record("null value");
        return None;
    }
    let kb = r.key.to_bytes();
    if kb.is_none() {
        ctx.skip_record("null key");
    }
    kb
}

/// Puts `store` behind the record cache unless `m` disables caching (the stores of
/// grouped aggregations, as Kafka caches its DSL stores by default).
pub(crate) fn cache_store(g: &SharedGraph, m: &Materialized, store: &str) {
    if m.disable_caching {
        return;
    }
    for d in graph(g).stores.iter_mut().filter(|d| d.spec.name == store) {
        d.spec.cached = true;
    }
}

/// Where a table operator forwards its changes: to `next`, or — its store being
/// cached — nowhere, the store's flush forwarding each key's folded change instead.
pub(crate) fn table_forward<K: Serde, V: Serde>(
    b: &mut crate::topology::BuildCtx,
    store: &str,
    next: crate::topology::Sink<K, ktable::Change<V>>,
) -> Option<crate::topology::Sink<K, ktable::Change<V>>> {
    if !b.is_cached(store) {
        return Some(next);
    }
    let key_of = |kb: &[u8]| K::from_bytes(Some(kb)).map(|k| (k, None));
    b.on_flush(store, forward_flushed(next, key_of, false));
    None
}

/// A cached aggregation's flush listener: each flushed key's new aggregate, with the
/// one it replaces, at the new one's timestamp (Kafka's TimestampedCacheFlushListener).
/// `key_of` reads the result's key from the store key, with the time its results carry
/// when the key fixes it (a session's end); `skip_deletes` drops flushed deletes.
pub(crate) fn forward_flushed<K: Clone + Send + 'static, A: Serde>(
    mut next: crate::topology::Sink<K, ktable::Change<A>>,
    key_of: impl Fn(&[u8]) -> crate::error::Result<(K, Option<i64>)> + Send + 'static,
    skip_deletes: bool,
) -> crate::topology::FlushListener {
    use crate::error::Error;
    use crate::state::stamped;
    Box::new(
        move |ctx: &mut TaskCtx, kb: &[u8], new: Option<&[u8]>, old: Option<&[u8]>| {
            // Nothing to say of a key neither stored before nor now.
            if new.is_none() && (skip_deletes || old.is_none()) {
                return;
            }
            let decode = |b: Option<&[u8]>| -> crate::error::Result<Option<(A, i64)>> {
                match b.map(stamped::split) {
                    None => Ok(None),
                    Some(Some((v, ts))) => Ok(Some((A::from_bytes(Some(v))?, ts))),
                    Some(None) => Err(Error::Deserialize {
                        what: "a cached aggregate".into(),
                        reason: "shorter than its timestamp".into(),
                    }),
                }
            };
            let ((key, key_ts), new, old) = match (key_of(kb), decode(new), decode(old)) {
                (Ok(k), Ok(n), Ok(o)) => (k, n, o),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return ctx.fail(e),
            };
            let ts = key_ts.unwrap_or_else(|| new.as_ref().map_or(ctx.timestamp, |(_, t)| *t));
            let change = ktable::Change {
                new: new.map(|(a, _)| a),
                old: old.map(|(a, _)| a),
            };
            next(ctx, crate::record::Record::new(key, change, ts));
        },
    )
}
