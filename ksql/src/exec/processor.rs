//! The Streams processor that runs one persistent query in one task: it decodes each
//! record with the source's formats, runs the query's pipeline (and aggregate state,
//! see `aggregate`), and forwards the results encoded with the sink's formats. A
//! record that cannot be decoded is logged and skipped, as ksqlDB does.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use runnel_streams::{Batched, Processor, ProcessorContext, Record};

use super::compiled::{Compiled, TABLE_STORE};
use super::join::Tagged;
use crate::catalog::Column;
use crate::error::Result;
use crate::format::{self, Row, WindowBounds};
use crate::parser::ast::SourceKind;
use crate::planner::pipeline;

pub type Bytes = Option<Vec<u8>>;
pub type Ctx<'a> = ProcessorContext<'a, Bytes, Bytes>;

pub struct QueryProcessor {
    pub(crate) q: Arc<Compiled>,
    /// The second stage of a repartitioned aggregation: records arrive re-keyed by
    /// group, table rows as explicit retractions and additions.
    pub(crate) rekeyed: bool,
    /// The largest event time seen (cached; persisted in the aggregate store).
    pub(crate) stream_time: Option<i64>,
    pub(crate) stream_time_saved: i64,
    /// Decoded accumulators of recently updated groups, by store key.
    pub(crate) cache: super::aggregate::Cache,
    pub(crate) cacheable: bool,
    /// Set while a replaced table row is retracted from the group its new row joins.
    pub(crate) hold_emit: bool,
    /// The headers of the record being processed, for header columns.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// Whether the query takes records in batches (see `batch`).
    pub(crate) batchable: bool,
    /// Whether its batches go the columnar way (see `batch_columns`).
    pub(crate) columnar: bool,
    /// Record caching is on: a batched aggregation emits one result per group per
    /// batch, not every update (see `batch_aggregate`).
    pub(crate) caching: bool,
    /// With caching on, the groups updated since the last commit, whose results
    /// (and state) go out when the task commits (see `batch_aggregate`).
    pub(crate) held: super::batch_aggregate::Held,
    pub(crate) held_seq: u64,
}

/// The row a record is inside a query: declared columns (key ones from the key,
/// the others from the value; all NULL for a tombstone), then ROWTIME,
/// ROWPARTITION, ROWOFFSET, and WINDOWSTART/WINDOWEND when `window` is given.
pub fn source_row(
    source: &crate::catalog::Source,
    key: &Row,
    value: Option<&Row>,
    headers: &format::Headers,
    meta: (i64, i32, i64),
    window: Option<WindowBounds>,
) -> Row {
    source_row_of(source, key.clone(), value.cloned(), headers, meta, window)
}

/// [`source_row`] from a decoded key and value it takes (no value is copied).
pub fn source_row_of(
    source: &crate::catalog::Source,
    key: Row,
    value: Option<Row>,
    headers: &format::Headers,
    (ts, partition, offset): (i64, i32, i64),
    window: Option<WindowBounds>,
) -> Row {
    let (mut k, mut v) = (key.into_iter(), value.map(|v| v.into_iter()));
    let mut row: Row = Vec::with_capacity(source.columns.len() + 5);
    row.extend(source.columns.iter().map(|c| {
        if let Some(h) = &c.header {
            return format::header_value(h, &c.sql_type, headers);
        }
        let found = if c.key {
            k.next()
        } else {
            v.as_mut().and_then(|v| v.next())
        };
        found.unwrap_or_else(|| format::null_of(&c.sql_type))
    }));
    row.push(ScalarValue::Int64(Some(ts)));
    row.push(ScalarValue::Int32(Some(partition)));
    row.push(ScalarValue::Int64(Some(offset)));
    if let Some((s, e)) = window {
        row.push(ScalarValue::Int64(Some(s)));
        row.push(ScalarValue::Int64(Some(e)));
    }
    row
}

