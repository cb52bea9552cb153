//! KStream: a record stream and its stateless operators, repartitioning and output.

use std::sync::Arc;

use super::builder::source_stream;
use super::grouped::KGroupedStream;
use super::ktable::{Change, KTable};
use super::named::Grouped;
use super::{add_store, graph, Materialized, SharedGraph};
use crate::record::{Output, Record};
use crate::serde::{key_bytes, Serde};
use crate::topology::{BuildCtx, Factory, InternalTopic, Node, Sink, TaskCtx, TopicRef};

pub struct KStream<K, V> {
    pub(crate) node: Arc<Node<K, V>>,
    pub(crate) group: usize,
    pub(crate) graph: SharedGraph,
    /// The key was changed upstream: grouping or joining must repartition first.
    pub(crate) key_changed: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            node: self.node.clone(),
            group: self.group,
            graph: self.graph.clone(),
            key_changed: self.key_changed,
        }
    }
}

/// The streams [`KStream::branch`] splits into, in predicate order, and the default
/// branch for records no predicate matched.
pub struct Branches<K, V> {
    pub branches: Vec<KStream<K, V>>,
    pub default: KStream<K, V>,
}

fn serialize_out<K: Serde, V: Serde>(
    topic: String,
    partition: Option<i32>,
    r: Record<K, V>,
) -> Output {
    Output {
        topic,
        partition,
        key: r.key.to_bytes(),
        value: r.value.to_bytes(),
        timestamp: r.timestamp,
        headers: r.headers,
    }
}

impl<K: Serde, V: Serde> KStream<K, V> {
    pub(crate) fn new(
        node: Arc<Node<K, V>>,
        group: usize,
        graph: SharedGraph,
        key_changed: bool,
    ) -> KStream<K, V> {
        KStream {
            node,
            group,
            graph,
            key_changed,
        }
    }

    /// A child stream: `wire` turns the child's sink into this stream's.
    pub(crate) fn derive<K2: Serde, V2: Serde>(
        &self,
        key_changed: bool,
        wire: impl Fn(&mut BuildCtx, Sink<K2, V2>) -> Sink<K, V> + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let child: Arc<Node<K2, V2>> = Node::new();
        let c = child.clone();
        let f: Factory<K, V> = Arc::new(move |b| {
            let next = c.build(b);
            wire(b, next)
        });
        self.node.add(f);
        KStream::new(
            child,
            self.group,
            self.graph.clone(),
            self.key_changed || key_changed,
        )
    }

    pub fn filter(&self, p: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let p = Arc::new(p);
        self.derive(false, move |_, mut next| {
            let p = p.clone();
            Box::new(move |ctx, r| {
                if p(&r.key, &r.value) {
                    next(ctx, r)
                }
            })
        })
    }

    pub fn filter_not(&self, p: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter(move |k, v| !p(k, v))
    }

