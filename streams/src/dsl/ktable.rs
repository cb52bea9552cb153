//! KTable: a changelog stream — every update of a key carries the new and the old
//! value — materialized in a store, so it can be queried, joined and re-grouped.

use std::marker::PhantomData;
use std::sync::Arc;

use super::builder::source_stream;
use super::grouped::{KGroupedTable, Regrouped};
use super::kstream::KStream;
use super::named::Grouped;
use super::suppress::WindowClose;
use super::{add_store, get_stamped, graph, put_stamped, Materialized, SharedGraph, Values};
use crate::record::{Output, Record};
use crate::serde::{key_bytes, Serde};
use crate::topology::{InternalTopic, Node, TaskCtx, TopicRef};

/// An update of a table's key: `new` `None` is a delete.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<V> {
    pub new: Option<V>,
    pub old: Option<V>,
}

pub struct KTable<K, V> {
    pub(crate) node: Arc<Node<K, Change<V>>>,
    pub(crate) group: usize,
    pub(crate) graph: SharedGraph,
    pub(crate) store: String,
    /// For a windowed aggregation's table (and tables derived from it): when a
    /// window closes, for `suppress(until_window_closes)`.
    pub(crate) window_close: Option<WindowClose<K>>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        KTable {
            node: self.node.clone(),
            group: self.group,
            graph: self.graph.clone(),
            store: self.store.clone(),
            window_close: self.window_close.clone(),
        }
    }
}

type Derive<K, V, V2> = Arc<dyn Fn(&mut TaskCtx, &K, Option<&V>) -> Option<V2> + Send + Sync>;

impl<K: Serde, V: Serde> KTable<K, V> {
    pub(crate) fn new(
        node: Arc<Node<K, Change<V>>>,
        group: usize,
        graph: SharedGraph,
        store: String,
    ) -> KTable<K, V> {
        KTable {
            node,
            group,
            graph,
            store,
            window_close: None,
        }
    }

    /// The store holding the table: query it with
    /// [`KafkaStreams::store`](crate::KafkaStreams::store).
    pub fn store_name(&self) -> &str {
        &self.store
    }