impl QueryProcessor {
    pub fn new(q: Arc<Compiled>) -> QueryProcessor {
        QueryProcessor {
            rekeyed: q.repartition,
            cacheable: super::aggregate::cacheable(&q),
            batchable: super::batch::batchable(&q),
            columnar: super::batch_columns::columnar(&q),
            q,
            stream_time: None,
            stream_time_saved: i64::MIN,
            cache: Default::default(),
            hold_emit: false,
            headers: Vec::new(),
            caching: false,
            held: Default::default(),
            held_seq: 0,
        }
    }

    /// With record caching on (`cache.max.bytes.buffering` above 0), a batched
    /// aggregation emits each group's result once per batch.
    pub fn with_caching(mut self, on: bool) -> QueryProcessor {
        self.caching = on;
        self
    }

    pub(crate) fn row(
        &self,
        key: &Row,
        value: &Row,
        window: Option<WindowBounds>,
        ts: i64,
        ctx: &Ctx<'_>,
    ) -> Row {
        let windowed = self.q.source.windowed.is_some() || self.q.window.is_some();
        let meta = (ts, ctx.partition(), ctx.offset());
        source_row(
            &self.q.source,
            key,
            Some(value),
            &self.headers,
            meta,
            windowed.then_some(window.unwrap_or((0, 0))),
        )
    }

    pub(crate) fn event_time(&self, value: Option<&Row>, record_ts: i64) -> i64 {
        let Some(i) = self.q.ts_col else {
            return record_ts;
        };
        let n_keys = self.q.source.columns[..i].iter().filter(|c| c.key).count();
        let vi = i - n_keys;
        self.event_time_of(value.and_then(|v| v.get(vi)), record_ts)
    }

    /// The event time the TIMESTAMP column's value gives, else the record's.
    pub(crate) fn event_time_of(&self, value: Option<&ScalarValue>, record_ts: i64) -> i64 {
        match value {
            Some(ScalarValue::Utf8(Some(text))) => match &self.q.ts_format {
                Some((pattern, zoned)) => format::timestamp::parse_millis(text, pattern, *zoned)
                    .unwrap_or_else(|e| {
                        tracing::warn!(query = %self.q.query_id, "{e}; the record's own timestamp is used");
                        record_ts
                    }),
                None => record_ts,
            },
            Some(ScalarValue::Int64(Some(t))) => *t,
            Some(ScalarValue::TimestampMillisecond(Some(t), _)) => *t,
            Some(ScalarValue::Int32(Some(t))) => *t as i64,
            _ => record_ts,
        }
    }

