//! The first stage of a query whose records must meet by another key than the one
//! they were written with (GROUP BY a non-key expression, a join on a stream's value
//! column): each record is re-keyed and written through a repartition topic, carrying
//! its original key, so that equal keys reach the same task. A table's update becomes
//! a retraction of the old row (to the old group's partition) and an addition of the
//! new one, as Kafka Streams' KTable.groupBy does.

use std::sync::Arc;

use runnel_streams::{Processor, ProcessorContext, Record};

use super::compiled::{Compiled, TABLE_STORE};
use super::join::Tagged;
use super::processor::{source_row, Bytes, QueryProcessor};
use crate::error::Result;
use crate::format::{self, scalar_to_json, Row};
use crate::parser::ast::SourceKind;
use crate::planner::pipeline;

pub(super) type Ctx<'a> = ProcessorContext<'a, Bytes, Tagged>;

#[derive(Clone, Copy)]
pub enum Rekey {
    /// By the aggregate's GROUP BY expressions.
    Group,
    /// By the join's ON expression of the left side.
    JoinLeft,
    /// A foreign-key join's left table by its foreign key (see `foreign_key`).
    ForeignKey,
    /// A foreign-key join's right table by its key, encoded as the left side's.
    JoinRight,
}

pub struct RekeyProcessor {
    pub(super) q: Arc<Compiled>,
    by: Rekey,
}

impl RekeyProcessor {
    pub fn new(q: Arc<Compiled>, by: Rekey) -> RekeyProcessor {
        RekeyProcessor { q, by }
    }

    fn source(&self) -> &crate::catalog::Source {
        match (self.by, &self.q.join) {
            (Rekey::JoinLeft | Rekey::ForeignKey, Some(j)) => &j.left,
            (Rekey::JoinRight, Some(j)) => &j.right,
            _ => &self.q.source,
        }
    }

