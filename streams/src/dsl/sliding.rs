//! Sliding windows, as Kafka Streams' `SlidingWindows`: two records share a window when
//! their timestamps differ by at most the time difference. Each record opens a window
//! ending at it (`[t - d, t]`) and, when later records follow within `d`, one starting
//! just after it (`[t + 1, t + 1 + d]`); every window holding records is aggregated.
//! Records of a key are kept in a buffer store for `2d + grace`, and each window a new
//! record touches is folded again from the buffer.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::grouped::KGroupedStream;
use super::kstream::KStream;
use super::ktable::{Change, KTable};
use super::windowed::EmitStrategy;
use super::{add_store, get_stamped, put_stamped, Materialized, Values};
use super::{Init, Step};
use crate::record::Record;
use crate::serde::Serde;
use crate::state::window::{self as wk, Window, Windowed};
use crate::topology::{Node, TaskCtx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    pub time_difference_ms: i64,
    pub grace_ms: i64,
}

impl SlidingWindows {
    pub fn of_time_difference_with_no_grace(d: Duration) -> SlidingWindows {
        SlidingWindows::of_time_difference_and_grace(d, Duration::ZERO)
    }
    pub fn of_time_difference_and_grace(d: Duration, grace: Duration) -> SlidingWindows {
        SlidingWindows {
            time_difference_ms: i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4),
            grace_ms: i64::try_from(grace.as_millis()).unwrap_or(i64::MAX / 4),
        }
    }
}

impl<K: Serde, V: Serde> KGroupedStream<K, V> {
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream {
            stream: self.stream.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }
}

pub struct SlidingWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SlidingWindows,
    emit: EmitStrategy,
}

/// The time of a buffer key: window key layout plus an 8-byte sequence number.
fn buffered_time(k: &[u8]) -> Option<i64> {
    let n = k.len().checked_sub(8)?;
    wk::parse_window_key(&k[..n]).ok().map(|(_, t)| t)
}

impl<K: Serde, V: Serde> SlidingWindowedKStream<K, V> {
    windowed_aggregations!(SlidingWindowedKStream);

    fn aggregate_with<A: Serde>(
        &self,
        m: Materialized,
        init: Init<A>,
        f: Step<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let s = &self.stream;
        let (d, grace) = (self.windows.time_difference_ms, self.windows.grace_ms);
        let retention = 2 * d + grace + 1;
        let store = super::windowed_store(s, &m, retention);
        let buffer = add_store(
            &s.graph,
            s.group,
            &Materialized::default(),
            "KSTREAM-SLIDING-BUFFER-STORE",
            Some(retention + 86_400_000),
            Values::Plain,
        );
        let child: Arc<Node<Windowed<K>, Change<A>>> = Node::new();
        let (c, st, buf) = (child.clone(), store.clone(), buffer);
        s.node.add(Arc::new(move |b| {
            let next = c.build(b);
            let (store, buffer, init, f) = (st.clone(), buf.clone(), init.clone(), f.clone());
            // Cached: the store's flush forwards each window's folded update instead.
            let mut forward = if b.is_cached(&store) {
                let key_of = move |sk: &[u8]| -> crate::error::Result<(Windowed<K>, _)> {
                    let (kb, start) = wk::parse_window_key(sk)?;
                    let window = Window {
                        start,
                        end: start + d,
                    };
                    Ok((
                        Windowed {
                            key: K::from_bytes(Some(kb))?,
                            window,
                        },
                        None,
                    ))
                };
                b.on_flush(&store, super::forward_flushed(next, key_of, true));
                None
            } else {
                Some(next)
            };
            let mut last_purge = i64::MIN;
            // The processor's own stream time (Kafka's observedStreamTime).
            let mut observed = i64::MIN;
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let Some(kb) = super::keyed(ctx, &r) else {
                    return;
                };
                observed = observed.max(r.timestamp);
                let t = r.timestamp;
                if t.saturating_add(d).saturating_add(grace) < observed {
                    ctx.dropped_late += 1;
                    return;
                }
                let Some(vb) = r.value.to_bytes() else { return };
                ctx.seq += 1;
                let mut bk = wk::window_key(&kb, t);
                bk.extend(ctx.seq.to_be_bytes());
                ctx.put(&buffer, &bk, Some(&vb));
                let from = wk::window_key(&kb, t.saturating_sub(2 * d + 1));
                let mut to = wk::window_key(&kb, t.saturating_add(2 * d + 1));
                to.extend([0xff; 8]);
                let mut recs: Vec<(i64, V)> = Vec::new();
                for (k, v) in ctx.range(&buffer, Bound::Included(&from), Bound::Included(&to)) {
                    let (Some(ts), Ok(v)) = (buffered_time(&k), V::from_bytes(Some(&v))) else {
                        continue;
                    };
                    recs.push((ts, v));
                }
                // The windows this record opens, and those of its neighbours it falls in.
                // No window starts before 0: a left window that would is [0, d]
                // (KStreamSlidingWindowAggregate.processEarly).
                let mut starts = BTreeSet::from([(t - d).max(0)]);
                if recs.iter().any(|(ts, _)| *ts > t && *ts <= t + 1 + d) {
                    starts.insert(t + 1);
                }
                for (ts, _) in &recs {
                    if *ts >= t && *ts <= t + d {
                        starts.insert((ts - d).max(0));
                    }
                    if *ts < t && *ts >= t - 1 - d {
                        starts.insert(ts + 1);
                    }
                }
                for start in starts {
                    let end = start + d;
                    // A window closed by stream time and grace is never updated again.
                    if end.saturating_add(grace) <= observed {
                        continue;
                    }
                    let members: Vec<&(i64, V)> = recs
                        .iter()
                        .filter(|(ts, _)| *ts >= start && *ts <= end)
                        .collect();
                    if members.is_empty() {
                        continue;
                    }
                    let agg = members.iter().fold(init(), |acc, (_, v)| f(&r.key, v, acc));
                    // The result has the window's latest record time (KIP-258).
                    let max_ts = members.iter().map(|(ts, _)| *ts).max().unwrap_or(t);
                    let sk = wk::window_key(&kb, start);
                    let old = get_stamped::<A>(ctx, &store, &sk).map(|(v, _)| v);
                    put_stamped(ctx, &store, &sk, Some(&agg), max_ts);
                    let Some(next) = forward.as_mut() else {
                        continue;
                    };
                    let key = Windowed {
                        key: r.key.clone(),
                        window: Window { start, end },
                    };
                    let mut out = r.clone().with(
                        key,
                        Change {
                            new: Some(agg),
                            old,
                        },
                    );
                    out.timestamp = max_ts;
                    next(ctx, out);
                }
                let mut purged = last_purge;
                super::windowed::purge(ctx, &buffer, retention, (&mut purged, observed), |k| {
                    buffered_time(k)
                });
                super::windowed::purge(ctx, &store, retention, (&mut last_purge, observed), |k| {
                    wk::parse_window_key(k).ok().map(|(_, start)| start + d)
                });
            })
        }));
        let mut t = KTable::new(child, s.group, s.graph.clone(), store);
        t.window_close = Some(super::suppress::WindowClose::at_end(grace));
        self.emit.apply(t)
    }
}
