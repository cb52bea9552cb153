//! The foreign-key table-table join, as Kafka Streams builds it: each row of the left
//! table subscribes, through a subscription topic partitioned like the right table, to
//! the right row its foreign key names; the right side answers — on subscription and on
//! every change of that row — through a response topic partitioned like the left table;
//! the left side joins a response only if the row it was computed for (by hash) is
//! still current, so a stale answer never wins over a newer foreign key.

use std::sync::Arc;

use super::ktable::{Change, KTable};
use super::{add_store, get_stamped, graph, put_stamped, Materialized, Values};
use crate::record::{Output, RawRecord, Record};
use crate::serde::{key_bytes, Serde};
use crate::state::{stamped, window as wk};
use crate::topology::{BuildCtx, InternalTopic, Node, RawSink, SourceDef, TaskCtx, TopicRef};

/// FNV-1a: a hash that is the same in every process and version.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn send(ctx: &mut TaskCtx, topic: &TopicRef, key: Vec<u8>, value: Vec<u8>, timestamp: i64) {
    let name = topic.resolve(&ctx.application_id);
    ctx.send(Output {
        topic: name,
        partition: None,
        key: Some(key),
        value: Some(value),
        timestamp,
        headers: Vec::new(),
    })
}

type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

impl<K: Serde, V: Serde> KTable<K, V> {
    /// Inner foreign-key join: each row joins the row of `other` keyed `fk(value)`.
    pub fn join_on_foreign_key<KO: Serde, VO: Serde, VR: Serde>(
        &self,
        other: &KTable<KO, VO>,
        fk: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        self.fk_join(
            other,
            Arc::new(fk),
            Arc::new(move |v, o| Some(joiner(v, o?))),
            m,
        )
    }

