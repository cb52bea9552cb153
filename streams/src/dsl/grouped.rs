//! Grouped streams and tables: count, reduce and aggregate into a table, and windowing.

use std::sync::Arc;

use super::kstream::KStream;
use super::ktable::{flatten, Change, KTable};
use super::windowed::{SessionWindowedKStream, SessionWindows, TimeWindowedKStream, TimeWindows};
use super::{add_store, get_stamped, put_stamped, Materialized, Values};
use super::{Init, Step};
use crate::error::{Error, Result};
use crate::record::Record;
use crate::serde::Serde;
use crate::topology::{Node, TaskCtx};

/// A table group-by's repartitioned update: the old row's value to subtract and the
/// new row's to add. Both travel together when the row stays in its group, so the
/// aggregation applies subtractor and adder at once and emits one result (Kafka 3.5+,
/// KIP-904); otherwise the old group gets the subtraction, the new one the addition.
#[derive(Debug, Clone, PartialEq)]
pub struct Regrouped<V> {
    pub old: Option<V>,
    pub new: Option<V>,
}

impl<V: Serde> Serde for Regrouped<V> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        // A flags byte, the old value's length and bytes, then the new value's bytes.
        let old = self.old.as_ref().and_then(Serde::to_bytes);
        let new = self.new.as_ref().and_then(Serde::to_bytes);
        let flags = u8::from(old.is_some()) | (u8::from(new.is_some()) << 1);
        let old = old.unwrap_or_default();
        let mut out = vec![flags];
        out.extend((old.len() as u32).to_be_bytes());
        out.extend(old);
        out.extend(new.unwrap_or_default());
        Some(out)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        let corrupt = || Error::Deserialize {
            what: "a table group-by update".into(),
            reason: "truncated".into(),
        };
        let b = b.ok_or_else(corrupt)?;
        let (&flags, rest) = b.split_first().ok_or_else(corrupt)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        let (old, new) = (rest.get(..len).ok_or_else(corrupt)?, &rest[len..]);
        Ok(Regrouped {
            old: (flags & 1 == 1)
                .then(|| V::from_bytes(Some(old)))
                .transpose()?,
            new: (flags & 2 == 2)
                .then(|| V::from_bytes(Some(new)))
                .transpose()?,
        })
    }
}

pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}

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
            super::reduce_step(f),
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
        super::cache_store(&s.graph, &m, &store);
        let child: Arc<Node<K, Change<A>>> = Node::new();
        let (c, st) = (child.clone(), store.clone());
        s.node.add(Arc::new(move |b| {
            let next = c.build(b);
            let (store, init, f) = (st.clone(), init.clone(), f.clone());
            // Cached: the store's flush forwards each key's folded update instead.
            let cached = b.is_cached(&store);
            let mut forward = if cached {
                let key_of = |kb: &[u8]| Ok((K::from_bytes(Some(kb))?, None));
                b.on_flush(&store, super::forward_flushed::<K, A>(next, key_of, false));
                None
            } else {
                Some(next)
            };
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let Some(kb) = super::keyed(ctx, &r) else {
                    return;
                };
                let stored: Option<(A, i64)> = get_stamped(ctx, &store, &kb);
                // KStreamAggregate (KIP-258): the result carries the largest timestamp
                // of the records behind it.
                let ts = stored
                    .as_ref()
                    .map_or(r.timestamp, |(_, t)| r.timestamp.max(*t));
                let old = stored.map(|(a, _)| a);
                let new = f(&r.key, &r.value, old.clone().unwrap_or_else(|| init()));
                put_stamped(ctx, &store, &kb, Some(&new), ts);
                let Some(next) = forward.as_mut() else { return };
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
    stream: KStream<K, Regrouped<V>>,
}

impl<K: Serde, V: Serde> KGroupedTable<K, V> {
    pub(crate) fn new(stream: KStream<K, Regrouped<V>>) -> KGroupedTable<K, V> {
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
            Arc::new(move |_, u: &Regrouped<V>, agg: Option<V>| {
                let agg = match (agg, &u.old) {
                    (Some(a), Some(old)) => Some(subtractor(a, old.clone())),
                    (agg, _) => agg,
                };
                match (agg, &u.new) {
                    (Some(a), Some(new)) => Some(adder(a, new.clone())),
                    (None, Some(new)) => Some(new.clone()),
                    (agg, None) => agg,
                }
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
            Arc::new(move |k, u: &Regrouped<V>, agg| {
                let agg = match &u.old {
                    Some(old) => subtractor(k, old, agg),
                    None => agg,
                };
                match &u.new {
                    Some(new) => adder(k, new, agg),
                    None => agg,
                }
            }),
        )
    }
}
