//! The vectorized path of a stateless stream query (filters and projections, no
//! aggregate, join or table function): the Streams runtime hands the query's processor
//! a batch of records; their rows become one Arrow batch that each filter and
//! projection evaluates once, and the rows that come out are encoded in input order.
//!
//! ksqlDB turns an expression that fails on a row (a division by zero, a bad cast)
//! into NULL for that row. DataFusion fails the whole batch instead, so a batch whose
//! evaluation fails runs again row by row, which gives ksqlDB's per-row results.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringBuilder,
};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatchOptions;
use datafusion::common::ScalarValue;
use runnel_streams::{Batched, Record};

use super::join::Tagged;
use super::processor::{source_row_of, Bytes, Ctx, QueryProcessor};
use crate::catalog::Column;
use crate::error::{Error, Result};
use crate::format::{self, Row, WindowBounds};
use crate::parser::ast::{SourceKind, WindowKind};
use crate::planner::pipeline::{self, Stage};

/// Records a batch holds at most.
pub const MAX_BATCH: usize = 4096;

/// A decoded record waiting for its batch to run.
pub(super) struct Pending {
    pub(super) row: Row,
    pub(super) ts: i64,
    pub(super) window: Option<(WindowKind, WindowBounds)>,
    pub(super) offset: i64,
}

/// Whether a query runs on the vectorized path: a stream query without a join or a
/// table function, stateless or aggregating (see `batch_aggregate` for which).
pub fn batchable(q: &super::compiled::Compiled) -> bool {
    let stream = q.join.is_none()
        && q.source.kind == SourceKind::Stream
        && q.pipeline
            .pre
            .iter()
            .all(|s| !matches!(s, Stage::Unnest { .. }));
    match &q.pipeline.agg {
        None => stream && !q.repartition,
        Some(_) => stream && super::batch_aggregate::batchable(q),
    }
}

impl QueryProcessor {
    /// Decodes each record; a record the vectorized path does not take (a tombstone)
    /// first runs the rows before it, then goes through the per-record path, so the
    /// output keeps the input's order.
    pub(crate) fn process_records(
        &mut self,
        ctx: &mut Ctx<'_>,
        batch: Vec<Batched<Bytes, Tagged>>,
    ) {
        if self.columnar {
            self.process_columns(ctx, batch);
            return;
        }
        let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
        let q = self.q.clone();
        let columns = (
            q.source.key_columns().collect::<Vec<_>>(),
            q.source.value_columns().collect::<Vec<_>>(),
        );
        for b in batch {
            ctx.process_as(&b);
            match self.decode(ctx, &b, (&columns.0, &columns.1)) {
                Ok(Some(p)) => pending.push(p),
                Ok(None) => {
                    self.run_pending(ctx, &mut pending);
                    <Self as runnel_streams::Processor<_, _, _, _>>::process(self, ctx, b.record);
                }
                Err(e) => self.skipped(ctx.partition(), b.offset, &e),
            }
        }
        self.run_pending(ctx, &mut pending);
    }

    pub(super) fn skipped(&self, partition: i32, offset: i64, e: &Error) {
        tracing::warn!(query = %self.q.query_id, partition, offset, "record skipped: {e}");
    }

    /// The record's row, or `None` for one without a value.
    fn decode(
        &self,
        ctx: &Ctx<'_>,
        b: &Batched<Bytes, Tagged>,
        (keys, values): (&[&Column], &[&Column]),
    ) -> Result<Option<Pending>> {
        let src = &self.q.source;
        let r: &Record<Bytes, Tagged> = &b.record;
        let key_bytes = r.value.key.as_ref().unwrap_or(&r.key);
        let (key, window) =
            format::decode_key(src.key_format, key_bytes.as_deref(), keys, src.windowed)?;
        let Some(value) = format::decode_value(
            src.value_format,
            r.value.value.as_deref(),
            values,
            src.wrap_single_value,
        )?
        else {
            return Ok(None);
        };
        let ts = self.event_time(Some(&value), r.timestamp);
        let windowed = src.windowed.is_some() || self.q.window.is_some();
        let row = source_row_of(
            src,
            key,
            Some(value),
            &r.headers,
            (ts, ctx.partition(), b.offset),
            windowed.then_some(window.unwrap_or((0, 0))),
        );
        Ok(Some(Pending {
            row,
            ts,
            window: window.and_then(|w| src.windowed.map(|k| (k, w))),
            offset: b.offset,
        }))
    }

