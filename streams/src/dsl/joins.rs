//! Joins of a stream: with a table (lookup when the stream side receives a record),
//! with a global table (by a key mapped from the record), and with another stream
//! inside a time window. Stream-stream left and outer joins hold a record that finds no
//! partner in a store shared by both sides and emit its padded row only once its
//! window has closed (after grace), unless a partner arrives first (Kafka Streams 3.1+,
//! KAFKA-10847).

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::kstream::KStream;
use super::ktable::{GlobalKTable, KTable};
use super::named::{Joined, StreamJoined};
use super::{add_store, get_stamped, get_typed, graph, Values};
use crate::record::Record;
use crate::serde::Serde;
use crate::state::window as wk;
use crate::topology::{Node, Sink, TaskCtx};

/// How far apart in time two records may be to join: `before` ms earlier to `after` ms
/// later, and how long late records are still accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
}

impl JoinWindows {
    pub fn of_time_difference_without_grace(d: Duration) -> JoinWindows {
        JoinWindows::of_time_difference_and_grace(d, Duration::ZERO)
    }
    pub fn of_time_difference_and_grace(d: Duration, grace: Duration) -> JoinWindows {
        let d = millis(d);
        JoinWindows {
            before_ms: d,
            after_ms: d,
            grace_ms: millis(grace),
        }
    }
    /// How much earlier than a record of this stream the other's may be
    /// (`JoinWindows.before`): an asymmetric window.
    pub fn before(mut self, d: Duration) -> JoinWindows {
        self.before_ms = millis(d);
        self
    }
    /// How much later than a record of this stream the other's may be
    /// (`JoinWindows.after`).
    pub fn after(mut self, d: Duration) -> JoinWindows {
        self.after_ms = millis(d);
        self
    }
}

/// A duration in ms, kept far enough from overflow that window arithmetic on it is safe.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// The table key a stream record looks up; `None` for a null key.
type KeyOf<K, V> = Arc<dyn Fn(&K, &V) -> Option<Vec<u8>> + Send + Sync>;
type Joiner<V, V2, VR> = Arc<dyn Fn(Option<&V>, Option<&V2>) -> Option<VR> + Send + Sync>;

impl<K: Serde, V: Serde> KStream<K, V> {
    /// This stream, repartitioned first if its key was changed (through
    /// `<name>-repartition` when named).
    fn copartitioned(&self, name: Option<&str>) -> KStream<K, V> {
        if self.key_changed {
            self.repartition(name)
        } else {
            self.clone()
        }
    }

