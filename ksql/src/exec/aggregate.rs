//! Grouped and windowed aggregation for a persistent query, on DataFusion
//! accumulators whose state lives in the task's state store (and so in its
//! changelog): per record, the group's state is loaded, merged into fresh
//! accumulators, updated (or retracted, for a table's old row), saved, and the new
//! result emitted — every update, as ksqlDB does without record caching.
//!
//! Time windows follow Kafka Streams: `[k*advance, k*advance+size)`, closed once
//! stream time reaches end + grace (default 24 h minus the size, as ksqlDB 0.29), late
//! records for closed windows dropped. Session windows merge every session within the
//! gap; the merged-away ones get tombstones. EMIT FINAL buffers a window's result in a
//! store ordered by window end and emits it when the window closes.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;

use super::compiled::{AGG_STORE, FINAL_STORE};
use super::processor::{Ctx, QueryProcessor};
use super::state::{self, Header};
use crate::catalog::{WINDOWEND, WINDOWSTART};
use crate::error::{Error, Result};
use crate::format::{scalar_to_json, Row};
use crate::parser::ast::{WindowKind, WindowSpec};
use crate::planner::pipeline::{self, AggPlan};

const DAY_MS: i64 = 86_400_000;
/// Groups whose accumulators stay decoded in memory between records (the store, and
/// so the changelog, is still written on every update).
const CACHE_ENTRIES: usize = 100_000;
/// Aggregates whose `state()` leaves the accumulator intact, so one accumulator can
/// serve many updates (DataFusion's median, string_agg and DISTINCT counts consume
/// theirs).
const CACHEABLE: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "latest_by_offset",
    "earliest_by_offset",
    "topk",
];

/// A windowed group's window kind and bounds (`None` for an unwindowed query).
pub(super) type GroupWindow = Option<(WindowKind, (i64, i64))>;
/// A group's decoded accumulators and its header.
pub(crate) type GroupState = (Vec<Box<dyn Accumulator>>, Header);
pub(crate) type Cache = std::collections::HashMap<Vec<u8>, GroupState>;

pub(crate) fn cacheable(q: &super::compiled::Compiled) -> bool {
    q.pipeline.agg.as_ref().is_some_and(|a| {
        a.aggs.iter().all(|f| {
            !f.is_distinct() && CACHEABLE.contains(&f.fun().name().to_ascii_lowercase().as_str())
        })
    })
}
/// Store key of the task's stream time (group keys are JSON arrays, starting '[').
const STREAM_TIME_KEY: &[u8] = &[0xFF];

pub fn grace(w: &WindowSpec) -> i64 {
    w.grace_ms.unwrap_or((DAY_MS - w.size_ms).max(0))
}

pub(super) fn windows_for(ts: i64, w: &WindowSpec) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    if ts < 0 {
        return out;
    }
    let mut start = ((ts - w.size_ms + w.advance_ms).max(0) / w.advance_ms) * w.advance_ms;
    while start <= ts {
        out.push((start, start + w.size_ms));
        start += w.advance_ms;
    }
    out
}

pub(super) fn group_key(values: &[ScalarValue], window: Option<(i64, i64)>) -> Vec<u8> {
    let json: Vec<_> = values.iter().map(scalar_to_json).collect();
    let mut k = serde_json::to_vec(&json).unwrap_or_default();
    if let Some((s, e)) = window {
        k.extend_from_slice(&s.to_be_bytes());
        k.extend_from_slice(&e.to_be_bytes());
    }
    k
}

