//! Grouped streams and tables: count, reduce and aggregate into a table, and windowing.

use std::sync::Arc;

use super::kstream::KStream;
use super::ktable::{flatten, Change, KTable};
use super::windowed::{SessionWindowedKStream, SessionWindows, TimeWindowedKStream, TimeWindows};
use super::{add_store, get_stamped, put_stamped, Materialized, Values};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::serde::Serde;
use crate::topology::{Node, TaskCtx};

/// A table group-by's repartitioned update: add the new row's value, or retract the old.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed<V> {
    pub add: bool,
    pub value: V,
}

impl<V: Serde> Serde for Signed<V> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut out = vec![u8::from(self.add)];
        out.extend(self.value.to_bytes().unwrap_or_default());
        Some(out)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        let b = b
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::Deserialize {
                what: "a table group-by update".into(),
                reason: "empty".into(),
            })?;
        Ok(Signed {
            add: b[0] == 1,
            value: V::from_bytes(Some(&b[1..]))?,
        })
    }
}

pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}

type Init<A> = Arc<dyn Fn() -> A + Send + Sync>;
type Step<K, V, A> = Arc<dyn Fn(&K, &V, A) -> A + Send + Sync>;

impl<K: Serde, V: Serde> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream { stream }
    }

    pub fn count(&self, m: Materialized) -> KTable<K, i64> {
        self.aggregate_with(
            m,
            "KSTREAM-COUNT-STATE-STORE",
            Arc::new(|| 0),
            Arc::new(|_, _, n| n + 1),
        )
    }

    /// Combines values of a key; the first value of a key is taken as it is.
    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, V> {
        let t: KTable<K, Option<V>> = self.aggregate_with(
            m,
            "KSTREAM-REDUCE-STATE-STORE",
            Arc::new(|| None),
            Arc::new(move |_, v: &V, acc: Option<V>| {
                Some(match acc {
                    Some(a) => f(a, v.clone()),
                    None => v.clone(),
                })
            }),
        );
        flatten(t)
    }

    pub fn aggregate<A: Serde>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, A> {
        self.aggregate_with(
            m,
            "KSTREAM-AGGREGATE-STATE-STORE",
            Arc::new(init),
            Arc::new(f),
        )
    }

    fn aggregate_with<A: Serde>(
        &self,
        m: Materialized,
        prefix: &str,
        init: Init<A>,
        f: Step<K, V, A>,
    ) -> KTable<K, A> {
        let s = &self.stream;
        let store = add_store(&s.graph, s.group, &m, prefix, None, Values::Stamped);
        let child: Arc<Node<K, Change<A>>> = Node::new();
        let (c, st) = (child.clone(), store.clone());
        s.node.add(Arc::new(move |b| {
            let mut next = c.build(b);
            let (store, init, f) = (st.clone(), init.clone(), f.clone());
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                // As in Kafka Streams, records with a null key are not aggregated.
                let Some(kb) = r.key.to_bytes() else { return };
                let stored: Option<(A, i64)> = get_stamped(ctx, &store, &kb);
                // KStreamAggregate (KIP-258): the result carries the largest timestamp
                // of the records behind it.
                let ts = stored
                    .as_ref()
                    .map_or(r.timestamp, |(_, t)| r.timestamp.max(*t));
                let old = stored.map(|(a, _)| a);
                let new = f(&r.key, &r.value, old.clone().unwrap_or_else(|| init()));
                put_stamped(ctx, &store, &kb, Some(&new), ts);
                let k = r.key.clone();
                let mut out = r.with(
                    k,
                    Change {
                        new: Some(new),
                        old,
                    },
                );
                out.timestamp = ts;
                next(ctx, out)
            })
        }));
        KTable::new(child, s.group, s.graph.clone(), store)
    }

    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream::new(self.stream.clone(), windows)
    }

    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream::new(self.stream.clone(), windows)
    }
}

/// A re-keyed table, ready to aggregate with an adder and a subtractor.
pub struct KGroupedTable<K, V> {
    stream: KStream<K, Signed<V>>,
}

impl<K: Serde, V: Serde> KGroupedTable<K, V> {
    pub(crate) fn new(stream: KStream<K, Signed<V>>) -> KGroupedTable<K, V> {
        KGroupedTable { stream }
    }

    pub fn count(&self, m: Materialized) -> KTable<K, i64> {
        self.aggregate(|| 0, |_, _, n| n + 1, |_, _, n| n - 1, m)
    }

    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, V> {
        let grouped = KGroupedStream::new(self.stream.clone());
        let (adder, subtractor) = (Arc::new(adder), Arc::new(subtractor));
        let t: KTable<K, Option<V>> = grouped.aggregate_with(
            m,
            "KTABLE-REDUCE-STATE-STORE",
            Arc::new(|| None),
            Arc::new(move |_, s: &Signed<V>, agg: Option<V>| match (agg, s.add) {
                (None, true) => Some(s.value.clone()),
                (None, false) => None,
                (Some(a), true) => Some(adder(a, s.value.clone())),
                (Some(a), false) => Some(subtractor(a, s.value.clone())),
            }),
        );
        flatten(t)
    }

    pub fn aggregate<A: Serde>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        adder: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, A> {
        let grouped = KGroupedStream::new(self.stream.clone());
        grouped.aggregate_with(
            m,
            "KTABLE-AGGREGATE-STATE-STORE",
            Arc::new(init),
            Arc::new(move |k, s: &Signed<V>, agg| {
                if s.add {
                    adder(k, &s.value, agg)
                } else {
                    subtractor(k, &s.value, agg)
                }
            }),
        )
    }
}