    fn lookup_join<V2: Serde, VR: Serde>(
        &self,
        store: String,
        (other_group, joined): (Option<usize>, Joined),
        key_of: KeyOf<K, V>,
        joiner: Joiner<V, V2, VR>,
    ) -> KStream<K, VR> {
        let input = if other_group.is_some() {
            self.copartitioned(joined.name.as_deref())
        } else {
            self.clone()
        };
        let group = match other_group {
            Some(g) => graph(&input.graph).union(input.group, g),
            None => input.group,
        };
        // A table's store is timestamped; a global table's holds its topic's values.
        let stamped = other_group.is_some();
        let child: Arc<Node<K, VR>> = Node::new();
        let c = child.clone();
        input.node.add(Arc::new(move |b| {
            let mut next = c.build(b);
            let (store, key_of, joiner) = (store.clone(), key_of.clone(), joiner.clone());
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                // A null key matches no row, not even the empty key's (KStreamKTableJoin).
                let other: Option<V2> = match key_of(&r.key, &r.value) {
                    None => None,
                    Some(kb) if stamped => get_stamped(ctx, &store, &kb).map(|(v, _)| v),
                    Some(kb) => get_typed(ctx, &store, &kb),
                };
                match joiner(Some(&r.value), other.as_ref()) {
                    Some(out) => {
                        let k = r.key.clone();
                        next(ctx, r.with(k, out))
                    }
                    None if r.key.is_null() => ctx.skip_record("null key"),
                    None => {}
                }
            })
        }));
        KStream::new(child, group, input.graph.clone(), false)
    }

    /// Inner stream-table join.
    pub fn join_table<V2: Serde, VR: Serde>(
        &self,
        table: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_table_with(table, joiner, Joined::default())
    }

    /// [`join_table`](Self::join_table), named (its repartition topic, if one).
    pub fn join_table_with<V2: Serde, VR: Serde>(
        &self,
        table: &KTable<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        joined: Joined,
    ) -> KStream<K, VR> {
        self.lookup_join(
            table.store.clone(),
            (Some(table.group), joined),
            Arc::new(|k, _| k.to_bytes()),
            Arc::new(move |v, t| Some(joiner(v?, t?))),
        )
    }

    /// Left stream-table join: every stream record, with the table's value if any.
    pub fn left_join_table<V2: Serde, VR: Serde>(
        &self,
        table: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.left_join_table_with(table, joiner, Joined::default())
    }

    /// [`left_join_table`](Self::left_join_table), named (its repartition topic, if one).
    pub fn left_join_table_with<V2: Serde, VR: Serde>(
        &self,
        table: &KTable<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        joined: Joined,
    ) -> KStream<K, VR> {
        self.lookup_join(
            table.store.clone(),
            (Some(table.group), joined),
            Arc::new(|k, _| k.to_bytes()),
            Arc::new(move |v, t| Some(joiner(v?, t))),
        )
    }

    /// Inner join with a global table, looked up by `key_of(key, value)`.
    pub fn join_global<GK: Serde, GV: Serde, VR: Serde>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_of: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, &GV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.lookup_join(
            table.store.clone(),
            (None, Joined::default()),
            Arc::new(move |k, v| key_of(k, v).to_bytes()),
            Arc::new(move |v, t| Some(joiner(v?, t?))),
        )
    }

    pub fn left_join_global<GK: Serde, GV: Serde, VR: Serde>(
        &self,
        table: &GlobalKTable<GK, GV>,
        key_of: impl Fn(&K, &V) -> GK + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&GV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.lookup_join(
            table.store.clone(),
            (None, Joined::default()),
            Arc::new(move |k, v| key_of(k, v).to_bytes()),
            Arc::new(move |v, t| Some(joiner(v?, t))),
        )
    }

    /// Inner windowed stream-stream join.
    pub fn join<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`join`](Self::join) with named stores and repartition topics.
    pub fn join_with<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, V2, VR> = Arc::new(move |a, b| Some(joiner(a?, b?)));
        self.window_join(other, joiner, (windows, joined), false, false)
    }

    /// Left windowed join: a record of this stream without partner joins with `None`.
    pub fn left_join<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.left_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`left_join`](Self::left_join) with named stores and repartition topics.
    pub fn left_join_with<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, V2, VR> = Arc::new(move |a, b| Some(joiner(a?, b)));
        self.window_join(other, joiner, (windows, joined), true, false)
    }

    /// Outer windowed join: a record of either stream without partner joins with `None`.
    pub fn outer_join<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR> {
        self.outer_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`outer_join`](Self::outer_join) with named stores and repartition topics.
    pub fn outer_join_with<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined,
    ) -> KStream<K, VR> {
        let joiner: Joiner<V, V2, VR> = Arc::new(move |a, b| Some(joiner(a, b)));
        self.window_join(other, joiner, (windows, joined), true, true)
    }

    fn window_join<V2: Serde, VR: Serde>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V, V2, VR>,
        (w, joined): (JoinWindows, StreamJoined),
        pad_this: bool,
        pad_other: bool,
    ) -> KStream<K, VR> {
        // KStreamImplJoin: `<name>-left-repartition`, `<name>-right-repartition`.
        let side_name = |side: &str| joined.name.as_ref().map(|n| format!("{n}-{side}"));
        let this = self.copartitioned(side_name("left").as_deref());
        let that = other.copartitioned(side_name("right").as_deref());
        let group = graph(&this.graph).union(this.group, that.group);
        let retention = w.before_ms + w.after_ms + w.grace_ms;
        let store = |suffix: &str, prefix: &str| {
            add_store(
                &this.graph,
                group,
                &joined.store(suffix),
                prefix,
                Some(retention + 86_400_000),
                Values::Plain,
            )
        };
        // Kafka's store names: an outer join's this side and a left or outer join's
        // other side are "outer".
        let this_store = store(
            if pad_other {
                "-outer-this-join"
            } else {
                "-this-join"
            },
            "KSTREAM-JOINTHIS-STORE",
        );
        let that_store = store(
            if pad_this {
                "-outer-other-join"
            } else {
                "-other-join"
            },
            "KSTREAM-JOINOTHER-STORE",
        );
        let outer = (pad_this || pad_other)
            .then(|| store("-outer-shared-join", "KSTREAM-OUTERSHARED-STORE"));
        let child: Arc<Node<K, VR>> = Node::new_shared();
        let j = joiner.clone();
        let flipped: Joiner<V2, V, VR> = Arc::new(move |b, a| j(a, b));
        attach_side(
            &this.node,
            child.clone(),
            Side {
                own: this_store.clone(),
                other: that_store.clone(),
                outer: outer.clone(),
                left: true,
                pad: pad_this,
                time: this_store.clone(),
            },
            (w.before_ms, w.after_ms, w.grace_ms),
            joiner,
        );
        attach_side(
            &that.node,
            child.clone(),
            Side {
                own: that_store,
                other: this_store.clone(),
                outer,
                left: false,
                pad: pad_other,
                time: this_store,
            },
            (w.after_ms, w.before_ms, w.grace_ms),
            flipped,
        );
        KStream::new(child, group, this.graph.clone(), false)
    }
}