    /// A table computed key by key from this one's new values, materialized in its own
    /// store (from which the old values come).
    pub(crate) fn derive_table<V2: Serde>(
        &self,
        m: &Materialized,
        prefix: &str,
        f: Derive<K, V, V2>,
    ) -> KTable<K, V2> {
        let store = add_store(&self.graph, self.group, m, prefix, None, Values::Stamped);
        cache_named(&self.graph, m, &store);
        let child: Arc<Node<K, Change<V2>>> = Node::new();
        let (c, s) = (child.clone(), store.clone());
        self.node.add(Arc::new(move |b| {
            let (store, f) = (s.clone(), f.clone());
            let next = c.build(b);
            let mut forward = super::table_forward(b, &store, next);
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V>>| {
                let kb = key_bytes(&r.key);
                let new = f(ctx, &r.key, r.value.new.as_ref());
                let old = get_stamped::<V2>(ctx, &store, &kb).map(|(v, _)| v);
                if new.is_none() && old.is_none() {
                    return;
                }
                put_stamped(ctx, &store, &kb, new.as_ref(), r.timestamp);
                if let Some(next) = forward.as_mut() {
                    let k = r.key.clone();
                    next(ctx, r.with(k, Change { new, old }))
                }
            })
        }));
        let mut t = KTable::new(child, self.group, self.graph.clone(), store);
        t.window_close = self.window_close.clone();
        t
    }

    pub fn filter(
        &self,
        p: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, V> {
        self.derive_table(
            &m,
            "KTABLE-FILTER-STATE-STORE",
            Arc::new(move |_, k, v| v.filter(|v| p(k, v)).cloned()),
        )
    }

    pub fn map_values<V2: Serde>(
        &self,
        f: impl Fn(&V) -> V2 + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, V2> {
        self.derive_table(
            &m,
            "KTABLE-MAPVALUES-STATE-STORE",
            Arc::new(move |_, _, v| v.map(&f)),
        )
    }

    /// The table's updates as a stream; a delete is a `None` value (a tombstone).
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let child: Arc<Node<K, Option<V>>> = Node::new();
        let c = child.clone();
        self.node.add(Arc::new(move |b| {
            let mut next = c.build(b);
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V>>| {
                let (k, v) = (r.key.clone(), r.value.new.clone());
                next(ctx, r.with(k, v))
            })
        }));
        KStream::new(child, self.group, self.graph.clone(), false)
    }

    /// Re-keys the table for an aggregation; each update retracts the old row's
    /// contribution and adds the new one's (through a repartition topic).
    pub fn group_by<K2: Serde, V2: Serde>(
        &self,
        f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KGroupedTable<K2, V2> {
        self.group_by_with(f, Grouped::default())
    }

    /// [`group_by`](Self::group_by) with a named repartition topic
    /// (`<application.id>-<name>-repartition`).
    pub fn group_by_with<K2: Serde, V2: Serde>(
        &self,
        f: impl Fn(&K, &V) -> (K2, V2) + Send + Sync + 'static,
        grouped: Grouped,
    ) -> KGroupedTable<K2, V2> {
        let suffix = {
            let mut g = graph(&self.graph);
            let base = grouped.name.unwrap_or_else(|| g.name("KTABLE-GROUPBY"));
            format!("{base}-repartition")
        };
        let topic = TopicRef::Internal(suffix);
        graph(&self.graph).internal.push(InternalTopic {
            topic: topic.clone(),
            compact: false,
            retention_ms: None,
        });
        let (f, t) = (Arc::new(f), topic.clone());
        self.node.add(Arc::new(move |_| {
            let (f, t) = (f.clone(), t.clone());
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V>>| {
                let name = t.resolve(&ctx.application_id);
                let mut send = |k: Option<Vec<u8>>, v: Regrouped<V2>| {
                    ctx.send(Output {
                        topic: name.clone(),
                        partition: None,
                        key: k,
                        value: v.to_bytes(),
                        timestamp: r.timestamp,
                        headers: Vec::new(),
                    })
                };
                let old = r.value.old.as_ref().map(|v| f(&r.key, v));
                let new = r.value.new.as_ref().map(|v| f(&r.key, v));
                match (old, new) {
                    // KTableRepartitionMap (KIP-904): the same group gets one update.
                    (Some((ok, ov)), Some((nk, nv))) if ok.to_bytes() == nk.to_bytes() => {
                        let update = Regrouped {
                            old: Some(ov),
                            new: Some(nv),
                        };
                        send(nk.to_bytes(), update);
                    }
                    (old, new) => {
                        if let Some((ok, ov)) = old {
                            let update = Regrouped {
                                old: Some(ov),
                                new: None,
                            };
                            send(ok.to_bytes(), update);
                        }
                        if let Some((nk, nv)) = new {
                            let update = Regrouped {
                                old: None,
                                new: Some(nv),
                            };
                            send(nk.to_bytes(), update);
                        }
                    }
                }
            })
        }));
        KGroupedTable::new(source_stream::<K2, Regrouped<V2>>(&self.graph, topic, None))
    }

    fn join_tables<V2: Serde, VR: Serde>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> Option<VR> + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        let group = graph(&self.graph).union(self.group, other.group);
        let store = add_store(
            &self.graph,
            group,
            &m,
            "KTABLE-JOIN-STATE-STORE",
            None,
            Values::Stamped,
        );
        cache_named(&self.graph, &m, &store);
        let child: Arc<Node<K, Change<VR>>> = Node::new_shared();
        let joiner = Arc::new(joiner);
        // Each side's update is joined with the other side's current value.
        let (c, s, j, other_store) = (
            child.clone(),
            store.clone(),
            joiner.clone(),
            other.store.clone(),
        );
        self.node.add(Arc::new(move |b| {
            let (store, j, os) = (s.clone(), j.clone(), other_store.clone());
            let next = c.build(b);
            let mut next = super::table_forward(b, &store, next);
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V>>| {
                let kb = key_bytes(&r.key);
                let right: Option<(V2, i64)> = get_stamped(ctx, &os, &kb);
                let new = j(r.value.new.as_ref(), right.as_ref().map(|(v, _)| v));
                emit_join(ctx, &store, r, new, right.map(|(_, t)| t), next.as_mut());
            })
        }));
        let (c, s, j, this_store) = (child.clone(), store.clone(), joiner, self.store.clone());
        other.node.add(Arc::new(move |b| {
            let (store, j, ts) = (s.clone(), j.clone(), this_store.clone());
            let next = c.build(b);
            let mut next = super::table_forward(b, &store, next);
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<V2>>| {
                let kb = key_bytes(&r.key);
                let left: Option<(V, i64)> = get_stamped(ctx, &ts, &kb);
                let new = j(left.as_ref().map(|(v, _)| v), r.value.new.as_ref());
                emit_join(ctx, &store, r, new, left.map(|(_, t)| t), next.as_mut());
            })
        }));
        KTable::new(child, group, self.graph.clone(), store)
    }

    /// Inner table-table join: a row while both sides have the key.
    pub fn join<V2: Serde, VR: Serde>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        self.join_tables(other, move |l, r| Some(joiner(l?, r?)), m)
    }

    /// Left table-table join: a row while this side has the key.
    pub fn left_join<V2: Serde, VR: Serde>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        self.join_tables(other, move |l, r| Some(joiner(l?, r)), m)
    }

    /// Outer table-table join: a row while either side has the key.
    pub fn outer_join<V2: Serde, VR: Serde>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        self.join_tables(
            other,
            move |l, r| {
                if l.is_none() && r.is_none() {
                    None
                } else {
                    Some(joiner(l, r))
                }
            },
            m,
        )
    }
}

