//! Windowed aggregations — tumbling and hopping time windows, session windows — each
//! with a grace period; records later than their window's grace are dropped and
//! counted; `suppress(until_window_closes)` turns updates into one final result per
//! window. Stream time is the largest timestamp the task has seen.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use super::kstream::KStream;
use super::ktable::{flatten, Change, KTable};
use super::suppress::{Suppressed, WindowClose};
use super::{get_stamped, put_stamped, Materialized};
use super::{Init, Step};
use crate::record::Record;
use crate::serde::Serde;
use crate::state::stamped;
use crate::state::window::{self as wk, Window, Windowed};
use crate::topology::{Node, TaskCtx};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Tumbling (advance = size) or hopping windows `[start, start + size)`, aligned to the
/// epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
}

impl TimeWindows {
    pub fn of_size_with_no_grace(size: Duration) -> TimeWindows {
        TimeWindows::of_size_and_grace(size, Duration::ZERO)
    }
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> TimeWindows {
        let size_ms = ms(size).max(1);
        TimeWindows {
            size_ms,
            advance_ms: size_ms,
            grace_ms: ms(grace),
        }
    }
    /// Hopping windows: a new window every `advance` (at most the size).
    pub fn advance_by(mut self, advance: Duration) -> TimeWindows {
        self.advance_ms = ms(advance).clamp(1, self.size_ms);
        self
    }

    /// Every window that contains `ts`.
    pub fn windows_for(&self, ts: i64) -> Vec<Window> {
        let last_start = ts - ts.rem_euclid(self.advance_ms);
        let mut out = Vec::new();
        let mut start = last_start;
        while start > ts - self.size_ms && start >= 0 {
            out.push(Window {
                start,
                end: start + self.size_ms,
            });
            start -= self.advance_ms;
        }
        out.reverse();
        out
    }
}

/// Sessions: records of a key closer than `gap` to each other share a window
/// `[first, last]`; sessions a new record bridges are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    pub gap_ms: i64,
    pub grace_ms: i64,
}

impl SessionWindows {
    pub fn with_inactivity_gap_and_no_grace(gap: Duration) -> SessionWindows {
        SessionWindows::with_inactivity_gap_and_grace(gap, Duration::ZERO)
    }
    pub fn with_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> SessionWindows {
        SessionWindows {
            gap_ms: ms(gap),
            grace_ms: ms(grace),
        }
    }
}

/// When a windowed aggregation emits (KIP-825, `EmitStrategy`): at every update of a
/// window, or once with its final result when it closes (its end plus grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitStrategy {
    #[default]
    OnWindowUpdate,
    OnWindowClose,
}

impl EmitStrategy {
    pub fn on_window_update() -> EmitStrategy {
        EmitStrategy::OnWindowUpdate
    }
    pub fn on_window_close() -> EmitStrategy {
        EmitStrategy::OnWindowClose
    }

    /// The aggregation's table as the strategy emits it.
    pub(crate) fn apply<K: Serde, A: Serde>(
        self,
        t: KTable<Windowed<K>, A>,
    ) -> KTable<Windowed<K>, A> {
        match self {
            EmitStrategy::OnWindowUpdate => t,
            EmitStrategy::OnWindowClose => t.suppress(Suppressed::until_window_closes()),
        }
    }
}

type Merge<K, A> = Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

/// Deletes entries whose window ended more than `retention` before stream time — at
/// most once per `retention` of stream time.
pub(super) fn purge(
    ctx: &mut TaskCtx,
    store: &str,
    retention: i64,
    (last, now): (&mut i64, i64),
    end_of: impl Fn(&[u8]) -> Option<i64>,
) {
    if now == i64::MIN || now.saturating_sub(*last) < retention.max(1000) {
        return;
    }
    *last = now;
    let horizon = now.saturating_sub(retention);
    // Straight to the store, past the record cache: dropping an expired window is
    // retention, not a result to forward.
    for (k, _) in ctx.range(store, Bound::Unbounded, Bound::Unbounded) {
        if end_of(&k).is_some_and(|end| end < horizon) {
            ctx.put_stored(store, &k, None);
        }
    }
}

pub struct TimeWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: TimeWindows,
    emit: EmitStrategy,
}