    /// Left foreign-key join: every row, with the foreign row if there is one.
    pub fn left_join_on_foreign_key<KO: Serde, VO: Serde, VR: Serde>(
        &self,
        other: &KTable<KO, VO>,
        fk: impl Fn(&V) -> KO + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<K, VR> {
        self.fk_join(
            other,
            Arc::new(fk),
            Arc::new(move |v, o| Some(joiner(v, o))),
            m,
        )
    }

    fn fk_join<KO: Serde, VO: Serde, VR: Serde>(
        &self,
        other: &KTable<KO, VO>,
        fk: Arc<dyn Fn(&V) -> KO + Send + Sync>,
        joiner: FkJoiner<V, VO, VR>,
        m: Materialized,
    ) -> KTable<K, VR> {
        let (sub_topic, res_topic, sub_group, res_group) = {
            let mut g = graph(&self.graph);
            let name = g.name("KTABLE-FK-JOIN");
            let sub = TopicRef::Internal(format!("{name}-SUBSCRIPTION-REGISTRATION-topic"));
            let res = TopicRef::Internal(format!("{name}-SUBSCRIPTION-RESPONSE-topic"));
            for t in [&sub, &res] {
                g.internal.push(InternalTopic {
                    topic: t.clone(),
                    compact: false,
                    retention_ms: None,
                });
            }
            let sg = g.new_group();
            let sg = g.union(other.group, sg);
            let rg = g.new_group();
            let rg = g.union(self.group, rg);
            (sub, res, sg, rg)
        };
        let subs = add_store(
            &self.graph,
            sub_group,
            &Materialized::default(),
            "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE",
            None,
            Values::Plain,
        );
        let result = add_store(
            &self.graph,
            res_group,
            &m,
            "KTABLE-FK-JOIN-OUTPUT-STATE-STORE",
            None,
            Values::Stamped,
        );
        let child: Arc<Node<K, Change<VR>>> = Node::new_shared();

        // Left side: (un)subscribe when a row's foreign key changes; a deleted row is
        // deleted from the result at once.
        let (c, st, r, f) = (child.clone(), sub_topic.clone(), result.clone(), fk.clone());
        self.node.add(Arc::new(move |b: &mut BuildCtx| {
            let mut next = c.build(b);
            let (sub_topic, result, fk) = (st.clone(), r.clone(), f.clone());
            Box::new(move |ctx: &mut TaskCtx, rec: Record<K, Change<V>>| {
                let kb = key_bytes(&rec.key);
                let old_fk = rec.value.old.as_ref().map(|v| key_bytes(&fk(v)));
                let new_fk = rec.value.new.as_ref().map(|v| key_bytes(&fk(v)));
                if let Some(ofk) = old_fk.filter(|o| Some(o) != new_fk.as_ref()) {
                    let mut value = vec![0u8];
                    value.extend(0u64.to_be_bytes());
                    value.extend(&kb);
                    send(ctx, &sub_topic, ofk, value, rec.timestamp);
                }
                match (&rec.value.new, new_fk) {
                    (Some(v), Some(nfk)) => {
                        let mut value = vec![1u8];
                        value.extend(hash(&v.to_bytes().unwrap_or_default()).to_be_bytes());
                        value.extend(&kb);
                        send(ctx, &sub_topic, nfk, value, rec.timestamp);
                    }
                    _ => {
                        let old = get_stamped::<VR>(ctx, &result, &kb).map(|(v, _)| v);
                        if old.is_some() {
                            ctx.put(&result, &kb, None);
                            let k = rec.key.clone();
                            next(ctx, rec.with(k, Change { new: None, old }));
                        }
                    }
                }
            })
        }));

        // Right side, on a subscription: remember it and answer with the current row.
        let (st, rt, ss, os) = (
            sub_topic.clone(),
            res_topic.clone(),
            subs.clone(),
            other.store.clone(),
        );
        let factory = Arc::new(move |_: &mut BuildCtx| -> RawSink {
            let (res_topic, subs, other_store) = (rt.clone(), ss.clone(), os.clone());
            Box::new(move |ctx: &mut TaskCtx, raw: &RawRecord| {
                let (Some(ko), Some(v)) = (&raw.key, &raw.value) else {
                    return;
                };
                if v.len() < 9 {
                    return;
                }
                let (op, h, k) = (v[0], &v[1..9], &v[9..]);
                let mut sk = wk::key_prefix(ko);
                sk.extend(k);
                if op == 0 {
                    ctx.put(&subs, &sk, None);
                    return;
                }
                ctx.put(&subs, &sk, Some(h));
                // The right table's store is timestamped: the row goes with its time.
                let row = ctx.get(&other_store, ko);
                let mut value = h.to_vec();
                match row {
                    Some(r) => {
                        value.push(1);
                        value.extend(r);
                    }
                    None => value.push(0),
                }
                send(ctx, &res_topic, k.to_vec(), value, raw.timestamp);
            })
        });
        graph(&self.graph).sources.push(SourceDef {
            topic: st,
            group: sub_group,
            factory,
        });

        // Right side, on a change of a row: answer every subscriber.
        let (rt, ss) = (res_topic.clone(), subs.clone());
        other.node.add(Arc::new(move |_: &mut BuildCtx| {
            let (res_topic, subs) = (rt.clone(), ss.clone());
            Box::new(move |ctx: &mut TaskCtx, rec: Record<KO, Change<VO>>| {
                let prefix = wk::key_prefix(&key_bytes(&rec.key));
                let mut end = prefix.clone();
                end.push(0xff);
                let row = rec
                    .value
                    .new
                    .as_ref()
                    .and_then(Serde::to_bytes)
                    .map(|r| stamped::join(&r, rec.timestamp));
                let subscribers = ctx.range(
                    &subs,
                    std::ops::Bound::Included(&prefix),
                    std::ops::Bound::Excluded(&end),
                );
                for (sk, h) in subscribers {
                    let Some(k) = sk.get(prefix.len()..) else {
                        continue;
                    };
                    if !sk.starts_with(&prefix) {
                        continue;
                    }
                    let mut value = h.clone();
                    match &row {
                        Some(r) => {
                            value.push(1);
                            value.extend(r);
                        }
                        None => value.push(0),
                    }
                    send(ctx, &res_topic, k.to_vec(), value, rec.timestamp);
                }
            })
        }));

        // Left side, on a response: join it if it answers the row as it is now.
        let (c, r, ls) = (child.clone(), result.clone(), self.store.clone());
        let factory = Arc::new(move |b: &mut BuildCtx| -> RawSink {
            let mut next = c.build(b);
            let (result, left_store, joiner) = (r.clone(), ls.clone(), joiner.clone());
            Box::new(move |ctx: &mut TaskCtx, raw: &RawRecord| {
                let (Some(kb), Some(v)) = (&raw.key, &raw.value) else {
                    return;
                };
                if v.len() < 9 {
                    return;
                }
                let h = u64::from_be_bytes(v[..8].try_into().unwrap_or_default());
                let Some(stored) = ctx.get(&left_store, kb) else {
                    return;
                };
                let Some((current, left_ts)) = stamped::split(&stored) else {
                    return;
                };
                if hash(current) != h {
                    return;
                }
                let (key, left) = match (K::from_bytes(Some(kb)), V::from_bytes(Some(current))) {
                    (Ok(k), Ok(v)) => (k, v),
                    (Err(e), _) | (_, Err(e)) => return ctx.fail(e),
                };
                let (foreign, right_ts) = match (v[8], stamped::split(&v[9..])) {
                    (1, Some((row, ts))) => match VO::from_bytes(Some(row)) {
                        Ok(vo) => (Some(vo), Some(ts)),
                        Err(e) => return ctx.fail(e),
                    },
                    _ => (None, None),
                };
                let new = joiner(&left, foreign.as_ref());
                let old = get_stamped::<VR>(ctx, &result, kb).map(|(v, _)| v);
                if new.is_none() && old.is_none() {
                    return;
                }
                // KIP-213 with KIP-258: the result has the later of the two rows' times.
                let ts = right_ts.map_or(left_ts, |t| t.max(left_ts));
                put_stamped(ctx, &result, kb, new.as_ref(), ts);
                next(ctx, Record::new(key, Change { new, old }, ts));
            })
        });
        graph(&self.graph).sources.push(SourceDef {
            topic: res_topic,
            group: res_group,
            factory,
        });
        KTable::new(child, res_group, self.graph.clone(), result)
    }
}
