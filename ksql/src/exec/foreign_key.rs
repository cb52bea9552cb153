//! Foreign-key table-table joins (ksqlDB's, on Kafka Streams' KIP-213 join): the left
//! table joins on an expression of its row, the right table on its PRIMARY KEY, and
//! the result is keyed by the left table's key.
//!
//! Both sides go through a repartition topic keyed alike — the left rows by their
//! foreign key, the right rows by their key — so that a left row and the right row it
//! references meet in one task, whatever the input topics' partition counts and
//! partitioners. The re-keying stage of the left side keeps each left row's last
//! value: when a row moves to another foreign key its old subscription is retracted
//! there; a deleted row carries its last value so that the join can key the
//! tombstone.
//!
//! The join task keeps the right rows by key and the left rows by (foreign key, left
//! key) — the subscriptions — plus, per left key, the foreign key it subscribes to:
//! - a left row joins the right row it references (LEFT JOIN: or NULLs); an inner
//!   join that lost its match emits a tombstone if the row existed before;
//! - a right row's update re-joins every subscribed left row (its deletion gives
//!   NULLs for a LEFT JOIN, tombstones for an inner join);
//! - a deleted left row always emits a tombstone, as Kafka's
//!   `SubscriptionSendProcessorSupplier` propagates the delete.
//!
//! A result carries the larger timestamp of the two rows behind it (KIP-258).

use runnel_streams::Record;

use super::compiled::TABLE_STORE;
use super::join::{
    decode_stored, encode_stored, row_types, JoinProcessor, Tagged, FOREIGN_KEY_STORE, LEFT_STORE,
    RIGHT_STORE,
};
use super::processor::{Bytes, Ctx};
use super::rekey::{Ctx as RekeyCtx, RekeyProcessor};
use crate::error::Result;
use crate::format::Row;
use crate::planner::join::JoinType;
use crate::planner::pipeline;

/// The repartition key of a left row whose foreign key is NULL: it joins nothing, any
/// task can emit its result.
const NULL_FOREIGN_KEY: &[u8] = b"null";

/// A subscription's store key: the foreign key, a separator no JSON text contains,
/// then the left key.
fn subscription(fk: &str, left_key: &[u8]) -> Vec<u8> {
    let mut k = fk.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(left_key);
    k
}

impl RekeyProcessor {
    /// The left table's stage: routes each update to its foreign key's task, and a
    /// retraction to the old one when the foreign key changed.
    pub(super) fn foreign_key(
        &mut self,
        ctx: &mut RekeyCtx<'_>,
        r: Record<Bytes, Bytes>,
    ) -> Result<()> {
        let ts = r.timestamp;
        let kb = r.key.clone().unwrap_or_default();
        let old = ctx.get_raw(TABLE_STORE, &kb);
        ctx.put_raw(TABLE_STORE, &kb, r.value.as_deref());
        let fk_of = |this: &Self, value: Option<&[u8]>, ctx: &RekeyCtx<'_>| -> Result<_> {
            match this.row_of(&r.key, value, &r.headers, ts, ctx)? {
                Some(row) => this.new_key(row),
                None => Ok(None),
            }
        };
        let old_fk = fk_of(self, old.as_deref(), ctx)?;
        let new_fk = fk_of(self, r.value.as_deref(), ctx)?;
        let send = |ctx: &mut RekeyCtx<'_>, to: Vec<u8>, tagged: Tagged| {
            let mut out = Record::new(Some(to), tagged, ts);
            out.headers = r.headers.clone();
            ctx.forward(out);
        };
        let tagged = |value: Bytes, retract: bool, old: Option<Vec<u8>>| Tagged {
            right: false,
            key: Some(r.key.clone()),
            value,
            retract,
            old,
        };
        let Some(old_value) = old else {
            if r.value.is_some() {
                let to = new_fk.unwrap_or_else(|| NULL_FOREIGN_KEY.to_vec());
                send(ctx, to, tagged(r.value.clone(), false, None));
            }
            return Ok(());
        };
        if r.value.is_none() {
            // Deleted: the task holding the subscription drops it and emits the
            // tombstone, keyed from the row's last value.
            let to = old_fk.unwrap_or_else(|| NULL_FOREIGN_KEY.to_vec());
            send(ctx, to, tagged(None, false, Some(old_value)));
            return Ok(());
        }
        if let Some(ofk) = old_fk.filter(|o| Some(o) != new_fk.as_ref()) {
            send(ctx, ofk, tagged(None, true, None));
        }
        let to = new_fk.unwrap_or_else(|| NULL_FOREIGN_KEY.to_vec());
        send(ctx, to, tagged(r.value.clone(), false, Some(old_value)));
        Ok(())
    }
}

