//! Where topologies start: streams, tables and global tables over topics.

use std::sync::{Arc, Mutex};

use super::kstream::KStream;
use super::ktable::{Change, GlobalKTable, KTable};
use super::named::Consumed;
use super::{add_store, graph, Materialized, SharedGraph, Values};
use crate::record::{RawRecord, Record};
use crate::serde::Serde;
use crate::state::{StoreSpec, StoreType};
use crate::topology::{GlobalDef, Graph, Node, RawSink, SourceDef, TaskCtx, TopicRef, Topology};

/// Builds a topology with the DSL; [`build`](StreamsBuilder::build) ends it.
#[derive(Default)]
pub struct StreamsBuilder {
    graph: SharedGraph,
}

type Extractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

impl StreamsBuilder {
    pub fn new() -> StreamsBuilder {
        StreamsBuilder {
            graph: Arc::new(Mutex::new(Graph::default())),
        }
    }

    /// A stream of the topic's records; event time is the record timestamp.
    pub fn stream<K: Serde, V: Serde>(&self, topic: &str) -> KStream<K, V> {
        self.source(TopicRef::User(topic.to_string()), None)
    }

    /// A stream read as `consumed` says (`builder.stream(topic, Consumed)`): event time
    /// from a timestamp extractor, for one.
    pub fn stream_with<K: Serde, V: Serde>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
    ) -> KStream<K, V> {
        self.source(TopicRef::User(topic.to_string()), consumed.extract)
    }

    pub(crate) fn source<K: Serde, V: Serde>(
        &self,
        topic: TopicRef,
        extract: Option<Extractor<K, V>>,
    ) -> KStream<K, V> {
        source_stream(&self.graph, topic, extract)
    }

    /// A table over a topic: the latest value per key, materialized in a store; a null
    /// value deletes the key.
    pub fn table<K: Serde, V: Serde>(&self, topic: &str, m: Materialized) -> KTable<K, V> {
        let group = graph(&self.graph).new_group();
        let store = add_store(
            &self.graph,
            group,
            &m,
            "KTABLE-SOURCE-STATE-STORE",
            None,
            Values::Stamped,
        );
        super::cache_store(&self.graph, &m, &store);
        let node: Arc<Node<K, Change<V>>> = Node::new();
        let (n, s) = (node.clone(), store.clone());
        let factory = Arc::new(move |b: &mut crate::topology::BuildCtx| -> RawSink {
            let store = s.clone();
            // Cached (KTableSource over a caching store): each key's latest update is
            // forwarded when the cache flushes, with the value it replaced.
            let next = n.build(b);
            let mut forward = super::table_forward(b, &store, next);
            Box::new(move |ctx: &mut TaskCtx, raw: &RawRecord| {
                // KTableSource: a record without a key is skipped.
                let key = match K::from_bytes(raw.key.as_deref()) {
                    Ok(k) if !k.is_null() => k,
                    Ok(_) => return ctx.skip_record("null key"),
                    Err(_) if raw.key.is_none() => return ctx.skip_record("null key"),
                    Err(e) => return ctx.bad_record(e),
                };
                let new = match &raw.value {
                    None => None,
                    Some(v) => match V::from_bytes(Some(v)) {
                        Ok(v) => Some(v),
                        Err(e) => return ctx.bad_record(e),
                    },
                };
                ctx.stream_time = ctx.stream_time.max(raw.timestamp);
                let kb = crate::serde::key_bytes(&key);
                let stored = ctx.get(&store, &kb);
                let stamped = new
                    .as_ref()
                    .and_then(Serde::to_bytes)
                    .map(|b| crate::state::stamped::join(&b, raw.timestamp));
                // KIP-557 (KTableSource, putIfDifferentValues): an update that repeats
                // the stored value, not older than it, changes nothing and is dropped.
                if crate::state::stamped::same_value_not_older(
                    stored.as_deref(),
                    stamped.as_deref(),
                ) {
                    return;
                }
                ctx.put(&store, &kb, stamped.as_deref());
                let Some(next) = forward.as_mut() else {
                    return;
                };
                let old = match stored {
                    Some(b) => match super::decode_stamped::<V>(ctx, &store, &b) {
                        Some((v, _)) => Some(v),
                        None => return,
                    },
                    None => None,
                };
                let mut r = Record::new(key, Change { new, old }, raw.timestamp);
                r.headers = raw.user_headers();
                next(ctx, r);
            })
        });
        graph(&self.graph).sources.push(SourceDef {
            topic: TopicRef::User(topic.to_string()),
            group,
            factory,
        });
        KTable::new(node, group, self.graph.clone(), store)
    }

    /// A table every instance holds whole (all partitions), for joins by any key.
    pub fn global_table<K: Serde, V: Serde>(
        &self,
        topic: &str,
        m: Materialized,
    ) -> GlobalKTable<K, V> {
        let mut g = graph(&self.graph);
        let name = m
            .name
            .clone()
            .unwrap_or_else(|| g.name("GLOBALKTABLE-STATE-STORE"));
        g.globals.push(GlobalDef {
            topic: topic.to_string(),
            store: StoreSpec {
                name: name.clone(),
                store_type: m.store_type.unwrap_or(StoreType::InMemory),
                // The topic itself is the changelog of a global store.
                logged: false,
                changelog_retention_ms: None,
                timestamped: false,
                cached: false,
            },
            apply: Arc::new(|raw: &RawRecord| {
                let key = K::from_bytes(raw.key.as_deref()).ok()?;
                Some((crate::serde::key_bytes(&key), raw.value.clone()))
            }),
        });
        GlobalKTable::new(name)
    }

    pub fn build(self) -> Topology {
        let g = std::mem::take(&mut *graph(&self.graph));
        Topology::from_graph(g)
    }
}

/// A stream reading `topic` in a group of its own.
pub(crate) fn source_stream<K: Serde, V: Serde>(
    shared: &SharedGraph,
    topic: TopicRef,
    extract: Option<Extractor<K, V>>,
) -> KStream<K, V> {
    let group = graph(shared).new_group();
    let node: Arc<Node<K, V>> = Node::new();
    let n = node.clone();
    let factory = Arc::new(move |b: &mut crate::topology::BuildCtx| -> RawSink {
        let mut next = n.build(b);
        let extract = extract.clone();
        Box::new(move |ctx: &mut TaskCtx, raw: &RawRecord| {
            let key = match K::from_bytes(raw.key.as_deref()) {
                Ok(k) => k,
                // Kafka's deserializers read a null key as null, which key-based
                // operators skip; a key type without null skips it here.
                Err(_) if raw.key.is_none() => return ctx.skip_record("null key"),
                Err(e) => return ctx.bad_record(e),
            };
            let value = match V::from_bytes(raw.value.as_deref()) {
                Ok(v) => v,
                Err(e) => return ctx.bad_record(e),
            };
            let ts = match &extract {
                Some(f) => f(&key, &value, raw.timestamp),
                None => raw.timestamp,
            };
            ctx.timestamp = ts;
            ctx.stream_time = ctx.stream_time.max(ts);
            let mut r = Record::new(key, value, ts);
            r.headers = raw.user_headers();
            next(ctx, r);
        })
    });
    graph(shared).sources.push(SourceDef {
        topic,
        group,
        factory,
    });
    KStream::new(node, group, shared.clone(), false)
}