    /// Runs and emits the waiting rows, vectorized or, if that fails, row by row.
    pub(super) fn run_pending(&mut self, ctx: &mut Ctx<'_>, pending: &mut Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        if self.q.pipeline.agg.is_some() {
            self.aggregate_pending(ctx, std::mem::take(pending));
            return;
        }
        let rows: Vec<Row> = pending
            .iter_mut()
            .map(|p| std::mem::take(&mut p.row))
            .collect();
        if self.q.sink_ts_col.is_none() {
            if let Ok((batch, origin)) =
                vectorized_batch(&self.q.pipeline.pre, &self.q.pipeline.input, &rows)
            {
                self.emit_batch(ctx, &batch, &origin, pending);
                pending.clear();
                return;
            }
        }
        let outputs = match vectorized(&self.q.pipeline.pre, &self.q.pipeline.input, &rows) {
            Ok(outputs) => outputs,
            Err(_) => rows
                .into_iter()
                .enumerate()
                .flat_map(
                    |(i, row)| match pipeline::run_all(&self.q.pipeline.pre, row) {
                        Ok(out) => out.into_iter().map(|o| (i, o)).collect::<Vec<_>>(),
                        Err(e) => {
                            self.skipped(ctx.partition(), pending[i].offset, &e);
                            Vec::new()
                        }
                    },
                )
                .collect(),
        };
        let q = self.q.clone();
        let key_cols: Vec<_> = q.sink.key_columns().collect();
        let value_cols: Vec<_> = q.sink.value_columns().collect();
        for (i, out) in outputs {
            let p = &pending[i];
            if let Err(e) = self.emit_with(ctx, &out, p.window, p.ts, (&key_cols, &value_cols)) {
                self.skipped(ctx.partition(), p.offset, &e);
            }
        }
        pending.clear();
    }
}

/// The stages run once over `rows`: each output row with the index of its input row.
pub(super) fn vectorized(
    stages: &[Stage],
    input: &SchemaRef,
    rows: &[Row],
) -> Result<Vec<(usize, Row)>> {
    if stages.is_empty() {
        return Ok(rows.iter().cloned().enumerate().collect());
    }
    let (batch, origin) = vectorized_batch(stages, input, rows)?;
    let mut out = Vec::with_capacity(batch.num_rows());
    for (i, o) in origin.into_iter().enumerate() {
        let row = batch
            .columns()
            .iter()
            .map(|c| ScalarValue::try_from_array(c, i))
            .collect::<datafusion::common::Result<Row>>()?;
        out.push((o, row));
    }
    Ok(out)
}

/// The stages run once over `rows`: the output batch, and for each of its rows the
/// index of its input row.
pub(super) fn vectorized_batch<R: AsRef<[ScalarValue]>>(
    stages: &[Stage],
    input: &SchemaRef,
    rows: &[R],
) -> Result<(RecordBatch, Vec<usize>)> {
    run_stages(stages, to_batch(input, rows)?)
}

/// The stages run once over `batch`: the output batch, and for each of its rows the
/// index of its input row.
pub(super) fn run_stages(
    stages: &[Stage],
    mut batch: RecordBatch,
) -> Result<(RecordBatch, Vec<usize>)> {
    let mut origin: Vec<usize> = (0..batch.num_rows()).collect();
    for stage in stages {
        match stage {
            Stage::Filter {
                predicate,
                projection,
                input,
            } => {
                let b = conform(input, &batch)?;
                let verdict = pipeline::evaluate(predicate, &b)?.into_array(b.num_rows())?;
                let verdict = verdict
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| Error::Engine("a filter that is not boolean".into()))?;
                // NULL is false, as for a row.
                origin = origin
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| verdict.is_valid(*i) && verdict.value(*i))
                    .map(|(_, o)| *o)
                    .collect();
                batch = filter_record_batch(&b, verdict).map_err(engine)?;
                if let Some(p) = projection {
                    batch = batch.project(p).map_err(engine)?;
                }
            }
            Stage::Project { exprs, input } => {
                let b = conform(input, &batch)?;
                let n = b.num_rows();
                let columns: Vec<ArrayRef> = exprs
                    .iter()
                    .map(|e| pipeline::evaluate(e, &b).and_then(|c| c.into_array(n)))
                    .collect::<datafusion::common::Result<_>>()?;
                let fields: Vec<Field> = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
                    .collect();
                batch = with_rows(std::sync::Arc::new(Schema::new(fields)), columns, n)?;
            }
            Stage::Unnest { .. } => {
                return Err(Error::Engine("a table function runs row by row".into()))
            }
        }
    }
    Ok((batch, origin))
}

fn engine(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

/// Rows as one batch of `schema`, each column cast to the schema's type.
pub(super) fn to_batch<R: AsRef<[ScalarValue]>>(
    schema: &SchemaRef,
    rows: &[R],
) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| fit(column_of(rows, i)?, f.data_type()))
        .collect::<Result<Vec<_>>>()?;
    with_rows(schema.clone(), columns, rows.len())
}