impl JoinProcessor {
    pub(super) fn foreign_key_join(
        &mut self,
        ctx: &mut Ctx<'_>,
        r: &Record<Bytes, Tagged>,
        row: Row,
        jk: Option<String>,
        present: bool,
    ) -> Result<()> {
        let ts = r.timestamp;
        if r.value.right {
            return match jk {
                Some(jk) => self.right_update(ctx, &jk, present.then_some(row), ts),
                None => Ok(()),
            };
        }
        let left_key = r.value.key.clone().flatten().unwrap_or_default();
        // This task's subscription of the row, if any, ends: the row moved, changed or
        // was deleted.
        if let Some(fk) = ctx.get_raw(FOREIGN_KEY_STORE, &left_key) {
            let fk = String::from_utf8_lossy(&fk).to_string();
            ctx.put_raw(LEFT_STORE, &subscription(&fk, &left_key), None);
            ctx.put_raw(FOREIGN_KEY_STORE, &left_key, None);
        }
        if r.value.retract {
            return Ok(());
        }
        if !present {
            let Some(old) = &r.value.old else {
                return Ok(());
            };
            let (old_row, _) =
                self.side_row(false, Some(&left_key), Some(old), &r.headers, ts, ctx)?;
            return self.tombstone(ctx, &old_row, ts);
        }
        let joined_right = match &jk {
            Some(fk) => {
                let stored = encode_stored(fk, ts, &row);
                ctx.put_raw(LEFT_STORE, &subscription(fk, &left_key), Some(&stored));
                ctx.put_raw(FOREIGN_KEY_STORE, &left_key, Some(fk.as_bytes()));
                let types = row_types(&self.spec().right);
                ctx.get_raw(RIGHT_STORE, fk.as_bytes())
                    .map(|b| decode_stored(&b, &types))
                    .transpose()?
            }
            None => None,
        };
        match joined_right {
            Some(right) => {
                let out_ts = ts.max(right.ts);
                self.result(ctx, &row, Some(&right.row), out_ts)
            }
            None if self.spec().join_type == JoinType::Left => self.result(ctx, &row, None, ts),
            // An inner join whose row no longer matches leaves the result.
            None if r.value.old.is_some() => self.tombstone(ctx, &row, ts),
            None => Ok(()),
        }
    }

    /// A right row changed: every left row subscribed to it is joined again.
    fn right_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        jk: &str,
        row: Option<Row>,
        ts: i64,
    ) -> Result<()> {
        let existed = ctx.get_raw(RIGHT_STORE, jk.as_bytes()).is_some();
        let stored = row.as_ref().map(|r| encode_stored(jk, ts, r));
        ctx.put_raw(RIGHT_STORE, jk.as_bytes(), stored.as_deref());
        if !existed && row.is_none() {
            return Ok(());
        }
        let from = subscription(jk, &[]);
        let mut to = jk.as_bytes().to_vec();
        to.push(1);
        let types = row_types(&self.spec().left);
        let left_join = self.spec().join_type == JoinType::Left;
        for (_, v) in ctx.range_raw(LEFT_STORE, &from, &to) {
            let left = decode_stored(&v, &types)?;
            let out_ts = ts.max(left.ts);
            match &row {
                Some(right) => self.result(ctx, &left.row, Some(right), out_ts)?,
                None if left_join => self.result(ctx, &left.row, None, out_ts)?,
                None => self.tombstone(ctx, &left.row, out_ts)?,
            }
        }
        Ok(())
    }

    /// Emits the joined row of `left` and `right` (NULLs without a right row).
    fn result(
        &mut self,
        ctx: &mut Ctx<'_>,
        left: &Row,
        right: Option<&Row>,
        ts: i64,
    ) -> Result<()> {
        let joined = self.joined(Some(left), right, ts, ctx);
        if let Some(out) = pipeline::run(&self.inner.q.pipeline.pre, joined)? {
            self.inner.emit(ctx, &out, None, ts)?;
        }
        Ok(())
    }

    /// Emits the tombstone of `left`'s result, its key computed from the row.
    fn tombstone(&mut self, ctx: &mut Ctx<'_>, left: &Row, ts: i64) -> Result<()> {
        let joined = self.joined(Some(left), None, ts, ctx);
        // The key columns come from the left row; a WHERE clause must not hide them.
        let project = self
            .inner
            .q
            .pipeline
            .pre
            .iter()
            .filter(|s| !matches!(s, pipeline::Stage::Filter { .. }))
            .cloned()
            .collect::<Vec<_>>();
        if let Some(out) = pipeline::run(&project, joined)? {
            let key: Row = self
                .inner
                .q
                .key_idx
                .iter()
                .map(|i| out[*i].clone())
                .collect();
            self.inner.emit_tombstone(ctx, &key, None, ts)?;
        }
        Ok(())
    }
}