impl<K: Serde, V: Serde> TimeWindowedKStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            stream,
            windows,
            emit: EmitStrategy::default(),
        }
    }

    windowed_aggregations!(TimeWindowedKStream);

    fn aggregate_with<A: Serde>(
        &self,
        m: Materialized,
        init: Init<A>,
        f: Step<K, V, A>,
    ) -> KTable<Windowed<K>, A> {
        let s = &self.stream;
        let w = self.windows;
        let retention = w.size_ms + w.grace_ms;
        let store = super::windowed_store(s, &m, retention);
        let child: Arc<Node<Windowed<K>, Change<A>>> = Node::new();
        let (c, st) = (child.clone(), store.clone());
        s.node.add(Arc::new(move |b| {
            let next = c.build(b);
            let (store, init, f) = (st.clone(), init.clone(), f.clone());
            let mut last_purge = i64::MIN;
            // The processor's own stream time (Kafka's observedStreamTime): records
            // that never reach it do not close its windows.
            let mut observed = i64::MIN;
            // Cached: the store's flush forwards each window's folded update instead.
            let mut forward = if b.is_cached(&store) {
                let key_of = move |sk: &[u8]| -> crate::error::Result<(Windowed<K>, _)> {
                    let (kb, start) = wk::parse_window_key(sk)?;
                    let window = Window {
                        start,
                        end: start.saturating_add(w.size_ms),
                    };
                    let key = K::from_bytes(Some(kb))?;
                    Ok((Windowed { key, window }, None))
                };
                b.on_flush(&store, super::forward_flushed(next, key_of, true));
                None
            } else {
                Some(next)
            };
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let Some(kb) = super::keyed(ctx, &r) else {
                    return;
                };
                observed = observed.max(r.timestamp);
                for window in w.windows_for(r.timestamp) {
                    // Closed: stream time has passed the window's end plus grace.
                    if window.end.saturating_add(w.grace_ms) <= observed {
                        ctx.dropped_late += 1;
                        continue;
                    }
                    let sk = wk::window_key(&kb, window.start);
                    let stored: Option<(A, i64)> = get_stamped(ctx, &store, &sk);
                    // KStreamWindowAggregate (KIP-258): the window's latest record time.
                    let ts = stored
                        .as_ref()
                        .map_or(r.timestamp, |(_, t)| r.timestamp.max(*t));
                    let old = stored.map(|(a, _)| a);
                    let new = f(&r.key, &r.value, old.clone().unwrap_or_else(|| init()));
                    put_stamped(ctx, &store, &sk, Some(&new), ts);
                    let Some(next) = forward.as_mut() else {
                        continue;
                    };
                    let key = Windowed {
                        key: r.key.clone(),
                        window,
                    };
                    let mut out = r.clone().with(
                        key,
                        Change {
                            new: Some(new),
                            old,
                        },
                    );
                    out.timestamp = ts;
                    next(ctx, out);
                }
                purge(ctx, &store, retention, (&mut last_purge, observed), |k| {
                    wk::parse_window_key(k)
                        .ok()
                        .map(|(_, start)| start + w.size_ms)
                });
            })
        }));
        let mut t = KTable::new(child, s.group, s.graph.clone(), store);
        t.window_close = Some(WindowClose::at_end(w.grace_ms));
        self.emit.apply(t)
    }
}

pub struct SessionWindowedKStream<K, V> {
    stream: KStream<K, V>,
    windows: SessionWindows,
}