    pub fn map<K2: Serde, V2: Serde>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let f = Arc::new(f);
        self.derive(true, move |_, mut next| {
            let f = f.clone();
            Box::new(move |ctx, r: Record<K, V>| {
                let (k, v) = f(r.key.clone(), r.value.clone());
                next(ctx, r.with(k, v))
            })
        })
    }

    pub fn map_values<V2: Serde>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let f = Arc::new(f);
        self.derive(false, move |_, mut next| {
            let f = f.clone();
            Box::new(move |ctx, r: Record<K, V>| {
                let v = f(r.value.clone());
                let k = r.key.clone();
                next(ctx, r.with(k, v))
            })
        })
    }

    pub fn flat_map<K2: Serde, V2: Serde>(
        &self,
        f: impl Fn(K, V) -> Vec<(K2, V2)> + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let f = Arc::new(f);
        self.derive(true, move |_, mut next| {
            let f = f.clone();
            Box::new(move |ctx, r: Record<K, V>| {
                for (k, v) in f(r.key.clone(), r.value.clone()) {
                    next(ctx, r.clone().with(k, v))
                }
            })
        })
    }

    pub fn flat_map_values<V2: Serde>(
        &self,
        f: impl Fn(V) -> Vec<V2> + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let f = Arc::new(f);
        self.derive(false, move |_, mut next| {
            let f = f.clone();
            Box::new(move |ctx, r: Record<K, V>| {
                for v in f(r.value.clone()) {
                    let k = r.key.clone();
                    next(ctx, r.clone().with(k, v))
                }
            })
        })
    }

    pub fn select_key<K2: Serde>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        self.map(move |k, v| (f(&k, &v), v))
    }

    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.filter(move |k, v| {
            f(k, v);
            true
        })
    }

    /// A terminal operation on every record.
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        self.peek(f);
    }

    /// Splits the stream: a record goes to the first branch whose predicate matches, or
    /// to the default branch (Kafka's `split().branch(...).defaultBranch()`).
    #[allow(clippy::type_complexity)]
    pub fn branch(
        &self,
        predicates: Vec<Box<dyn Fn(&K, &V) -> bool + Send + Sync>>,
    ) -> Branches<K, V> {
        let nodes: Vec<Arc<Node<K, V>>> = (0..=predicates.len()).map(|_| Node::new()).collect();
        let predicates = Arc::new(predicates);
        let ns = nodes.clone();
        self.node.add(Arc::new(move |b| {
            let mut sinks: Vec<Sink<K, V>> = ns.iter().map(|n| n.build(b)).collect();
            let predicates = predicates.clone();
            Box::new(move |ctx, r| {
                let i = predicates
                    .iter()
                    .position(|p| p(&r.key, &r.value))
                    .unwrap_or(predicates.len());
                sinks[i](ctx, r)
            })
        }));
        let mut streams: Vec<KStream<K, V>> = nodes
            .into_iter()
            .map(|n| KStream::new(n, self.group, self.graph.clone(), self.key_changed))
            .collect();
        let default = streams.pop().unwrap_or_else(|| self.clone());
        Branches {
            branches: streams,
            default,
        }
    }

    /// Both streams' records in one stream; their inputs are read by the same tasks.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let child: Arc<Node<K, V>> = Node::new_shared();
        for parent in [&self.node, &other.node] {
            let c = child.clone();
            parent.add(Arc::new(move |b| c.build(b)));
        }
        let group = graph(&self.graph).union(self.group, other.group);
        KStream::new(
            child,
            group,
            self.graph.clone(),
            self.key_changed || other.key_changed,
        )
    }

    /// Writes the stream to a topic, partitioned by the producer (murmur2 of the key).
    pub fn to(&self, topic: &str) {
        self.to_partitioned(topic, None::<fn(&K, &V, i32) -> i32>);
    }

    /// Writes the stream to a topic; `partitioner(key, value, partition count)` picks the
    /// partition.
    pub fn to_with_partitioner(
        &self,
        topic: &str,
        partitioner: impl Fn(&K, &V, i32) -> i32 + Send + Sync + 'static,
    ) {
        self.to_partitioned(topic, Some(partitioner));
    }

    fn to_partitioned<P: Fn(&K, &V, i32) -> i32 + Send + Sync + 'static>(
        &self,
        topic: &str,
        p: Option<P>,
    ) {
        let topic = TopicRef::User(topic.to_string());
        let p = p.map(Arc::new);
        self.derive::<K, V>(false, move |_, _| {
            let (topic, p) = (topic.clone(), p.clone());
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let name = topic.resolve(&ctx.application_id);
                let partition = match &p {
                    None => None,
                    Some(p) => match (ctx.partitions_of)(&name) {
                        Some(n) if n > 0 => Some(p(&r.key, &r.value, n).rem_euclid(n)),
                        _ => None,
                    },
                };
                ctx.send(serialize_out(name, partition, r))
            })
        });
    }

    /// Writes the stream through the internal topic `<application.id>-<name>-repartition`
    /// and reads it back, so that records with equal keys meet in the same task.
    pub fn repartition(&self, name: Option<&str>) -> KStream<K, V> {
        let suffix = {
            let mut g = graph(&self.graph);
            let base = name
                .map(String::from)
                .unwrap_or_else(|| g.name("KSTREAM-REPARTITION"));
            format!("{base}-repartition")
        };
        let topic = TopicRef::Internal(suffix);
        graph(&self.graph).internal.push(InternalTopic {
            topic: topic.clone(),
            compact: false,
            retention_ms: None,
        });
        let t = topic.clone();
        self.derive::<K, V>(false, move |_, _| {
            let t = t.clone();
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let name = t.resolve(&ctx.application_id);
                ctx.send(serialize_out(name, None, r))
            })
        });
        source_stream(&self.graph, topic, None)
    }

    /// The latest value per key as a table (a null-free stream: every record is an upsert).
    pub fn to_table(&self, m: Materialized) -> KTable<K, V> {
        let input = if self.key_changed {
            self.repartition(None)
        } else {
            self.clone()
        };
        let store = add_store(
            &input.graph,
            input.group,
            &m,
            "KSTREAM-TOTABLE-STATE-STORE",
            None,
            super::Values::Stamped,
        );
        let child: Arc<Node<K, Change<V>>> = Node::new();
        let (c, s) = (child.clone(), store.clone());
        input.node.add(Arc::new(move |b| {
            let mut next = c.build(b);
            let store = s.clone();
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let kb = key_bytes(&r.key);
                let old = super::get_stamped::<V>(ctx, &store, &kb).map(|(v, _)| v);
                super::put_stamped(ctx, &store, &kb, Some(&r.value), r.timestamp);
                let k = r.key.clone();
                let new = Some(r.value.clone());
                next(ctx, r.with(k, Change { new, old }))
            })
        }));
        KTable::new(child, input.group, input.graph.clone(), store)
    }

    /// Groups by the current key (repartitioning first if the key was changed upstream).
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        self.group_by_key_with(Grouped::default())
    }

    /// [`group_by_key`](Self::group_by_key) with a named repartition topic.
    pub fn group_by_key_with(&self, grouped: Grouped) -> KGroupedStream<K, V> {
        let input = if self.key_changed {
            self.repartition(grouped.name.as_deref())
        } else {
            self.clone()
        };
        KGroupedStream::new(input)
    }

    /// Groups by a new key, through a repartition topic.
    pub fn group_by<K2: Serde>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KGroupedStream<K2, V> {
        self.group_by_with(f, Grouped::default())
    }

    /// [`group_by`](Self::group_by) with a named repartition topic
    /// (`<application.id>-<name>-repartition`).
    pub fn group_by_with<K2: Serde>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped,
    ) -> KGroupedStream<K2, V> {
        KGroupedStream::new(self.select_key(f).repartition(grouped.name.as_deref()))
    }

    /// The Processor API: `make` builds one processor per task; `stores` are the state
    /// stores it reads and writes by name (each task gets its own instances).
    pub fn process<K2: Serde, V2: Serde, P>(
        &self,
        make: impl Fn() -> P + Send + Sync + 'static,
        stores: Vec<Materialized>,
    ) -> KStream<K2, V2>
    where
        P: super::processor::Processor<K, V, K2, V2> + 'static,
    {
        for m in &stores {
            let name = add_store(
                &self.graph,
                self.group,
                m,
                "KSTREAM-PROCESSOR-STATE-STORE",
                None,
                super::Values::Plain,
            );
            if m.enable_caching {
                super::cache_store(&self.graph, m, &name);
            }
        }
        super::processor::attach(self, make)
    }
}