/// Column `i` of the rows as an array: strings and plain numbers go straight into
/// the array (no `ScalarValue` copied per value), anything else through
/// `ScalarValue::iter_to_array`.
pub(super) fn column_of<R: AsRef<[ScalarValue]>>(rows: &[R], i: usize) -> Result<ArrayRef> {
    let values = || rows.iter().map(|r| &r.as_ref()[i]);
    let all = |f: fn(&ScalarValue) -> bool| values().all(f);
    let array: ArrayRef = match values().next() {
        Some(ScalarValue::Utf8(_)) if all(|v| matches!(v, ScalarValue::Utf8(_))) => {
            let bytes = values()
                .map(|v| match v {
                    ScalarValue::Utf8(Some(s)) => s.len(),
                    _ => 0,
                })
                .sum();
            let mut b = StringBuilder::with_capacity(rows.len(), bytes);
            for v in values() {
                match v {
                    ScalarValue::Utf8(Some(s)) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        Some(ScalarValue::Int32(_)) if all(|v| matches!(v, ScalarValue::Int32(_))) => {
            Arc::new(Int32Array::from_iter(values().map(|v| match v {
                ScalarValue::Int32(x) => *x,
                _ => None,
            })))
        }
        Some(ScalarValue::Int64(_)) if all(|v| matches!(v, ScalarValue::Int64(_))) => {
            Arc::new(Int64Array::from_iter(values().map(|v| match v {
                ScalarValue::Int64(x) => *x,
                _ => None,
            })))
        }
        Some(ScalarValue::Float64(_)) if all(|v| matches!(v, ScalarValue::Float64(_))) => {
            Arc::new(Float64Array::from_iter(values().map(|v| match v {
                ScalarValue::Float64(x) => *x,
                _ => None,
            })))
        }
        _ => ScalarValue::iter_to_array(values().cloned())?,
    };
    Ok(array)
}

/// The batch as `schema` says a stage's input is (the types the plan expects).
pub(super) fn conform(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.schema().fields().len() != schema.fields().len() {
        return Err(Error::Engine(
            "a stage's input does not match its plan".into(),
        ));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| fit(c.clone(), f.data_type()))
        .collect::<Result<Vec<_>>>()?;
    with_rows(schema.clone(), columns, batch.num_rows())
}

/// A batch of `rows` rows (a batch of no columns still has its rows).
pub(super) fn with_rows(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch> {
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(engine)
}

pub(super) fn fit(a: ArrayRef, to: &datafusion::arrow::datatypes::DataType) -> Result<ArrayRef> {
    if a.data_type() == to {
        return Ok(a);
    }
    cast(&a, to).map_err(engine)
}

#[cfg(test)]
mod tests {
    use datafusion::common::ScalarValue;

    use crate::format::Row;
    use crate::planner::pipeline;

    fn order(i: i32, qty: i32) -> Row {
        vec![
            ScalarValue::Utf8(Some(format!("o{i}"))),
            ScalarValue::Utf8(Some(format!("item-{i}"))),
            ScalarValue::Int32(Some(qty)),
            ScalarValue::Int64(Some(1_000 + i as i64)),
            ScalarValue::Int32(Some(0)),
            ScalarValue::Int64(Some(i as i64)),
        ]
    }

    /// Columns built straight from the rows are the arrays `ScalarValue` builds.
    #[test]
    fn columns_from_rows_are_the_arrays_scalar_values_build() {
        let rows: Vec<Row> = (0..50)
            .map(|i| {
                vec![
                    ScalarValue::Utf8((i % 7 != 3).then(|| format!("é{i}"))),
                    ScalarValue::Int32((i % 5 != 0).then_some(i)),
                    ScalarValue::Int64(Some(i as i64 * 1_000_000_000)),
                    ScalarValue::Float64((i % 4 != 1).then_some(i as f64 / 3.0)),
                    ScalarValue::Boolean(Some(i % 2 == 0)),
                    if i % 9 == 0 {
                        ScalarValue::Null
                    } else {
                        ScalarValue::Int32(Some(i))
                    },
                ]
            })
            .collect();
        for c in 0..rows[0].len() {
            let direct = super::column_of(&rows, c).map_err(|e| e.to_string());
            let through_scalars = ScalarValue::iter_to_array(rows.iter().map(|r| r[c].clone()))
                .map_err(|e| e.to_string());
            match (direct, through_scalars) {
                (Ok(a), Ok(b)) => assert_eq!(&a, &b, "column {c}"),
                (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "column {c}"),
            }
        }
    }

    /// One evaluation per batch gives the rows the row-by-row pipeline gives; a batch
    /// where one row's expression fails is refused (and then runs row by row, where
    /// that row's value is NULL).
    #[test]
    fn a_batch_gives_the_rows_of_the_row_pipeline() {
        let plan = crate::planner::tests::plan(
            "SELECT id, 100 / qty AS q, UCASE(item) AS item FROM orders WHERE qty > 1 OR qty = 0",
        )
        .unwrap();
        let p = &plan.pipeline;
        let rows: Vec<Row> = (0..500).map(|i| order(i, 1 + i % 7)).collect();
        let batched = super::vectorized(&p.pre, &p.input, &rows).unwrap();
        let by_row: Vec<(usize, Row)> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                pipeline::run_all(&p.pre, r.clone())
                    .unwrap()
                    .into_iter()
                    .map(move |o| (i, o))
            })
            .collect();
        assert_eq!(batched.len(), 500 - 500 / 7 - 1);
        assert_eq!(batched, by_row);

        let mut with_zero = rows.clone();
        with_zero[250] = order(250, 0);
        assert!(super::vectorized(&p.pre, &p.input, &with_zero).is_err());
        let alone = pipeline::run_all(&p.pre, with_zero[250].clone()).unwrap();
        assert_eq!(alone.len(), 1);
        assert!(alone[0].iter().any(|v| v.is_null()), "{alone:?}");
    }
}
