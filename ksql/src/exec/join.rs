//! The join operator. Both sources' records reach one processor per task, tagged with
//! their side; it keeps each side's rows in state stores and emits joined rows, which
//! then run through the query's pipeline (and aggregate) like any source row.
//! - stream-table: a stream record looks up the table row current at that moment;
//!   table updates only update the store.
//! - table-table: an update on either side re-evaluates the key's joined row; a row
//!   that leaves the result becomes a tombstone.
//! - stream-stream: each side is buffered by time; a record joins every buffered
//!   record of the other side within the WITHIN bounds. LEFT/OUTER rows without a
//!   match are emitted at once, or, with a GRACE PERIOD, once the window has closed.

use datafusion::common::ScalarValue;
use runnel_streams::{Processor, Record, Serde};
use serde_json::{json, Value};

use super::processor::{source_row, Bytes, Ctx, QueryProcessor};
use crate::catalog::Source;
use crate::error::{Error, Result};
use crate::format::{self, json_to_scalar, scalar_to_json, Row};
use crate::parser::ast::SourceKind;
use crate::parser::types::SqlType;
use crate::planner::join::{JoinSpec, JoinType};
use crate::planner::pipeline;

pub const LEFT_STORE: &str = "Join-Left";
pub const RIGHT_STORE: &str = "Join-Right";
pub const PENDING_STORE: &str = "Join-Outer-Pending";
pub const EMITTED_STORE: &str = "Join-Emitted";
/// A foreign-key join's left rows by their key: the foreign key each one joins on.
pub const FOREIGN_KEY_STORE: &str = "Join-Foreign-Keys";
const DEFAULT_RETENTION_MS: i64 = 86_400_000;

/// A record between the stages of a query: the side of a join it came from, its
/// original key when it was re-keyed for a repartition, whether it retracts a table
/// row from its old group, and the row it replaces when the update stays in the same
/// group (one change, as Kafka Streams 3.5+ applies subtractor and adder together).
#[derive(Debug, Clone, Default)]
pub struct Tagged {
    pub right: bool,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub retract: bool,
    pub old: Option<Vec<u8>>,
}

impl Tagged {
    pub fn of(right: bool, value: Bytes) -> Tagged {
        Tagged {
            right,
            value,
            ..Tagged::default()
        }
    }
}

fn put_chunk(b: &mut Vec<u8>, chunk: &[u8]) {
    b.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    b.extend_from_slice(chunk);
}

fn take_chunk<'a>(b: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = b.get(*at..*at + 4)?;
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let chunk = b.get(*at + 4..*at + 4 + n)?;
    *at += 4 + n;
    Some(chunk)
}

impl Serde for Tagged {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        let flags = u8::from(self.right)
            | u8::from(self.value.is_some()) << 1
            | u8::from(self.key.is_some()) << 2
            | u8::from(self.key.as_ref().is_some_and(|k| k.is_some())) << 3
            | u8::from(self.retract) << 4
            | u8::from(self.old.is_some()) << 5;
        let mut b = vec![flags];
        put_chunk(
            &mut b,
            self.key.clone().flatten().as_deref().unwrap_or_default(),
        );
        if let Some(old) = &self.old {
            put_chunk(&mut b, old);
        }
        b.extend_from_slice(self.value.as_deref().unwrap_or_default());
        Some(b)
    }
    fn from_bytes(bytes: Option<&[u8]>) -> runnel_streams::Result<Self> {
        let bad = || runnel_streams::Error::Deserialize {
            what: "a tagged record".into(),
            reason: "truncated".into(),
        };
        let b = bytes.ok_or_else(bad)?;
        let flags = *b.first().ok_or_else(bad)?;
        let mut at = 1;
        let key = take_chunk(b, &mut at).ok_or_else(bad)?.to_vec();
        let old = if flags & 32 != 0 {
            Some(take_chunk(b, &mut at).ok_or_else(bad)?.to_vec())
        } else {
            None
        };
        let rest = b[at..].to_vec();
        Ok(Tagged {
            right: flags & 1 != 0,
            value: (flags & 2 != 0).then_some(rest),
            key: (flags & 4 != 0).then(|| (flags & 8 != 0).then_some(key)),
            retract: flags & 16 != 0,
            old,
        })
    }
}

pub struct JoinProcessor {
    pub(super) inner: QueryProcessor,
    stream_time: i64,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine(e.to_string())
}