    /// The new key of a row: JSON of the grouping (or join) values; `None` drops it
    /// (a NULL key, or a row the WHERE clause filters out).
    pub(super) fn new_key(&self, row: Row) -> Result<Option<Vec<u8>>> {
        let values: Row = match self.by {
            Rekey::JoinLeft | Rekey::ForeignKey | Rekey::JoinRight => {
                let Some(j) = &self.q.join else {
                    return Ok(None);
                };
                let key = if matches!(self.by, Rekey::JoinRight) {
                    &j.right_key
                } else {
                    &j.left_key
                };
                match pipeline::run(&key.pre, row)? {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            Rekey::Group => {
                let Some(agg) = &self.q.pipeline.agg else {
                    return Ok(None);
                };
                let Some(input) = pipeline::run(&self.q.pipeline.pre, row)? else {
                    return Ok(None);
                };
                let b = pipeline::batch(&agg.input, &input)?;
                let n = agg.groups.len() - if self.q.window.is_some() { 2 } else { 0 };
                agg.groups[..n]
                    .iter()
                    .map(|g| pipeline::eval(g, &b))
                    .collect()
            }
        };
        if values.iter().any(|v| v.is_null()) {
            return Ok(None);
        }
        let json: Vec<_> = values.iter().map(scalar_to_json).collect();
        Ok(Some(serde_json::to_vec(&json).unwrap_or_default()))
    }

    pub(super) fn row_of(
        &self,
        key: &Bytes,
        value: Option<&[u8]>,
        headers: &format::Headers,
        ts: i64,
        ctx: &Ctx<'_>,
    ) -> Result<Option<Row>> {
        let src = self.source();
        let keys: Vec<_> = src.key_columns().collect();
        let values: Vec<_> = src.value_columns().collect();
        let (k, window) = format::decode_key(src.key_format, key.as_deref(), &keys, src.windowed)?;
        let Some(v) =
            format::decode_value(src.value_format, value, &values, src.wrap_single_value)?
        else {
            return Ok(None);
        };
        let windowed =
            matches!(self.by, Rekey::Group) && (src.windowed.is_some() || self.q.window.is_some());
        let meta = (ts, ctx.partition(), ctx.offset());
        Ok(Some(source_row(
            src,
            &k,
            Some(&v),
            headers,
            meta,
            windowed.then_some(window.unwrap_or((0, 0))),
        )))
    }

    fn process_record(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Bytes>) -> Result<()> {
        if self.source().kind == SourceKind::Table && r.key.is_none() {
            // As Kafka Streams' KTableSource: a table record without a key is skipped.
            return Err(crate::error::Error::Serde(
                "a table record without a key".into(),
            ));
        }
        let ts = match self.by {
            Rekey::Group => {
                let helper = QueryProcessor::new(self.q.clone());
                let src = self.source();
                let values: Vec<_> = src.value_columns().collect();
                let v = format::decode_value(
                    src.value_format,
                    r.value.as_deref(),
                    &values,
                    src.wrap_single_value,
                )
                .ok()
                .flatten();
                helper.event_time(v.as_ref(), r.timestamp)
            }
            Rekey::JoinLeft => r.timestamp,
            Rekey::ForeignKey => return self.foreign_key(ctx, r),
            Rekey::JoinRight => return self.join_right(ctx, r),
        };
        let send =
            |ctx: &mut Ctx<'_>, k: Vec<u8>, value: Bytes, retract: bool, old: Option<Vec<u8>>| {
                let tagged = Tagged {
                    right: false,
                    key: Some(r.key.clone()),
                    value,
                    retract,
                    old,
                };
                let mut out = Record::new(Some(k), tagged, ts);
                out.headers = r.headers.clone();
                ctx.forward(out);
            };
        let new_row = self.row_of(&r.key, r.value.as_deref(), &r.headers, ts, ctx)?;
        let new_key = match new_row {
            Some(row) => self.new_key(row)?,
            None => None,
        };
        if self.source().kind == SourceKind::Table && matches!(self.by, Rekey::Group) {
            let kb = r.key.clone().unwrap_or_default();
            let old = ctx.get_raw(TABLE_STORE, &kb);
            ctx.put_raw(TABLE_STORE, &kb, r.value.as_deref());
            if let Some(old) = old {
                // The replaced row's headers are not kept: it is read with the new ones.
                let old_key = match self.row_of(&r.key, Some(&old), &r.headers, ts, ctx)? {
                    Some(row) => self.new_key(row)?,
                    None => None,
                };
                match (old_key, &new_key) {
                    // The update stays in its group: one change.
                    (Some(ok), Some(nk)) if &ok == nk => {
                        send(ctx, ok, r.value.clone(), false, Some(old));
                        return Ok(());
                    }
                    (Some(ok), _) => send(ctx, ok, Some(old), true, None),
                    (None, _) => {}
                }
            }
        }
        if let Some(k) = new_key {
            send(ctx, k, r.value.clone(), false, None);
        }
        Ok(())
    }
}

impl RekeyProcessor {
    /// A join's right side keyed as the left side's join keys, so both reach the same
    /// task. A record without a value (a table's deletion) goes through as well.
    pub(super) fn join_right(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Bytes>) -> Result<()> {
        let Some(j) = &self.q.join else {
            return Ok(());
        };
        let src = &j.right;
        let keys: Vec<_> = src.key_columns().collect();
        let values: Vec<_> = src.value_columns().collect();
        let (k, _) = format::decode_key(src.key_format, r.key.as_deref(), &keys, None)?;
        let v = format::decode_value(
            src.value_format,
            r.value.as_deref(),
            &values,
            src.wrap_single_value,
        )?;
        let meta = (r.timestamp, ctx.partition(), ctx.offset());
        let row = source_row(src, &k, v.as_ref(), &r.headers, meta, None);
        let Some(to) = self.new_key(row)? else {
            return Ok(());
        };
        let tagged = Tagged {
            right: true,
            key: Some(r.key.clone()),
            value: r.value.clone(),
            retract: false,
            old: None,
        };
        let headers = r.headers;
        ctx.forward(Record {
            headers,
            ..Record::new(Some(to), tagged, r.timestamp)
        });
        Ok(())
    }
}

impl Processor<Bytes, Bytes, Bytes, Tagged> for RekeyProcessor {
    fn process(&mut self, ctx: &mut Ctx<'_>, r: Record<Bytes, Bytes>) {
        let (partition, offset) = (ctx.partition(), ctx.offset());
        if let Err(e) = self.process_record(ctx, r) {
            tracing::warn!(query = %self.q.query_id, partition, offset, "record skipped: {e}");
        }
    }
}