impl<K: Serde, V: Serde> SessionWindowedKStream<K, V> {
    pub(crate) fn new(
        stream: KStream<K, V>,
        windows: SessionWindows,
    ) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream { stream, windows }
    }

    pub fn count(&self, m: Materialized) -> KTable<Windowed<K>, i64> {
        self.aggregate_with(
            m,
            Arc::new(|| 0),
            Arc::new(|_, _, n| n + 1),
            Arc::new(|_, a, b| a + b),
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<Windowed<K>, V> {
        let f = Arc::new(f);
        let g = f.clone();
        let t: KTable<Windowed<K>, Option<V>> = self.aggregate_with(
            m,
            Arc::new(|| None),
            super::reduce_step(move |a, b| f(a, b)),
            Arc::new(move |_, a: Option<V>, b: Option<V>| match (a, b) {
                (Some(a), Some(b)) => Some(g(a, b)),
                (a, b) => a.or(b),
            }),
        );
        flatten(t)
    }

    /// `merger` combines two sessions' aggregates when a record bridges them.
    pub fn aggregate<A: Serde>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        m: Materialized,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(m, Arc::new(init), Arc::new(f), Arc::new(merger))
    }

    fn aggregate_with<A: Serde>(
        &self,
        m: Materialized,
        init: Init<A>,
        f: Step<K, V, A>,
        merger: Merge<K, A>,
    ) -> KTable<Windowed<K>, A> {
        let s = &self.stream;
        let w = self.windows;
        let retention = w.gap_ms + w.grace_ms;
        let store = super::windowed_store(s, &m, retention);
        let child: Arc<Node<Windowed<K>, Change<A>>> = Node::new();
        let (c, st) = (child.clone(), store.clone());
        s.node.add(Arc::new(move |b| {
            let next = c.build(b);
            let (store, init, f, merger) = (st.clone(), init.clone(), f.clone(), merger.clone());
            let mut last_purge = i64::MIN;
            // The processor's own stream time (Kafka's observedStreamTime): records
            // that never reach it do not close its windows.
            let mut observed = i64::MIN;
            // Cached: the store's flush forwards each session's folded change (a merged
            // away session as a tombstone), stamped with the session's end.
            let mut forward = if b.is_cached(&store) {
                let key_of = |sk: &[u8]| -> crate::error::Result<(Windowed<K>, _)> {
                    let (kb, start, end) = wk::parse_session_key(sk)?;
                    let window = Window { start, end };
                    let key = K::from_bytes(Some(kb))?;
                    Ok((Windowed { key, window }, Some(end)))
                };
                b.on_flush(&store, super::forward_flushed(next, key_of, false));
                None
            } else {
                Some(next)
            };
            Box::new(move |ctx: &mut TaskCtx, r: Record<K, V>| {
                let Some(kb) = super::keyed(ctx, &r) else {
                    return;
                };
                observed = observed.max(r.timestamp);
                let ts = r.timestamp;
                // Sessions ending at or after ts - gap, in end order; keep those starting
                // at or before ts + gap.
                let from = wk::session_key(&kb, i64::MIN, ts.saturating_sub(w.gap_ms));
                let to = wk::session_key(&kb, i64::MAX, i64::MAX);
                let mut merged = Window { start: ts, end: ts };
                let mut overlapping = Vec::new();
                for (sk, v) in ctx.range(&store, Bound::Included(&from), Bound::Included(&to)) {
                    let Ok((_, start, end)) = wk::parse_session_key(&sk) else {
                        continue;
                    };
                    if start > ts.saturating_add(w.gap_ms) {
                        continue;
                    }
                    merged.start = merged.start.min(start);
                    merged.end = merged.end.max(end);
                    overlapping.push((sk, Window { start, end }, v));
                }
                // Kafka 3.0+ (KStreamSessionWindowAggregate): a session is open until
                // stream time passes its end plus the gap plus grace.
                let close = merged
                    .end
                    .saturating_add(w.gap_ms)
                    .saturating_add(w.grace_ms);
                if close < observed {
                    ctx.dropped_late += 1;
                    return;
                }
                let mut agg = init();
                let mut olds = Vec::new();
                for (sk, window, bytes) in overlapping {
                    match stamped::split(&bytes).map(|(b, _)| A::from_bytes(Some(b))) {
                        Some(Ok(a)) => {
                            agg = merger(&r.key, agg, a.clone());
                            olds.push((sk, window, a));
                        }
                        Some(Err(e)) => return ctx.fail(e),
                        None => {
                            return ctx.fail(crate::error::Error::Store {
                                store: store.clone(),
                                reason: "a session value shorter than its timestamp".into(),
                            })
                        }
                    }
                }
                let agg = f(&r.key, &r.value, agg);
                // Unless the record starts a session of its own, every session it
                // joins is deleted (a tombstone stamped with that session's end) and
                // the merged one written anew, even when it is one of them.
                if merged != (Window { start: ts, end: ts }) {
                    for (sk, window, old) in olds {
                        ctx.put(&store, &sk, None);
                        let Some(next) = forward.as_mut() else {
                            continue;
                        };
                        let key = Windowed {
                            key: r.key.clone(),
                            window,
                        };
                        let change = Change {
                            new: None,
                            old: Some(old),
                        };
                        let mut out = r.clone().with(key, change);
                        out.timestamp = window.end;
                        next(ctx, out);
                    }
                }
                let sk = wk::session_key(&kb, merged.start, merged.end);
                put_stamped(ctx, &store, &sk, Some(&agg), merged.end);
                purge(ctx, &store, retention, (&mut last_purge, observed), |k| {
                    wk::parse_session_key(k).ok().map(|(_, _, end)| end)
                });
                let Some(next) = forward.as_mut() else {
                    return;
                };
                let key = Windowed {
                    key: r.key.clone(),
                    window: merged,
                };
                let change = Change {
                    new: Some(agg),
                    old: None,
                };
                let mut out = r.clone().with(key, change);
                out.timestamp = merged.end;
                next(ctx, out);
            })
        }));
        let mut t = KTable::new(child, s.group, s.graph.clone(), store);
        // What suppress(until_window_closes) waits out after a session's end
        // (Kafka's GraphGraceSearchUtil: gap + grace for session windows).
        t.window_close = Some(WindowClose::at_end(w.gap_ms + w.grace_ms));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_windows_contain_the_timestamp() {
        let t = TimeWindows::of_size_with_no_grace(Duration::from_millis(10));
        assert_eq!(t.windows_for(15), vec![Window { start: 10, end: 20 }]);
        let h = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
            .advance_by(Duration::from_millis(5));
        assert_eq!(
            h.windows_for(12),
            vec![Window { start: 5, end: 15 }, Window { start: 10, end: 20 }]
        );
        assert_eq!(h.windows_for(3), vec![Window { start: 0, end: 10 }]);
    }
}