    fn process_record(
        &mut self,
        ctx: &mut Ctx<'_>,
        r: Record<Bytes, Bytes>,
        retract: bool,
        replaced: Option<Vec<u8>>,
    ) -> Result<()> {
        let src = &self.q.source;
        if src.kind == SourceKind::Table && r.key.is_none() && !self.rekeyed {
            // A table row needs a key: Kafka Streams' KTableSource skips (and counts) a
            // record without one, and a compacted sink would refuse its result.
            return Err(crate::error::Error::Serde(
                "a table record without a key".into(),
            ));
        }
        let keys: Vec<_> = src.key_columns().collect();
        let values: Vec<_> = src.value_columns().collect();
        let (key, window) =
            format::decode_key(src.key_format, r.key.as_deref(), &keys, src.windowed)?;
        let value = format::decode_value(
            src.value_format,
            r.value.as_deref(),
            &values,
            src.wrap_single_value,
        )?;
        let ts = self.event_time(value.as_ref(), r.timestamp);
        if self.rekeyed {
            let row = value.map(|v| self.row(&key, &v, window, ts, ctx));
            if let Some(old) = replaced {
                let old = format::decode_value(
                    src.value_format,
                    Some(&old),
                    &values,
                    src.wrap_single_value,
                )?
                .map(|v| self.row(&key, &v, window, ts, ctx));
                return self.aggregate(ctx, old, row, ts);
            }
            return if retract {
                self.aggregate(ctx, row, None, ts)
            } else {
                self.aggregate(ctx, None, row, ts)
            };
        }
        if self.q.pipeline.agg.is_some() {
            let (old, new) = if src.kind == SourceKind::Table {
                let kb = r.key.clone().unwrap_or_default();
                let old = ctx.get_raw(TABLE_STORE, &kb);
                ctx.put_raw(TABLE_STORE, &kb, r.value.as_deref());
                let old = match old {
                    Some(b) => format::decode_value(
                        src.value_format,
                        Some(&b),
                        &values,
                        src.wrap_single_value,
                    )?,
                    None => None,
                };
                (old.map(|v| self.row(&key, &v, window, ts, ctx)), value)
            } else {
                (None, value)
            };
            let new = new.map(|v| self.row(&key, &v, window, ts, ctx));
            return self.aggregate(ctx, old, new, ts);
        }
        let out = match &value {
            None if src.kind == SourceKind::Stream => {
                return self.forward_null_value(ctx, &key, window, ts);
            }
            None => None,
            Some(v) if src.kind == SourceKind::Stream => {
                let row = self.row(&key, v, window, ts, ctx);
                let w = window.and_then(|w| src.windowed.map(|k| (k, w)));
                for out in pipeline::run_all(&self.q.pipeline.pre, row)? {
                    self.emit(ctx, &out, w, ts)?;
                }
                return Ok(());
            }
            Some(v) => pipeline::run(&self.q.pipeline.pre, self.row(&key, v, window, ts, ctx))?,
        };
        if src.kind == SourceKind::Table {
            // A table's row that stops matching (or is deleted) leaves the result as a
            // tombstone, but only if it was in the result.
            let kb = r.key.clone().unwrap_or_default();
            let was_in = ctx.get_raw(TABLE_STORE, &kb).is_some();
            match &out {
                Some(_) => ctx.put_raw(TABLE_STORE, &kb, Some(&[1])),
                None if was_in => {
                    ctx.put_raw(TABLE_STORE, &kb, None);
                    let key_out = format::encode_key(
                        self.q.sink.key_format,
                        &key,
                        &self.q.sink.key_columns().collect::<Vec<_>>(),
                        window.map(|w| {
                            (
                                src.windowed
                                    .unwrap_or(crate::parser::ast::WindowKind::Tumbling),
                                w,
                            )
                        }),
                    )?;
                    ctx.forward(Record::new(key_out, None, ts));
                    return Ok(());
                }
                None => return Ok(()),
            }
        }
        if let Some(out) = out {
            let w = window.and_then(|w| src.windowed.map(|k| (k, w)));
            self.emit(ctx, &out, w, ts)?;
        }
        Ok(())
    }

    /// A stream record without a value: ksqlDB's stream SELECT maps a null row to a
    /// null row (the key still computed from the record's key), and a WHERE never
    /// accepts one.
    fn forward_null_value(
        &self,
        ctx: &mut Ctx<'_>,
        key: &Row,
        window: Option<WindowBounds>,
        ts: i64,
    ) -> Result<()> {
        let filtered = self
            .q
            .pipeline
            .pre
            .iter()
            .any(|s| matches!(s, pipeline::Stage::Filter { .. }));
        if filtered {
            return Ok(());
        }
        let nulls: Row = Vec::new();
        let row = self.row(key, &nulls, window, ts, ctx);
        let Some(out) = pipeline::run(&self.q.pipeline.pre, row)? else {
            return Ok(());
        };
        let key_out: Row = self.q.key_idx.iter().map(|i| out[*i].clone()).collect();
        let w = window.and_then(|w| self.q.source.windowed.map(|k| (k, w)));
        self.emit_tombstone(ctx, &key_out, w, ts)
    }

    /// The output record's timestamp from the sink's `TIMESTAMP=` column, if it has
    /// one and the row a usable value there; a text the format cannot read is an
    /// error (ksqlDB's timestamp extractor drops the row).
    pub(super) fn sink_time(&self, out: &Row) -> Result<Option<i64>> {
        let Some(value) = self.q.sink_ts_col.and_then(|i| out.get(i)) else {
            return Ok(None);
        };
        Ok(match value {
            ScalarValue::Int64(Some(t)) | ScalarValue::TimestampMillisecond(Some(t), _) => Some(*t),
            ScalarValue::Int32(Some(t)) => Some(*t as i64),
            ScalarValue::Utf8(Some(text)) => match self.q.sink_ts_format.as_ref() {
                Some((pattern, zoned)) => {
                    Some(format::timestamp::parse_millis(text, pattern, *zoned)?)
                }
                None => None,
            },
            _ => None,
        })
    }

