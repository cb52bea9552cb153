//! The columnar path of a batched query over an unwindowed stream: each record is
//! decoded straight into Arrow column builders (`columns`). A stateless query runs
//! the batch through its stages once and encodes the output rows straight from the
//! result arrays (`format::BatchRowEncoder`) — no row of `ScalarValue`s per record on
//! the way in or out; an aggregation hands the batch to `batch_aggregate`. A batch
//! that fails to build or to evaluate, or a sink with a TIMESTAMP column, goes the
//! row way (`batch`), which keeps ksqlDB's per-row results.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::common::ScalarValue;
use runnel_streams::{Batched, Record};

use super::batch::{run_stages, Pending};
use super::columns::{source_cells, Columns};
use super::compiled::Compiled;
use super::join::Tagged;
use super::processor::{Bytes, Ctx, QueryProcessor};
use crate::error::{Error, Result};
use crate::format::{self, Cell, Row};
use crate::parser::ast::SourceKind;

/// Whether a batchable query takes the columnar path.
pub fn columnar(q: &Compiled) -> bool {
    super::batch::batchable(q) && q.source.windowed.is_none() && q.source.kind == SourceKind::Stream
}

impl QueryProcessor {
    /// Decodes each record into the batch's columns; a tombstone first runs the rows
    /// before it, then goes through the per-record path, so the output keeps the
    /// input's order.
    pub(super) fn process_columns(
        &mut self,
        ctx: &mut Ctx<'_>,
        batch: Vec<Batched<Bytes, Tagged>>,
    ) {
        let q = self.q.clone();
        let mut columns = Columns::new(&q.pipeline.input);
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        for b in batch {
            ctx.process_as(&b);
            match self.decode_into(ctx, &b, &mut columns) {
                Ok(Some(ts)) => pending.push(Pending {
                    row: Row::new(),
                    ts,
                    window: None,
                    offset: b.offset,
                }),
                Ok(None) => {
                    self.run_columns(ctx, &mut columns, &mut pending);
                    <Self as runnel_streams::Processor<_, _, _, _>>::process(self, ctx, b.record);
                }
                Err(e) => self.skipped(ctx.partition(), b.offset, &e),
            }
        }
        self.run_columns(ctx, &mut columns, &mut pending);
    }

    /// Appends the record's source row; its event time, or `None` for a tombstone.
    fn decode_into(
        &self,
        ctx: &Ctx<'_>,
        b: &Batched<Bytes, Tagged>,
        columns: &mut Columns,
    ) -> Result<Option<i64>> {
        let src = &self.q.source;
        let r: &Record<Bytes, Tagged> = &b.record;
        let key = r.value.key.as_ref().unwrap_or(&r.key).as_deref();
        let meta = (r.timestamp, ctx.partition(), b.offset);
        let Some((mut cells, _)) =
            source_cells(src, (key, r.value.value.as_deref()), &r.headers, meta)?
        else {
            return Ok(None);
        };
        let mut ts = r.timestamp;
        if let Some(i) = self.q.ts_col {
            let value = cells.get(i).cloned().map(Cell::into_untyped);
            ts = self.event_time_of(value.as_ref(), r.timestamp);
            cells[src.columns.len()] = Cell::Int64(ts);
        }
        if self.q.window.is_some() {
            // A windowed aggregation's rows carry window columns, set per window.
            cells.extend([Cell::Int64(0), Cell::Int64(0)]);
        }
        columns.push(cells)?;
        Ok(Some(ts))
    }

    /// Runs and emits the rows decoded so far.
    fn run_columns(
        &mut self,
        ctx: &mut Ctx<'_>,
        columns: &mut Columns,
        pending: &mut Vec<Pending>,
    ) {
        if pending.is_empty() {
            return;
        }
        if self.q.pipeline.agg.is_some() {
            let input = columns.finish();
            self.aggregate_input(ctx, input, std::mem::take(pending));
            return;
        }
        let input = match columns.finish() {
            Ok(b) => b,
            Err(e) => {
                for p in pending.drain(..) {
                    self.skipped(ctx.partition(), p.offset, &e);
                }
                return;
            }
        };
        if self.q.sink_ts_col.is_none() {
            if let Ok((out, origin)) = run_stages(&self.q.pipeline.pre, input.clone()) {
                self.emit_batch(ctx, &out, &origin, pending);
                pending.clear();
                return;
            }
        }
        // The row way: ksqlDB's per-row results when the batch fails.
        for (i, p) in pending.iter_mut().enumerate() {
            p.row = row_of(&input, i).unwrap_or_default();
        }
        self.run_pending(ctx, pending);
    }

    /// Emits the rows of the stages' output batch, encoded straight from its arrays;
    /// `origin[i]`: the pending record row `i` came from (its time and window).
    pub(super) fn emit_batch(
        &self,
        ctx: &mut Ctx<'_>,
        batch: &RecordBatch,
        origin: &[usize],
        pending: &[Pending],
    ) {
        let sink = &self.q.sink;
        let key_cols: Vec<_> = sink.key_columns().collect();
        let value_cols: Vec<_> = sink.value_columns().collect();
        let pick = |idx: &[usize]| -> Vec<ArrayRef> {
            idx.iter().map(|i| batch.column(*i).clone()).collect()
        };
        let (keys, values) = (pick(&self.q.key_idx), pick(&self.q.value_idx));
        let encoder = match format::BatchRowEncoder::new(
            (sink.key_format, &keys, &key_cols),
            (sink.value_format, &values, &value_cols),
            sink.wrap_single_value,
        ) {
            Ok(e) => e,
            Err(e) => {
                for p in pending {
                    self.skipped(ctx.partition(), p.offset, &e);
                }
                return;
            }
        };
        for (i, o) in origin.iter().enumerate() {
            let p = &pending[*o];
            let encoded = if p.ts < 0 {
                // ksqlDB's sink timestamp extractor refuses a negative timestamp.
                Err(Error::Serde(format!(
                    "the sink's TIMESTAMP column gave a negative timestamp {}",
                    p.ts
                )))
            } else {
                encoder
                    .key(i, p.window)
                    .and_then(|k| Ok((k, encoder.value(i)?)))
            };
            match encoded {
                Ok((k, v)) => ctx.forward(Record::new(k, Some(v), p.ts)),
                Err(e) => self.skipped(ctx.partition(), p.offset, &e),
            }
        }
    }
}

/// Row `i` of a batch as `ScalarValue`s.
pub(super) fn row_of(batch: &RecordBatch, i: usize) -> Result<Row> {
    batch
        .columns()
        .iter()
        .map(|c: &ArrayRef| ScalarValue::try_from_array(c, i).map_err(Error::from))
        .collect()
}