/// One side of a windowed join: its buffer, the other side's, and the store of
/// unmatched records both sides share (left and outer joins only).
struct Side {
    own: String,
    other: String,
    outer: Option<String>,
    /// This side is the join's left (`this`) stream.
    left: bool,
    /// This side's unmatched records are emitted padded with `None`.
    pad: bool,
    /// The name of the stream time both sides share.
    time: String,
}

/// The shared outer store's key: time first (so closed windows are a prefix), the
/// side, then the record's key in its side's buffer.
fn outer_key(ts: i64, left: bool, buffer_key: &[u8]) -> Vec<u8> {
    let mut k = ((ts as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.push(u8::from(left));
    k.extend_from_slice(buffer_key);
    k
}

/// A buffered record's time: its buffer key is a window key and an 8-byte sequence.
fn buffered_time(k: &[u8]) -> Option<i64> {
    k.len()
        .checked_sub(8)
        .and_then(|n| wk::parse_window_key(&k[..n]).ok())
        .map(|(_, t)| t)
}

/// One side of a windowed join: buffer the record, join it with the other side's
/// buffered records within (before, after) of its time; a record of a padded side
/// that finds none waits in the outer store until its window closes.
fn attach_side<K: Serde, A: Serde, B: Serde, VR: Serde>(
    node: &Arc<Node<K, A>>,
    child: Arc<Node<K, VR>>,
    side: Side,
    (before, after, grace): (i64, i64, i64),
    joiner: Joiner<A, B, VR>,
) {
    let side = Arc::new(side);
    let retention = before + after + grace;
    node.add(Arc::new(move |b| {
        let mut next: Sink<K, VR> = child.build(b);
        let (side, joiner) = (side.clone(), joiner.clone());
        let mut last_purge = i64::MIN;
        // Both sides' stream time (KStreamKStreamJoin's shared TimeTracker): only the
        // records reaching the join advance it.
        let time = b.shared_time(&side.time);
        Box::new(move |ctx: &mut TaskCtx, r: Record<K, A>| {
            let Some(kb) = super::keyed(ctx, &r) else {
                return;
            };
            let ts = r.timestamp;
            let now = time
                .fetch_max(ts, std::sync::atomic::Ordering::Relaxed)
                .max(ts);
            if ts.saturating_add(retention) < now {
                ctx.dropped_late += 1;
                return;
            }
            // KStreamKStreamJoin: a record that advances stream time first lets out the
            // unmatched records whose windows it closed.
            if let (Some(outer), true) = (&side.outer, ts >= now) {
                emit_closed::<K, A, B, VR>(
                    ctx,
                    outer,
                    &side,
                    (before, after, grace, now),
                    &joiner,
                    &mut next,
                );
            }
            ctx.seq += 1;
            let mut sk = wk::window_key(&kb, ts);
            sk.extend(ctx.seq.to_be_bytes());
            let Some(bytes) = r.value.to_bytes() else {
                return;
            };
            ctx.put(&side.own, &sk, Some(&bytes));
            let from = wk::window_key(&kb, ts.saturating_sub(before));
            let mut to = wk::window_key(&kb, ts.saturating_add(after));
            to.extend([0xff; 8]);
            let mut matched = false;
            for (k, v) in ctx.range(&side.other, Bound::Included(&from), Bound::Included(&to)) {
                let other_ts = buffered_time(&k).unwrap_or(ts);
                let ov = match B::from_bytes(Some(&v)) {
                    Ok(v) => v,
                    Err(e) => return ctx.fail(e),
                };
                matched = true;
                // The partner no longer waits to be emitted padded.
                if let Some(outer) = &side.outer {
                    ctx.put(outer, &outer_key(other_ts, !side.left, &k), None);
                }
                if let Some(out) = joiner(Some(&r.value), Some(&ov)) {
                    let mut rec = r.clone().with(r.key.clone(), out);
                    rec.timestamp = ts.max(other_ts);
                    next(ctx, rec);
                }
            }
            if let (false, true, Some(outer)) = (matched, side.pad, &side.outer) {
                ctx.put(outer, &outer_key(ts, side.left, &sk), Some(&bytes));
            }
            if now.saturating_sub(last_purge) >= retention.max(1000) {
                last_purge = now;
                let horizon = now.saturating_sub(retention);
                for (k, _) in ctx.range(&side.own, Bound::Unbounded, Bound::Unbounded) {
                    if buffered_time(&k).is_some_and(|t| t < horizon) {
                        ctx.put(&side.own, &k, None);
                    }
                }
            }
        })
    }));
}

/// Emits, padded with `None`, the unmatched records of either side whose window
/// (its end plus grace) stream time has passed, oldest first, each with its own time.
fn emit_closed<K: Serde, A: Serde, B: Serde, VR: Serde>(
    ctx: &mut TaskCtx,
    outer: &str,
    side: &Side,
    (before, after, grace, now): (i64, i64, i64, i64),
    joiner: &Joiner<A, B, VR>,
    next: &mut Sink<K, VR>,
) {
    let horizon = now.saturating_sub(before.min(after)).saturating_sub(grace);
    let upto = ((horizon as u64) ^ (1 << 63)).to_be_bytes();
    for (k, v) in ctx.range(outer, Bound::Unbounded, Bound::Excluded(&upto[..])) {
        let Some((&left, buffer_key)) = k.get(8..).and_then(|rest| rest.split_first()) else {
            continue;
        };
        let own = (left == 1) == side.left;
        let Some(ts) = buffered_time(buffer_key) else {
            continue;
        };
        // Its window ends `after` (own side) or `before` (the other side, whose after
        // is this side's before) past its time.
        let end = ts.saturating_add(if own { after } else { before });
        if end.saturating_add(grace) >= now {
            continue;
        }
        let Some(key_bytes) = buffer_key
            .len()
            .checked_sub(8)
            .and_then(|n| wk::parse_window_key(&buffer_key[..n]).ok())
            .map(|(key, _)| key.to_vec())
        else {
            continue;
        };
        ctx.put(outer, &k, None);
        let key = match K::from_bytes(Some(&key_bytes)) {
            Ok(key) => key,
            Err(e) => return ctx.fail(e),
        };
        let out = if own {
            A::from_bytes(Some(&v)).map(|a| joiner(Some(&a), None))
        } else {
            B::from_bytes(Some(&v)).map(|b| joiner(None, Some(&b)))
        };
        match out {
            Ok(Some(out)) => next(ctx, Record::new(key, out, ts)),
            Ok(None) => {}
            Err(e) => return ctx.fail(e),
        }
    }
}