    /// Forwards an output row: key columns to the key, the rest to the value.
    pub(crate) fn emit(
        &self,
        ctx: &mut Ctx<'_>,
        out: &Row,
        window: Option<(crate::parser::ast::WindowKind, WindowBounds)>,
        ts: i64,
    ) -> Result<()> {
        let sink = &self.q.sink;
        let key_cols: Vec<_> = sink.key_columns().collect();
        let value_cols: Vec<_> = sink.value_columns().collect();
        self.emit_with(ctx, out, window, ts, (&key_cols, &value_cols))
    }

    /// [`QueryProcessor::emit`] with the sink's key and value columns at hand (a batch
    /// looks them up once).
    pub(crate) fn emit_with(
        &self,
        ctx: &mut Ctx<'_>,
        out: &Row,
        window: Option<(crate::parser::ast::WindowKind, WindowBounds)>,
        ts: i64,
        (key_cols, value_cols): (&[&Column], &[&Column]),
    ) -> Result<()> {
        let (k, v) = self.encode_output(out, window, (key_cols, value_cols))?;
        let ts = self.sink_time(out)?.unwrap_or(ts);
        if ts < 0 {
            // ksqlDB's sink timestamp extractor refuses a negative timestamp: the row
            // is logged and dropped.
            return Err(crate::error::Error::Serde(format!(
                "the sink's TIMESTAMP column gave a negative timestamp {ts}"
            )));
        }
        ctx.forward(Record::new(k, Some(v), ts));
        Ok(())
    }

    /// An output row as the sink's record key and value.
    pub(crate) fn encode_output(
        &self,
        out: &Row,
        window: Option<(crate::parser::ast::WindowKind, WindowBounds)>,
        (key_cols, value_cols): (&[&Column], &[&Column]),
    ) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
        let sink = &self.q.sink;
        let key: Row = self.q.key_idx.iter().map(|i| out[*i].clone()).collect();
        let value: Row = self.q.value_idx.iter().map(|i| out[*i].clone()).collect();
        let k = format::encode_key(sink.key_format, &key, key_cols, window)?;
        let v = format::encode_value(
            sink.value_format,
            &value,
            value_cols,
            sink.wrap_single_value,
        )?;
        Ok((k, v))
    }

    pub(crate) fn emit_tombstone(
        &self,
        ctx: &mut Ctx<'_>,
        key: &Row,
        window: Option<(crate::parser::ast::WindowKind, WindowBounds)>,
        ts: i64,
    ) -> Result<()> {
        let sink = &self.q.sink;
        let key_cols: Vec<_> = sink.key_columns().collect();
        let k = format::encode_key(sink.key_format, key, &key_cols, window)?;
        ctx.forward(Record::new(k, None, ts));
        Ok(())
    }
}

impl Processor<Bytes, Tagged, Bytes, Bytes> for QueryProcessor {
    fn max_batch(&self) -> usize {
        if self.batchable {
            super::batch::MAX_BATCH
        } else {
            1
        }
    }

    fn process_batch(&mut self, ctx: &mut Ctx<'_>, batch: Vec<Batched<Bytes, Tagged>>) {
        self.process_records(ctx, batch)
    }

    fn commit(&mut self, ctx: &mut Ctx<'_>) {
        if let Err(e) = self.flush_held(ctx) {
            tracing::warn!(query = %self.q.query_id, "held aggregate results: {e}");
        }
    }

    fn process(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Tagged>) {
        let (partition, offset) = (ctx.partition(), ctx.offset());
        let retract = r.value.retract;
        let key = r.value.key.clone().unwrap_or(r.key.clone());
        let replaced = r.value.old;
        self.headers = r.headers;
        let r = Record::new(key, r.value.value, r.timestamp);
        if let Err(e) = self.process_record(ctx, r, retract, replaced) {
            tracing::warn!(
                query = %self.q.query_id,
                partition,
                offset,
                "record skipped: {e}"
            );
        }
    }
}
