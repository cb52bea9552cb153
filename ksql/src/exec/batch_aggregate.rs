//! The vectorized path of a stream aggregation (GROUP BY, optionally in a tumbling or
//! hopping window): a batch of records is expanded into its windows, filtered and
//! projected once, its group keys and aggregate arguments evaluated once, and each
//! group's accumulators loaded once, updated with the group's rows and saved once per
//! batch — the store (and its changelog) sees a group once per batch, not per record.
//!
//! Emission follows ksqlDB: with record caching on (`cache.max.bytes.buffering` above
//! 0, Kafka Streams' default) a group's result is emitted once per batch, at its last
//! update, as a cached KTable forwards one update per key; with caching off every
//! update is emitted in input order, exactly as the row path does. HAVING and the
//! final projection run once over the batch's updates.
//!
//! Session windows (whose merges read neighbouring sessions), table sources
//! (retractions) and aggregates whose state cannot be read twice keep the row path.
//! A batch whose evaluation fails (a division by zero in one row) runs row by row,
//! which keeps ksqlDB's per-row NULL.

use std::collections::HashMap;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::aggregate::{grace, group_key, windows_for, GroupState};
use super::batch::{conform, vectorized, vectorized_batch, Pending};
use super::compiled::Compiled;
use super::processor::{Ctx, QueryProcessor};
use crate::error::{Error, Result};
use crate::format::Row;
use crate::parser::ast::WindowKind;
use crate::planner::pipeline::{self, Stage};

/// Whether an aggregation (of a stream, without a join) takes the vectorized path.
pub fn batchable(q: &Compiled) -> bool {
    q.pipeline.agg.is_some()
        && q.window.is_none_or(|w| w.kind != WindowKind::Session)
        && super::aggregate::cacheable(q)
}

/// One group's share of a batch.
struct Group {
    key: Vec<u8>,
    /// The group's values (with WINDOWSTART and WINDOWEND last when windowed).
    values: Row,
    window: Option<(i64, i64)>,
    /// Its rows in the evaluated batch, in input order.
    rows: Vec<u32>,
}

/// A batch evaluated up to its aggregates' arguments.
struct Evaluated {
    groups: Vec<Group>,
    /// Per aggregate, its argument columns.
    args: Vec<Vec<ArrayRef>>,
    /// Per batch row: its place in the (window-expanded) input, and its event time.
    at: Vec<usize>,
    ts: Vec<i64>,
    /// Stream time after the batch.
    stream_time: i64,
}

/// A result to emit: its place in the input, its group and the aggregates' values.
struct Update {
    at: usize,
    group: usize,
    results: Row,
    ts: i64,
}

impl QueryProcessor {
    /// Aggregates the decoded records of a batch, vectorized or, if evaluating the
    /// batch fails, row by row.
    pub(super) fn aggregate_pending(&mut self, ctx: &mut Ctx<'_>, pending: Vec<Pending>) {
        let evaluated = self.evaluate_batch(ctx, &pending);
        match evaluated {
            Ok(ev) => {
                if let Err(e) = self.apply_batch(ctx, ev) {
                    let first = pending.first().map_or(-1, |p| p.offset);
                    self.skipped(ctx.partition(), first, &e);
                }
            }
            Err(_) => {
                for p in pending {
                    if let Err(e) = self.aggregate(ctx, None, Some(p.row), p.ts) {
                        self.skipped(ctx.partition(), p.offset, &e);
                    }
                }
            }
        }
    }