/// The column types of a side's row (declared columns, then the pseudo columns).
pub(super) fn row_types(s: &Source) -> Vec<SqlType> {
    let mut t: Vec<SqlType> = s.columns.iter().map(|c| c.sql_type.clone()).collect();
    t.extend([SqlType::Bigint, SqlType::Integer, SqlType::Bigint]);
    t
}

fn row_json(row: &Row) -> Value {
    Value::Array(row.iter().map(scalar_to_json).collect())
}

fn row_from_json(v: &Value, types: &[SqlType]) -> Result<Row> {
    let items = v
        .as_array()
        .ok_or_else(|| err("stored join row is not an array"))?;
    items
        .iter()
        .zip(types)
        .map(|(j, t)| json_to_scalar(j, t))
        .collect()
}

pub(super) struct Stored {
    pub(super) key: String,
    pub(super) ts: i64,
    pub(super) row: Row,
}

pub(super) fn decode_stored(bytes: &[u8], types: &[SqlType]) -> Result<Stored> {
    let v: Value = serde_json::from_slice(bytes).map_err(err)?;
    Ok(Stored {
        key: v["k"].as_str().unwrap_or_default().to_string(),
        ts: v["ts"].as_i64().unwrap_or(0),
        row: row_from_json(&v["row"], types)?,
    })
}

pub(super) fn encode_stored(key: &str, ts: i64, row: &Row) -> Vec<u8> {
    json!({"k": key, "ts": ts, "row": row_json(row)})
        .to_string()
        .into_bytes()
}