/// Caches a table operator's store when it is named: Kafka materializes (and caches)
/// a `filter`, `map_values` or join result only when given a `Materialized`.
fn cache_named(g: &SharedGraph, m: &Materialized, store: &str) {
    if m.name.is_some() {
        super::cache_store(g, m, store);
    }
}

/// Materializes a join result and forwards it with the previous one as `old` (or
/// leaves that to the store's flush, `next` being `None`, when it is cached). The
/// result carries the larger of the two sides' timestamps (KTableKTableInnerJoin,
/// KIP-258); `other_ts` is the other side's, when it has the key.
fn emit_join<K: Serde, X, VR: Serde>(
    ctx: &mut TaskCtx,
    store: &str,
    r: Record<K, X>,
    new: Option<VR>,
    other_ts: Option<i64>,
    next: Option<&mut crate::topology::Sink<K, Change<VR>>>,
) {
    let kb = key_bytes(&r.key);
    let old = get_stamped::<VR>(ctx, store, &kb).map(|(v, _)| v);
    if new.is_none() && old.is_none() {
        return;
    }
    let ts = other_ts.map_or(r.timestamp, |t| t.max(r.timestamp));
    put_stamped(ctx, store, &kb, new.as_ref(), ts);
    let Some(next) = next else {
        return;
    };
    let k = r.key.clone();
    let mut out = r.with(k, Change { new, old });
    out.timestamp = ts;
    next(ctx, out)
}

/// A table replicated whole to every instance.
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable {
            store: self.store.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> GlobalKTable<K, V> {
    pub(crate) fn new(store: String) -> GlobalKTable<K, V> {
        GlobalKTable {
            store,
            _types: PhantomData,
        }
    }
    pub fn store_name(&self) -> &str {
        &self.store
    }
}

/// Drops the `Option` layer an aggregation without an initial value used: a `None`
/// aggregate is a delete. The store keeps `Option<V>` bytes, which for a present value
/// are the value's own bytes.
pub(crate) fn flatten<K: Serde, V: Serde>(t: KTable<K, Option<V>>) -> KTable<K, V> {
    let child: Arc<Node<K, Change<V>>> = Node::new();
    let c = child.clone();
    t.node.add(Arc::new(move |b| {
        let mut next = c.build(b);
        Box::new(move |ctx: &mut TaskCtx, r: Record<K, Change<Option<V>>>| {
            let k = r.key.clone();
            let change = Change {
                new: r.value.new.clone().flatten(),
                old: r.value.old.clone().flatten(),
            };
            next(ctx, r.with(k, change))
        })
    }));
    let mut out = KTable::new(child, t.group, t.graph.clone(), t.store);
    out.window_close = t.window_close;
    out
}