    /// Everything that can fail on a row's values, before any state changes: windows
    /// assigned (late rows dropped against the stream time at their record), WHERE
    /// and projections, group keys and aggregate arguments.
    fn evaluate_batch(&self, ctx: &mut Ctx<'_>, pending: &[Pending]) -> Result<Evaluated> {
        let q = &self.q;
        let agg = self.agg();
        let mut st = self.stream_time(ctx);
        let mut windows: Vec<Option<(i64, i64)>> = Vec::with_capacity(pending.len());
        let mut times: Vec<i64> = Vec::with_capacity(pending.len());
        let pre = (&q.pipeline.pre, &q.pipeline.input);
        let (batch, origin) = match q.window {
            None => {
                for p in pending {
                    st = st.max(p.ts);
                    windows.push(None);
                    times.push(p.ts);
                }
                let rows: Vec<&Row> = pending.iter().map(|p| &p.row).collect();
                vectorized_batch(pre.0, pre.1, &rows)?
            }
            Some(w) => {
                let (ws, we) = self.window_columns();
                let mut rows = Vec::with_capacity(pending.len());
                for p in pending {
                    st = st.max(p.ts);
                    if ws.max(we) >= p.row.len() {
                        return Err(Error::Engine(
                            "a windowed aggregation got a row without window columns".into(),
                        ));
                    }
                    for (s, e) in windows_for(p.ts, &w) {
                        if e + grace(&w) <= st {
                            continue;
                        }
                        let mut r = p.row.clone();
                        r[ws] = ScalarValue::Int64(Some(s));
                        r[we] = ScalarValue::Int64(Some(e));
                        rows.push(r);
                        windows.push(Some((s, e)));
                        times.push(p.ts);
                    }
                }
                vectorized_batch(pre.0, pre.1, &rows)?
            }
        };
        let b = conform(&agg.input, &batch)?;
        let n = b.num_rows();
        let columns = |exprs: &[pipeline::Expr]| -> Result<Vec<ArrayRef>> {
            Ok(exprs
                .iter()
                .map(|e| pipeline::evaluate(e, &b).and_then(|c| c.into_array(n)))
                .collect::<datafusion::common::Result<_>>()?)
        };
        let group_columns = columns(&agg.groups)?;
        let args = agg
            .aggs
            .iter()
            .map(|f| columns(&f.expressions()))
            .collect::<Result<Vec<_>>>()?;
        let n_keys = agg.groups.len() - if q.window.is_some() { 2 } else { 0 };
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        for (r, o) in origin.iter().enumerate() {
            let values = group_columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c, r))
                .collect::<datafusion::common::Result<Row>>()?;
            if values[..n_keys].iter().any(ScalarValue::is_null) {
                continue;
            }
            let window = windows[*o];
            let key = group_key(&values[..n_keys], window);
            match index.get(&key) {
                Some(g) => groups[*g].rows.push(r as u32),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(Group {
                        key,
                        values,
                        window,
                        rows: vec![r as u32],
                    });
                }
            }
        }
        Ok(Evaluated {
            groups,
            args,
            ts: origin.iter().map(|o| times[*o]).collect(),
            at: origin,
            stream_time: st,
        })
    }

    /// Updates each group once, emits the results (one per group per batch with
    /// caching on, every update without), saves the groups and closes due windows.
    fn apply_batch(&mut self, ctx: &mut Ctx<'_>, ev: Evaluated) -> Result<()> {
        let q = self.q.clone();
        let mut states: Vec<Option<GroupState>> = Vec::new();
        let mut updates: Vec<Update> = Vec::new();
        for (gi, g) in ev.groups.iter().enumerate() {
            match self.update_group_batch(ctx, gi, g, &ev, &mut updates) {
                Ok(state) => states.push(state),
                Err(e) => {
                    let at = g.rows.first().map_or(0, |r| ev.at[*r as usize]);
                    tracing::warn!(query = %q.query_id, partition = ctx.partition(), "a group's rows at batch position {at} skipped: {e}");
                    states.push(None);
                }
            }
        }
        if !q.emit_final {
            updates.sort_by_key(|u| u.at);
            self.emit_updates(ctx, &ev.groups, &mut states, &updates)?;
        }
        for (g, state) in ev.groups.into_iter().zip(states) {
            let Some((mut accs, header)) = state else {
                continue;
            };
            let states = accs
                .iter_mut()
                .map(|a| a.state())
                .collect::<datafusion::common::Result<Vec<_>>>()?;
            self.save_group(ctx, g.key, accs, header, states)?;
        }
        let st = self.advance_stream_time(ctx, ev.stream_time);
        if q.window.is_some() {
            self.close_windows(ctx, st)?;
        }
        Ok(())
    }

    /// Loads a group and updates it with its rows: at once with caching on (one
    /// update), row by row without (one update per row).
    fn update_group_batch(
        &mut self,
        ctx: &mut Ctx<'_>,
        gi: usize,
        g: &Group,
        ev: &Evaluated,
        updates: &mut Vec<Update>,
    ) -> Result<Option<GroupState>> {
        let Some((mut accs, mut header)) = self.load_group(ctx, &g.key, g.window, false)? else {
            return Ok(None);
        };
        if self.caching {
            let indices = UInt32Array::from(g.rows.clone());
            for (acc, args) in accs.iter_mut().zip(&ev.args) {
                let args = args
                    .iter()
                    .map(|a| take(a.as_ref(), &indices, None))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::Engine(e.to_string()))?;
                acc.update_batch(&args)?;
            }
            for r in &g.rows {
                header.ts = header.ts.max(ev.ts[*r as usize]);
            }
            let last = *g.rows.last().unwrap_or(&0) as usize;
            updates.push(Update {
                at: ev.at[last],
                group: gi,
                results: self.results_now(&mut accs)?,
                ts: header.ts,
            });
        } else {
            for r in &g.rows {
                let r = *r as usize;
                for (acc, args) in accs.iter_mut().zip(&ev.args) {
                    let args: Vec<ArrayRef> = args.iter().map(|a| a.slice(r, 1)).collect();
                    acc.update_batch(&args)?;
                }
                header.ts = header.ts.max(ev.ts[r]);
                updates.push(Update {
                    at: ev.at[r],
                    group: gi,
                    results: self.results_now(&mut accs)?,
                    ts: header.ts,
                });
            }
        }
        Ok(Some((accs, header)))
    }

    fn results_now(&self, accs: &mut [Box<dyn Accumulator>]) -> Result<Row> {
        accs.iter_mut()
            .enumerate()
            .map(|(i, acc)| self.result_of(i, acc))
            .collect()
    }

    /// Runs HAVING and the projection once over the updates (row by row if that
    /// fails) and emits them in input order: a row, or a tombstone when a group that
    /// was in the result leaves it.
    fn emit_updates(
        &self,
        ctx: &mut Ctx<'_>,
        groups: &[Group],
        states: &mut [Option<GroupState>],
        updates: &[Update],
    ) -> Result<()> {
        let post = &self.q.pipeline.post;
        let rows: Vec<Row> = updates
            .iter()
            .map(|u| {
                let mut row = groups[u.group].values.clone();
                row.extend(u.results.iter().cloned());
                row
            })
            .collect();
        let mut outs: Vec<Option<Row>> = vec![None; rows.len()];
        let first_input = post.first().and_then(|s| match s {
            Stage::Filter { input, .. } | Stage::Project { input, .. } => Some(input),
            Stage::Unnest { .. } => None,
        });
        match first_input.map(|input| vectorized(post, input, &rows)) {
            None => outs = rows.into_iter().map(Some).collect(),
            Some(Ok(passed)) => {
                for (i, out) in passed {
                    outs[i] = Some(out);
                }
            }
            Some(Err(_)) => {
                for (i, row) in rows.into_iter().enumerate() {
                    match pipeline::run(post, row) {
                        Ok(out) => outs[i] = out,
                        Err(e) => {
                            tracing::warn!(query = %self.q.query_id, "an aggregate's result skipped: {e}")
                        }
                    }
                }
            }
        }
        let sink = &self.q.sink;
        let key_cols: Vec<_> = sink.key_columns().collect();
        let value_cols: Vec<_> = sink.value_columns().collect();
        let kind = self.q.window.map(|w| w.kind);
        let n_keys = self.agg().groups.len() - if kind.is_some() { 2 } else { 0 };
        for (u, out) in updates.iter().zip(outs) {
            let g = &groups[u.group];
            let Some((_, header)) = states[u.group].as_mut() else {
                continue;
            };
            let window = kind.zip(g.window);
            let emitted = match out {
                Some(out) => {
                    header.emitted = true;
                    self.emit_with(ctx, &out, window, u.ts, (&key_cols, &value_cols))
                }
                None if header.emitted => {
                    header.emitted = false;
                    self.emit_tombstone(ctx, &g.values[..n_keys].to_vec(), window, u.ts)
                }
                None => Ok(()),
            };
            if let Err(e) = emitted {
                tracing::warn!(query = %self.q.query_id, "an aggregate's result skipped: {e}");
            }
        }
        Ok(())
    }
}