/// The window index orders open windows by end time: end, then the store key.
fn index_key(end: i64, key: &[u8]) -> Vec<u8> {
    let mut k = end.to_be_bytes().to_vec();
    k.extend_from_slice(key);
    k
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

impl QueryProcessor {
    pub(super) fn agg(&self) -> &AggPlan {
        // Only called for queries with an aggregate.
        self.q.pipeline.agg.as_ref().expect("aggregate query")
    }

    /// The task's stream time so far (read from the store after a restart).
    pub(super) fn stream_time(&self, ctx: &mut Ctx<'_>) -> i64 {
        match self.stream_time {
            Some(t) => t,
            None => ctx
                .get_raw(AGG_STORE, STREAM_TIME_KEY)
                .and_then(|b| b.try_into().ok().map(i64::from_be_bytes))
                .unwrap_or(i64::MIN),
        }
    }

    pub(super) fn advance_stream_time(&mut self, ctx: &mut Ctx<'_>, ts: i64) -> i64 {
        let st = self.stream_time(ctx).max(ts);
        // Persisted once per second of stream time, not per record: after a restart
        // windows may close up to a second of stream time later, never earlier.
        if self.stream_time.is_none() || st >= self.stream_time_saved.saturating_add(1_000) {
            ctx.put_raw(AGG_STORE, STREAM_TIME_KEY, Some(&st.to_be_bytes()));
            self.stream_time_saved = st;
        }
        self.stream_time = Some(st);
        st
    }

    pub(crate) fn aggregate(
        &mut self,
        ctx: &mut Ctx<'_>,
        old: Option<Row>,
        new: Option<Row>,
        ts: i64,
    ) -> Result<()> {
        let st = self.advance_stream_time(ctx, ts);
        if let Some(old) = old {
            // A table row replaced within its group is one change: the retraction's
            // intermediate result is not emitted (Kafka Streams 3.5+, KAFKA-12446).
            let same_group = self.q.window.is_none()
                && match &new {
                    Some(new) => {
                        let g = self.group_of(old.clone())?;
                        g.is_some() && g == self.group_of(new.clone())?
                    }
                    None => false,
                };
            self.hold_emit = same_group;
            let applied = self.apply(ctx, old, ts, true, st);
            self.hold_emit = false;
            applied?;
        }
        if let Some(new) = new {
            self.apply(ctx, new, ts, false, st)?;
        }
        if self.q.window.is_some() {
            self.close_windows(ctx, st)?;
        }
        Ok(())
    }

    /// The group a row falls in (`None` when the WHERE clause drops it).
    fn group_of(&self, row: Row) -> Result<Option<Row>> {
        match pipeline::run(&self.q.pipeline.pre, row)? {
            Some(r) => Ok(Some(self.groups(&r)?.1)),
            None => Ok(None),
        }
    }

    pub(super) fn window_columns(&self) -> (usize, usize) {
        let s = &self.q.pipeline.input;
        (
            s.index_of(WINDOWSTART).unwrap_or(0),
            s.index_of(WINDOWEND).unwrap_or(0),
        )
    }

    fn apply(
        &mut self,
        ctx: &mut Ctx<'_>,
        row: Row,
        ts: i64,
        retract: bool,
        st: i64,
    ) -> Result<()> {
        let Some(w) = self.q.window else {
            if let Some(r) = pipeline::run(&self.q.pipeline.pre, row)? {
                self.update_group(ctx, &r, ts, retract, None)?;
            }
            return Ok(());
        };
        let (ws, we) = self.window_columns();
        if ws.max(we) >= row.len() {
            // The row this stage receives has no window columns (e.g. a join's row
            // whose schema the planner did not widen): refuse the record, never
            // index past the row.
            return Err(Error::Engine(format!(
                "a windowed aggregation got a row of {} columns without WINDOWSTART/WINDOWEND",
                row.len()
            )));
        }
        if w.kind == WindowKind::Session {
            let mut row = row;
            row[ws] = ScalarValue::Int64(Some(ts));
            row[we] = ScalarValue::Int64(Some(ts));
            if let Some(r) = pipeline::run(&self.q.pipeline.pre, row)? {
                self.session(ctx, &r, ts, st, &w)?;
            }
            return Ok(());
        }
        for (s, e) in windows_for(ts, &w) {
            if e + grace(&w) <= st {
                tracing::debug!(query = %self.q.query_id, "late record for window [{s}, {e}) dropped");
                continue;
            }
            let mut r = row.clone();
            r[ws] = ScalarValue::Int64(Some(s));
            r[we] = ScalarValue::Int64(Some(e));
            if let Some(r) = pipeline::run(&self.q.pipeline.pre, r)? {
                self.update_group(ctx, &r, ts, retract, Some((s, e)))?;
            }
        }
        Ok(())
    }

    fn accumulators(&self, stored: Option<&state::Stored>) -> Result<Vec<Box<dyn Accumulator>>> {
        let table = self.q.source.kind == crate::parser::ast::SourceKind::Table;
        let mut accs = Vec::new();
        for (i, f) in self.agg().aggs.iter().enumerate() {
            let mut acc = if table {
                f.create_sliding_accumulator()?
            } else {
                f.create_accumulator()?
            };
            if let Some(s) = stored.and_then(|s| s.states.get(i)) {
                acc.merge_batch(s)?;
            }
            accs.push(acc);
        }
        Ok(accs)
    }

    fn update(
        &self,
        accs: &mut [Box<dyn Accumulator>],
        b: &RecordBatch,
        retract: bool,
    ) -> Result<()> {
        let agg = self.agg();
        for (acc, f) in accs.iter_mut().zip(&agg.aggs) {
            // An argument that fails on the row (a division by zero) is NULL, as
            // ksqlDB's pre-aggregation projection makes it: COUNT(*) still counts it.
            let args = f
                .expressions()
                .iter()
                .map(|e| pipeline::eval(e, b).to_array_of_size(1))
                .collect::<datafusion::common::Result<Vec<ArrayRef>>>()?;
            if retract {
                acc.retract_batch(&args)?;
            } else {
                acc.update_batch(&args)?;
            }
        }
        Ok(())
    }

    /// The input row as a batch, and its group values.
    fn groups(&self, input: &Row) -> Result<(RecordBatch, Row)> {
        let agg = self.agg();
        let b = pipeline::batch(&agg.input, input)?;
        let groups = agg.groups.iter().map(|g| pipeline::eval(g, &b)).collect();
        Ok((b, groups))
    }

    fn results(&self, accs: &mut [Box<dyn Accumulator>]) -> Result<(Row, Vec<Vec<ScalarValue>>)> {
        let mut results = Vec::new();
        let mut states = Vec::new();
        for (i, acc) in accs.iter_mut().enumerate() {
            // Evaluate first: some accumulators' state() hands over their values
            // (DataFusion's COUNT(DISTINCT) over strings).
            results.push(self.result_of(i, acc)?);
            states.push(acc.state()?);
        }
        Ok((results, states))
    }

    /// Aggregate `i`'s current result.
    pub(super) fn result_of(
        &self,
        i: usize,
        acc: &mut Box<dyn Accumulator>,
    ) -> Result<ScalarValue> {
        let v = acc.evaluate()?;
        Ok(
            if v.is_null() && self.q.zero_when_empty.get(i) == Some(&true) {
                ScalarValue::new_zero(&v.data_type()).unwrap_or(v)
            } else {
                v
            },
        )
    }

    /// A group's accumulators and header: the decoded ones kept in memory, or those
    /// its stored state gives (`None` when a retraction finds no state). A new
    /// window's group enters the window index.
    pub(super) fn load_group(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &[u8],
        window: Option<(i64, i64)>,
        retract: bool,
    ) -> Result<Option<GroupState>> {
        if let Some(cached) = self.cache.remove(key) {
            return Ok(Some(cached));
        }
        let stored = match ctx.get_raw(AGG_STORE, key) {
            Some(b) => Some(state::decode(&b)?),
            None => None,
        };
        if retract && stored.is_none() {
            return Ok(None);
        }
        if let (Some((_, e)), None) = (window, &stored) {
            ctx.put_raw(FINAL_STORE, &index_key(e, key), Some(&[]));
        }
        let accs = self.accumulators(stored.as_ref())?;
        Ok(Some((accs, stored.map(|s| s.header).unwrap_or_default())))
    }

    /// Writes a group's state to the store, and keeps its accumulators decoded.
    pub(super) fn save_group(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: Vec<u8>,
        accs: Vec<Box<dyn Accumulator>>,
        mut header: Header,
        states: Vec<Vec<ScalarValue>>,
    ) -> Result<()> {
        header.sizes = states.iter().map(Vec::len).collect();
        ctx.put_raw(AGG_STORE, &key, Some(&state::encode(&header, &states)?));
        // Saved (and emitted) now: nothing of it is held for the commit any more.
        self.held.remove(&key);
        if self.cacheable {
            self.keep(key, (accs, header));
        }
        Ok(())
    }

    /// Keeps a group's accumulators decoded; when too many are, the ones whose state
    /// is saved are dropped (held groups' state is only here until the next commit).
    pub(super) fn keep(&mut self, key: Vec<u8>, state: GroupState) {
        if self.cache.len() >= CACHE_ENTRIES {
            let held = &self.held;
            self.cache.retain(|k, _| held.contains_key(k));
        }
        self.cache.insert(key, state);
    }

    fn update_group(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: &Row,
        ts: i64,
        retract: bool,
        window: Option<(i64, i64)>,
    ) -> Result<()> {
        let (batch, groups) = self.groups(input)?;
        let n_keys = groups.len() - if window.is_some() { 2 } else { 0 };
        if groups[..n_keys].iter().any(|g| g.is_null()) {
            return Ok(());
        }
        let key = group_key(&groups[..n_keys], window);
        let Some((mut accs, mut header)) = self.load_group(ctx, &key, window, retract)? else {
            return Ok(());
        };
        self.update(&mut accs, &batch, retract)?;
        header.ts = header.ts.max(ts);
        let kind = self
            .q
            .window
            .map(|w| w.kind)
            .unwrap_or(WindowKind::Tumbling);
        let (results, states) = self.results(&mut accs)?;
        if !self.q.emit_final && !self.hold_emit {
            self.emit_result(
                ctx,
                &groups,
                results,
                &mut header,
                window.map(|w| (kind, w)),
            )?;
        }
        self.save_group(ctx, key, accs, header, states)
    }

    /// Runs HAVING and the projection over (groups, results) and emits the row, or a
    /// tombstone when the group left the result.
    pub(super) fn emit_result(
        &self,
        ctx: &mut Ctx<'_>,
        groups: &Row,
        results: Row,
        header: &mut Header,
        window: Option<(WindowKind, (i64, i64))>,
    ) -> Result<()> {
        let mut row = groups.clone();
        row.extend(results);
        let n_keys = groups.len() - if window.is_some() { 2 } else { 0 };
        let ts = if matches!(window, Some((WindowKind::Session, _))) {
            window.map(|(_, (_, e))| e).unwrap_or(header.ts)
        } else {
            header.ts
        };
        match pipeline::run(&self.q.pipeline.post, row)? {
            Some(out) => {
                header.emitted = true;
                self.emit(ctx, &out, window, ts)
            }
            None if header.emitted => {
                header.emitted = false;
                self.emit_tombstone(ctx, &groups[..n_keys].to_vec(), window, ts)
            }
            None => Ok(()),
        }
    }

    fn session(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: &Row,
        ts: i64,
        st: i64,
        w: &WindowSpec,
    ) -> Result<()> {
        let (batch, mut groups) = self.groups(input)?;
        let n_keys = groups.len() - 2;
        if groups[..n_keys].iter().any(|g| g.is_null()) {
            return Ok(());
        }
        let prefix = group_key(&groups[..n_keys], None);
        let mut end = prefix.clone();
        end.extend_from_slice(&[0xFF; 17]);
        let gap = w.size_ms;
        let mut merged = Vec::new();
        let (mut start_ms, mut end_ms) = (ts, ts);
        for (k, v) in ctx.range_raw(AGG_STORE, &prefix, &end) {
            if k.len() != prefix.len() + 16 {
                continue;
            }
            let s = i64::from_be_bytes(k[prefix.len()..prefix.len() + 8].try_into().map_err(err)?);
            let e = i64::from_be_bytes(k[prefix.len() + 8..].try_into().map_err(err)?);
            if e >= ts - gap && s <= ts + gap {
                start_ms = start_ms.min(s);
                end_ms = end_ms.max(e);
                merged.push((k, (s, e), state::decode(&v)?));
            }
        }
        if end_ms + grace(w) <= st {
            return Ok(());
        }
        let mut accs = self.accumulators(None)?;
        let mut header = Header::default();
        for (_, _, s) in &merged {
            for (acc, st) in accs.iter_mut().zip(&s.states) {
                acc.merge_batch(st)?;
            }
            header.ts = header.ts.max(s.header.ts);
        }
        self.update(&mut accs, &batch, false)?;
        header.ts = header.ts.max(ts);
        for (k, (s, e), old) in &merged {
            ctx.put_raw(AGG_STORE, k, None);
            ctx.put_raw(FINAL_STORE, &index_key(*e, k), None);
            if old.header.emitted {
                self.emit_tombstone(
                    ctx,
                    &groups[..n_keys].to_vec(),
                    Some((WindowKind::Session, (*s, *e))),
                    *e,
                )?;
            }
        }
        groups[n_keys] = ScalarValue::Int64(Some(start_ms));
        groups[n_keys + 1] = ScalarValue::Int64(Some(end_ms));
        let (results, states) = self.results(&mut accs)?;
        self.emit_result(
            ctx,
            &groups,
            results,
            &mut header,
            Some((WindowKind::Session, (start_ms, end_ms))),
        )?;
        header.sizes = states.iter().map(Vec::len).collect();
        let key = group_key(&groups[..n_keys], Some((start_ms, end_ms)));
        ctx.put_raw(FINAL_STORE, &index_key(end_ms, &key), Some(&[]));
        ctx.put_raw(AGG_STORE, &key, Some(&state::encode(&header, &states)?));
        Ok(())
    }

    /// Closes every window whose end + grace has passed: EMIT FINAL emits its result
    /// now; then its state is dropped (a late record for it is dropped anyway).
    pub(super) fn close_windows(&mut self, ctx: &mut Ctx<'_>, st: i64) -> Result<()> {
        let Some(w) = self.q.window else {
            return Ok(());
        };
        let limit = st.saturating_sub(grace(&w)).saturating_add(1);
        if limit <= 0 {
            return Ok(());
        }
        let closing = ctx.range_raw(FINAL_STORE, &0i64.to_be_bytes(), &limit.to_be_bytes());
        if closing
            .iter()
            .any(|(pk, _)| pk.get(8..).is_some_and(|k| self.held.contains_key(k)))
        {
            // A held result of a closing window goes out before its state is dropped.
            self.flush_held(ctx)?;
        }
        for (pk, _) in closing {
            ctx.put_raw(FINAL_STORE, &pk, None);
            let key = &pk[8..];
            self.cache.remove(key);
            let Some(bytes) = ctx.get_raw(AGG_STORE, key) else {
                continue;
            };
            ctx.put_raw(AGG_STORE, key, None);
            if !self.q.emit_final {
                continue;
            }
            let stored = state::decode(&bytes)?;
            let (groups, window) = self.groups_of_key(key)?;
            let mut accs = self.accumulators(Some(&stored))?;
            let (results, _) = self.results(&mut accs)?;
            let mut header = stored.header;
            self.emit_result(ctx, &groups, results, &mut header, window)?;
        }
        Ok(())
    }

    /// A store key's group values (with WINDOWSTART and WINDOWEND for a windowed
    /// query) and window, as [`group_key`] wrote them.
    fn groups_of_key(&self, key: &[u8]) -> Result<(Row, GroupWindow)> {
        let n = if self.q.window.is_some() {
            key.len()
                .checked_sub(16)
                .ok_or_else(|| err("a windowed group key without its window"))?
        } else {
            key.len()
        };
        let json: Vec<serde_json::Value> = serde_json::from_slice(&key[..n]).map_err(err)?;
        let types = self.group_types();
        let mut groups = json
            .iter()
            .zip(&types)
            .map(|(j, t)| crate::format::json_to_scalar(j, t))
            .collect::<Result<Row>>()?;
        let window = match self.q.window {
            Some(w) => {
                let s = i64::from_be_bytes(key[n..n + 8].try_into().map_err(err)?);
                let e = i64::from_be_bytes(key[n + 8..].try_into().map_err(err)?);
                groups.push(ScalarValue::Int64(Some(s)));
                groups.push(ScalarValue::Int64(Some(e)));
                Some((w.kind, (s, e)))
            }
            None => None,
        };
        Ok((groups, window))
    }

    /// The output row a stored group gives now — the row its last emitted record
    /// holds — with that record's window and timestamp; `None` for an entry that is
    /// not a group (the stream time) or a group HAVING keeps out of the result.
    pub(super) fn stored_output(
        &self,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<Option<(Row, GroupWindow, i64)>> {
        if key.first() != Some(&b'[') {
            return Ok(None);
        }
        let stored = state::decode(bytes)?;
        let (mut row, window) = self.groups_of_key(key)?;
        let mut accs = self.accumulators(Some(&stored))?;
        for (i, acc) in accs.iter_mut().enumerate() {
            row.push(self.result_of(i, acc)?);
        }
        let ts = match window {
            Some((WindowKind::Session, (_, e))) => e,
            _ => stored.header.ts,
        };
        Ok(pipeline::run(&self.q.pipeline.post, row)?.map(|out| (out, window, ts)))
    }

    fn group_types(&self) -> Vec<crate::parser::types::SqlType> {
        let agg = self.agg();
        agg.groups
            .iter()
            .map(|g| {
                g.data_type(&agg.input)
                    .ok()
                    .and_then(|t| crate::parser::types::SqlType::from_arrow(&t))
                    .unwrap_or(crate::parser::types::SqlType::String)
            })
            .collect()
    }
}
