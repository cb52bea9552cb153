//! The vectorized path of a stream aggregation (GROUP BY, optionally in a tumbling or
//! hopping window): a batch of records is expanded into its windows, filtered and
//! projected once, its group keys and aggregate arguments evaluated once, and each
//! group's accumulators loaded once, updated with the group's rows and saved once per
//! batch — the store (and its changelog) sees a group once per batch, not per record.
//!
//! Emission follows ksqlDB: with record caching on (`cache.max.bytes.buffering` above
//! 0, Kafka Streams' default) an updated group is held, its accumulators in memory,
//! until the task commits; then each held group's result is computed, emitted in the
//! order of the groups' last updates, and its state saved — as a cached KTable
//! forwards one update per key per commit. A group whose HAVING fails gets a tombstone
//! only if its last emitted result passed. With caching off every update is emitted in
//! input order, exactly as the row path does. HAVING and the final projection run
//! once over the updates emitted together.
//!
//! Session windows (whose merges read neighbouring sessions), table sources
//! (retractions) and aggregates whose state cannot be read twice keep the row path.
//! A batch whose evaluation fails (a division by zero in one row) runs row by row,
//! which keeps ksqlDB's per-row NULL.

use std::collections::HashMap;

use std::io::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{take, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::aggregate::{grace, group_key, windows_for, GroupState};
use super::batch::{conform, fit, run_stages, to_batch, vectorized, with_rows, Pending};
use super::compiled::Compiled;
use super::processor::{Ctx, QueryProcessor};
use crate::error::{Error, Result};
use crate::format::Row;
use crate::parser::ast::WindowKind;
use crate::planner::pipeline::{self, Stage};

/// Held groups beyond this many are emitted and saved at the end of a batch, without
/// waiting for the commit (Kafka Streams evicts from a full record cache).
const HELD_LIMIT: usize = 50_000;

/// A group updated since the last commit: when it was last updated, and what its
/// result row starts with.
pub(crate) struct HeldGroup {
    seq: u64,
    values: Row,
    window: Option<(i64, i64)>,
}

pub(crate) type Held = HashMap<Vec<u8>, HeldGroup>;

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
        let input = to_batch(
            &self.q.pipeline.input,
            &pending.iter().map(|p| &p.row).collect::<Vec<_>>(),
        );
        self.aggregate_input(ctx, input, pending);
    }

    /// Aggregates a batch of source rows (`input`; `pending` holds each one's time and
    /// offset, and its row if it was decoded as one), vectorized or, if building or
    /// evaluating the batch fails, row by row.
    pub(super) fn aggregate_input(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: Result<RecordBatch>,
        mut pending: Vec<Pending>,
    ) {
        let evaluated = input
            .as_ref()
            .map_err(|e| Error::Engine(e.to_string()))
            .and_then(|input| self.evaluate_batch(ctx, &pending, input));
        if evaluated.is_err() {
            if let Ok(input) = &input {
                for (i, p) in pending.iter_mut().enumerate() {
                    if p.row.is_empty() {
                        p.row = super::batch_columns::row_of(input, i).unwrap_or_default();
                    }
                }
            }
        }
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
    fn evaluate_batch(
        &self,
        ctx: &mut Ctx<'_>,
        pending: &[Pending],
        input: &RecordBatch,
    ) -> Result<Evaluated> {
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
                run_stages(pre.0, input.clone())?
            }
            Some(w) => {
                // Each row once per window it falls in (late ones dropped against the
                // stream time at their record), the window columns set per row.
                let (ws, we) = self.window_columns();
                let width = input.num_columns();
                if ws.max(we) >= width || width != pre.1.fields().len() {
                    return Err(Error::Engine(
                        "a windowed aggregation got a row without window columns".into(),
                    ));
                }
                let mut take_rows: Vec<u32> = Vec::with_capacity(pending.len());
                let (mut starts, mut ends) = (Vec::new(), Vec::new());
                for (i, p) in pending.iter().enumerate() {
                    st = st.max(p.ts);
                    for (s, e) in windows_for(p.ts, &w) {
                        if e + grace(&w) <= st {
                            continue;
                        }
                        take_rows.push(i as u32);
                        starts.push(s);
                        ends.push(e);
                        windows.push(Some((s, e)));
                        times.push(p.ts);
                    }
                }
                let mut b = input.clone();
                let one_each = take_rows.len() == pending.len()
                    && take_rows.iter().enumerate().all(|(i, r)| *r as usize == i);
                if !one_each {
                    b = take_record_batch(&b, &UInt32Array::from(take_rows)).map_err(engine)?;
                }
                let mut columns = b.columns().to_vec();
                let schema = b.schema();
                columns[ws] = fit(
                    Arc::new(Int64Array::from(starts)),
                    schema.field(ws).data_type(),
                )?;
                columns[we] = fit(
                    Arc::new(Int64Array::from(ends)),
                    schema.field(we).data_type(),
                )?;
                let n = b.num_rows();
                run_stages(pre.0, with_rows(schema, columns, n)?)?
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
        let mut key = Vec::new();
        for (r, o) in origin.iter().enumerate() {
            let window = windows[*o];
            if !group_key_of(&group_columns[..n_keys], r, window, &mut key)? {
                continue;
            }
            match index.get(key.as_slice()) {
                Some(g) => groups[*g].rows.push(r as u32),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(Group {
                        key: key.clone(),
                        values: group_columns
                            .iter()
                            .map(|c| ScalarValue::try_from_array(c, r))
                            .collect::<datafusion::common::Result<Row>>()?,
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
        if self.caching && !q.emit_final {
            return self.hold_batch(ctx, ev);
        }
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
            update_rows(&mut accs, &ev.args, &g.rows)?;
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

    /// Caching on: each group is updated with its rows at once and held, its
    /// accumulators in memory, until the commit.
    fn hold_batch(&mut self, ctx: &mut Ctx<'_>, ev: Evaluated) -> Result<()> {
        for g in &ev.groups {
            if let Err(e) = self.hold_group(ctx, g, &ev) {
                let at = g.rows.first().map_or(0, |r| ev.at[*r as usize]);
                tracing::warn!(query = %self.q.query_id, partition = ctx.partition(), "a group's rows at batch position {at} skipped: {e}");
            }
        }
        let st = self.advance_stream_time(ctx, ev.stream_time);
        if self.q.window.is_some() {
            self.close_windows(ctx, st)?;
        }
        if self.held.len() >= HELD_LIMIT {
            self.flush_held(ctx)?;
        }
        Ok(())
    }

    fn hold_group(&mut self, ctx: &mut Ctx<'_>, g: &Group, ev: &Evaluated) -> Result<()> {
        let Some((mut accs, mut header)) = self.load_group(ctx, &g.key, g.window, false)? else {
            return Ok(());
        };
        let updated = update_rows(&mut accs, &ev.args, &g.rows);
        for r in &g.rows {
            header.ts = header.ts.max(ev.ts[*r as usize]);
        }
        // Kept even if the update failed: a held group's earlier updates live only here.
        self.keep(g.key.clone(), (accs, header));
        self.held_seq += 1;
        self.held.insert(
            g.key.clone(),
            HeldGroup {
                seq: self.held_seq,
                values: g.values.clone(),
                window: g.window,
            },
        );
        updated
    }

    /// Emits the held groups' results in the order of their last updates and saves
    /// their state: called when the task commits, before a held group's window is
    /// dropped, and when too many groups are held.
    pub(crate) fn flush_held(&mut self, ctx: &mut Ctx<'_>) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held: Vec<(Vec<u8>, HeldGroup)> = self.held.drain().collect();
        held.sort_by_key(|(_, h)| h.seq);
        let mut groups = Vec::with_capacity(held.len());
        let mut states = Vec::with_capacity(held.len());
        let mut updates = Vec::with_capacity(held.len());
        for (key, h) in held {
            let Some((mut accs, header)) = self.load_group(ctx, &key, h.window, false)? else {
                continue;
            };
            match self.results_now(&mut accs) {
                Ok(results) => updates.push(Update {
                    at: groups.len(),
                    group: groups.len(),
                    results,
                    ts: header.ts,
                }),
                Err(e) => {
                    tracing::warn!(query = %self.q.query_id, "an aggregate's result skipped: {e}")
                }
            }
            groups.push(Group {
                key,
                values: h.values,
                window: h.window,
                rows: Vec::new(),
            });
            states.push(Some((accs, header)));
        }
        self.emit_updates(ctx, &groups, &mut states, &updates)?;
        for (g, state) in groups.into_iter().zip(states) {
            let Some((mut accs, header)) = state else {
                continue;
            };
            let saved = accs
                .iter_mut()
                .map(|a| a.state())
                .collect::<datafusion::common::Result<Vec<_>>>()
                .map_err(Error::from)
                .and_then(|states| self.save_group(ctx, g.key.clone(), accs, header, states));
            if let Err(e) = saved {
                tracing::warn!(query = %self.q.query_id, "a group's state not saved: {e}");
            }
        }
        Ok(())
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

/// Updates accumulators with the given rows of their argument columns at once.
fn update_rows(
    accs: &mut [Box<dyn Accumulator>],
    args: &[Vec<ArrayRef>],
    rows: &[u32],
) -> Result<()> {
    let indices = UInt32Array::from(rows.to_vec());
    for (acc, args) in accs.iter_mut().zip(args) {
        let args = args
            .iter()
            .map(|a| take(a.as_ref(), &indices, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Engine(e.to_string()))?;
        acc.update_batch(&args)?;
    }
    Ok(())
}

fn engine(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

/// Row `r`'s group key, as [`group_key`] writes it from the group's values, written
/// into `key` straight from the key columns (strings and integers without a
/// `ScalarValue`); `false` when a key column is NULL (the row is in no group).
fn group_key_of(
    columns: &[ArrayRef],
    r: usize,
    window: Option<(i64, i64)>,
    key: &mut Vec<u8>,
) -> Result<bool> {
    key.clear();
    if columns.iter().any(|c| c.is_null(r)) {
        return Ok(false);
    }
    key.push(b'[');
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            key.push(b',');
        }
        match c.data_type() {
            DataType::Utf8 => {
                serde_json::to_writer(&mut *key, c.as_string::<i32>().value(r)).map_err(engine)?
            }
            DataType::Int32 => {
                write!(key, "{}", c.as_primitive::<Int32Type>().value(r)).map_err(engine)?
            }
            DataType::Int64 => {
                write!(key, "{}", c.as_primitive::<Int64Type>().value(r)).map_err(engine)?
            }
            _ => {
                let v = ScalarValue::try_from_array(c, r)?;
                let one = group_key(std::slice::from_ref(&v), None);
                // `[value]`: the value's text between the brackets.
                key.extend_from_slice(&one[1..one.len().saturating_sub(1)]);
            }
        }
    }
    key.push(b']');
    if let Some((s, e)) = window {
        key.extend_from_slice(&s.to_be_bytes());
        key.extend_from_slice(&e.to_be_bytes());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    };
    use datafusion::common::ScalarValue;

    use super::{group_key, group_key_of};

    /// Keys written from the columns are the keys the row path writes from values,
    /// so both paths find the same state.
    #[test]
    fn group_keys_from_columns_match_keys_from_values() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("quo\"te\\ and \u{e9}\n"),
                Some(""),
                None,
            ])),
            Arc::new(Int32Array::from(vec![
                Some(-5),
                Some(i32::MAX),
                Some(0),
                Some(1),
            ])),
            Arc::new(Int64Array::from(vec![
                Some(i64::MIN),
                Some(7),
                Some(0),
                Some(1),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(-0.0),
                Some(1e300),
                Some(2.0),
            ])),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                Some(true),
                None,
            ])),
        ];
        let mut key = Vec::new();
        for r in 0..3 {
            for window in [None, Some((60_000, 120_000))] {
                let values: Vec<ScalarValue> = columns
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, r).unwrap())
                    .collect();
                assert!(group_key_of(&columns, r, window, &mut key).unwrap());
                assert_eq!(key, group_key(&values, window), "row {r}");
            }
        }
        assert!(
            !group_key_of(&columns, 3, None, &mut key).unwrap(),
            "a NULL key column"
        );
    }
}