/// Buffer key for stream-stream joins: time first, so windows and expiry are ranges.
fn buffer_key(ts: i64, partition: i32, offset: i64) -> Vec<u8> {
    let mut k = ts.to_be_bytes().to_vec();
    k.extend_from_slice(&partition.to_be_bytes());
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

impl JoinProcessor {
    pub fn new(inner: QueryProcessor) -> JoinProcessor {
        JoinProcessor {
            inner,
            stream_time: i64::MIN,
        }
    }

    pub(super) fn spec(&self) -> &JoinSpec {
        // Join processors only exist for join queries.
        self.inner.q.join.as_ref().expect("join query")
    }

    pub(super) fn side_row(
        &self,
        right: bool,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &format::Headers,
        ts: i64,
        ctx: &Ctx<'_>,
    ) -> Result<(Row, bool)> {
        let spec = self.spec();
        let src = if right { &spec.right } else { &spec.left };
        let keys: Vec<_> = src.key_columns().collect();
        let values: Vec<_> = src.value_columns().collect();
        let (k, _) = format::decode_key(src.key_format, key, &keys, None)?;
        let v = format::decode_value(src.value_format, value, &values, src.wrap_single_value)?;
        let present = v.is_some();
        Ok((
            source_row(
                src,
                &k,
                v.as_ref(),
                headers,
                (ts, ctx.partition(), ctx.offset()),
                None,
            ),
            present,
        ))
    }

    pub(crate) fn join_key(&self, right: bool, row: &Row) -> Result<Option<String>> {
        let spec = self.spec();
        let p = if right {
            &spec.right_key
        } else {
            &spec.left_key
        };
        let out = pipeline::run(&p.pre, row.clone())?;
        Ok(out
            .and_then(|r| r.into_iter().next())
            .filter(|v| !v.is_null())
            .map(|v| scalar_to_json(&v).to_string()))
    }

    fn columns_only(&self, right: bool, row: Option<&Row>) -> Row {
        let spec = self.spec();
        let src = if right { &spec.right } else { &spec.left };
        match row {
            Some(r) => r[..src.columns.len()].to_vec(),
            None => src
                .columns
                .iter()
                .map(|c| format::null_of(&c.sql_type))
                .collect(),
        }
    }

    /// The joined row: left columns, right columns, then the trigger's pseudo columns.
    pub(super) fn joined(
        &self,
        left: Option<&Row>,
        right: Option<&Row>,
        ts: i64,
        ctx: &Ctx<'_>,
    ) -> Row {
        let mut row = self.columns_only(false, left);
        row.extend(self.columns_only(true, right));
        row.push(ScalarValue::Int64(Some(ts)));
        row.push(ScalarValue::Int32(Some(ctx.partition())));
        row.push(ScalarValue::Int64(Some(ctx.offset())));
        row
    }

    /// A joined stream row goes on through the query.
    fn forward(&mut self, ctx: &mut Ctx<'_>, row: Row, ts: i64) -> Result<()> {
        if self.inner.q.pipeline.agg.is_some() {
            return self.inner.aggregate(ctx, None, Some(row), ts);
        }
        if let Some(out) = pipeline::run(&self.inner.q.pipeline.pre, row)? {
            self.inner.emit(ctx, &out, None, ts)?;
        }
        Ok(())
    }

    fn process_record(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Tagged>) -> Result<()> {
        let right = r.value.right;
        let ts = r.timestamp;
        let original_key = r.value.key.clone().unwrap_or(r.key.clone());
        self.stream_time = self.stream_time.max(ts);
        let (row, present) = self.side_row(
            right,
            original_key.as_deref(),
            r.value.value.as_deref(),
            &r.headers,
            ts,
            ctx,
        )?;
        if self.spec().foreign_key {
            let jk = self.join_key(right, &row)?;
            return self.foreign_key_join(ctx, &r, row, jk, present);
        }
        let Some(jk) = self.join_key(right, &row)? else {
            return Ok(());
        };
        let spec = self.spec().clone();
        match (spec.left.kind, spec.right.kind) {
            (SourceKind::Stream, SourceKind::Table) => {
                if right {
                    let v = present.then(|| encode_stored(&jk, ts, &row));
                    ctx.put_raw(RIGHT_STORE, jk.as_bytes(), v.as_deref());
                    return Ok(());
                }
                if !present {
                    return Ok(());
                }
                let table = ctx
                    .get_raw(RIGHT_STORE, jk.as_bytes())
                    .map(|b| decode_stored(&b, &row_types(&spec.right)))
                    .transpose()?;
                if table.is_none() && spec.join_type == JoinType::Inner {
                    return Ok(());
                }
                let joined = self.joined(Some(&row), table.as_ref().map(|t| &t.row), ts, ctx);
                self.forward(ctx, joined, ts)
            }
            (SourceKind::Table, SourceKind::Table) => {
                self.table_table(ctx, &spec, right, &jk, present.then_some(row), ts)
            }
            _ => {
                if present {
                    self.stream_stream(ctx, &spec, right, &jk, row, ts)?;
                }
                Ok(())
            }
        }
    }

    fn table_table(
        &mut self,
        ctx: &mut Ctx<'_>,
        spec: &JoinSpec,
        right: bool,
        jk: &str,
        row: Option<Row>,
        ts: i64,
    ) -> Result<()> {
        let store = if right { RIGHT_STORE } else { LEFT_STORE };
        let v = row.as_ref().map(|r| encode_stored(jk, ts, r));
        ctx.put_raw(store, jk.as_bytes(), v.as_deref());
        let l = ctx
            .get_raw(LEFT_STORE, jk.as_bytes())
            .map(|b| decode_stored(&b, &row_types(&spec.left)))
            .transpose()?;
        let r = ctx
            .get_raw(RIGHT_STORE, jk.as_bytes())
            .map(|b| decode_stored(&b, &row_types(&spec.right)))
            .transpose()?;
        let exists = match spec.join_type {
            JoinType::Inner => l.is_some() && r.is_some(),
            JoinType::Left => l.is_some(),
            JoinType::Outer => l.is_some() || r.is_some(),
        };
        let out_ts = [l.as_ref().map(|s| s.ts), r.as_ref().map(|s| s.ts), Some(ts)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(ts);
        let out = if exists {
            let joined = self.joined(
                l.as_ref().map(|s| &s.row),
                r.as_ref().map(|s| &s.row),
                out_ts,
                ctx,
            );
            pipeline::run(&self.inner.q.pipeline.pre, joined)?
        } else {
            None
        };
        let was = ctx.get_raw(EMITTED_STORE, jk.as_bytes()).is_some();
        match out {
            Some(out) => {
                ctx.put_raw(EMITTED_STORE, jk.as_bytes(), Some(&[1]));
                self.inner.emit(ctx, &out, None, out_ts)
            }
            None if was => {
                ctx.put_raw(EMITTED_STORE, jk.as_bytes(), None);
                let key: Value = serde_json::from_str(jk).map_err(err)?;
                let key_col = self
                    .inner
                    .q
                    .sink
                    .key_columns()
                    .next()
                    .map(|c| c.sql_type.clone())
                    .unwrap_or(SqlType::String);
                self.inner
                    .emit_tombstone(ctx, &vec![json_to_scalar(&key, &key_col)?], None, out_ts)
            }
            None => Ok(()),
        }
    }

    fn stream_stream(
        &mut self,
        ctx: &mut Ctx<'_>,
        spec: &JoinSpec,
        right: bool,
        jk: &str,
        row: Row,
        ts: i64,
    ) -> Result<()> {
        let w = spec.within.unwrap_or(crate::parser::ast::Within {
            before_ms: 0,
            after_ms: 0,
            grace_ms: None,
        });
        let (own, other) = if right {
            (RIGHT_STORE, LEFT_STORE)
        } else {
            (LEFT_STORE, RIGHT_STORE)
        };
        let (other_src, own_src) = if right {
            (&spec.left, &spec.right)
        } else {
            (&spec.right, &spec.left)
        };
        // Left record at t joins right records in [t - before, t + after]; a right
        // record at t joins left records in [t - after, t + before].
        let (lo, hi) = if right {
            (ts - w.after_ms, ts + w.before_ms)
        } else {
            (ts - w.before_ms, ts + w.after_ms)
        };
        let bk = buffer_key(ts, ctx.partition(), ctx.offset());
        ctx.put_raw(own, &bk, Some(&encode_stored(jk, ts, &row)));
        let mut matched = false;
        let hi_key = (hi.saturating_add(1)).to_be_bytes();
        for (k, v) in ctx.range_raw(other, &lo.max(0).to_be_bytes(), &hi_key) {
            let s = decode_stored(&v, &row_types(other_src))?;
            if s.key != jk {
                continue;
            }
            matched = true;
            // The other record no longer waits for a NULL-padded result.
            ctx.put_raw(PENDING_STORE, &pending_key(!right, &k), None);
            let (l, r) = if right {
                (&s.row, &row)
            } else {
                (&row, &s.row)
            };
            let out_ts = ts.max(s.ts);
            let joined = self.joined(Some(l), Some(r), out_ts, ctx);
            self.forward(ctx, joined, out_ts)?;
        }
        let outer_side = !right || spec.join_type == JoinType::Outer;
        if !matched && spec.join_type != JoinType::Inner && outer_side {
            if w.grace_ms.is_some() {
                ctx.put_raw(
                    PENDING_STORE,
                    &pending_key(right, &bk),
                    Some(&encode_stored(jk, ts, &row)),
                );
            } else {
                let joined = if right {
                    self.joined(None, Some(&row), ts, ctx)
                } else {
                    self.joined(Some(&row), None, ts, ctx)
                };
                self.forward(ctx, joined, ts)?;
            }
        }
        let _ = own_src;
        self.flush_pending(ctx, spec, &w)?;
        // Forget what no future record can join.
        let retention = w.before_ms + w.after_ms + w.grace_ms.unwrap_or(DEFAULT_RETENTION_MS);
        let expired = self.stream_time.saturating_sub(retention);
        if expired > 0 {
            for store in [LEFT_STORE, RIGHT_STORE] {
                for (k, _) in ctx.range_raw(store, &0i64.to_be_bytes(), &expired.to_be_bytes()) {
                    ctx.put_raw(store, &k, None);
                }
            }
        }
        Ok(())
    }

    /// With a GRACE PERIOD, unmatched LEFT/OUTER rows wait until their window closed.
    fn flush_pending(
        &mut self,
        ctx: &mut Ctx<'_>,
        spec: &JoinSpec,
        w: &crate::parser::ast::Within,
    ) -> Result<()> {
        let Some(grace) = w.grace_ms else {
            return Ok(());
        };
        for side in [false, true] {
            let close = if side { w.before_ms } else { w.after_ms } + grace;
            let limit = self.stream_time.saturating_sub(close);
            if limit <= 0 {
                continue;
            }
            let (from, to) = (
                pending_key(side, &0i64.to_be_bytes()),
                pending_key(side, &limit.to_be_bytes()),
            );
            for (k, v) in ctx.range_raw(PENDING_STORE, &from, &to) {
                ctx.put_raw(PENDING_STORE, &k, None);
                let src = if side { &spec.right } else { &spec.left };
                let s = decode_stored(&v, &row_types(src))?;
                let joined = if side {
                    self.joined(None, Some(&s.row), s.ts, ctx)
                } else {
                    self.joined(Some(&s.row), None, s.ts, ctx)
                };
                self.forward(ctx, joined, s.ts)?;
            }
        }
        Ok(())
    }
}

fn pending_key(right: bool, buffer_key: &[u8]) -> Vec<u8> {
    let mut k = vec![u8::from(right)];
    k.extend_from_slice(buffer_key);
    k
}

impl Processor<Bytes, Tagged, Bytes, Bytes> for JoinProcessor {
    fn process(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Tagged>) {
        let (partition, offset) = (ctx.partition(), ctx.offset());
        if let Err(e) = self.process_record(ctx, r) {
            tracing::warn!(query = %self.inner.q.query_id, partition, offset, "record skipped: {e}");
        }
    }
}
