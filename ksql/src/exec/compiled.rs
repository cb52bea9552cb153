//! A persistent query ready to run: the plan, the source's and sink's formats, and
//! where each output column goes (key or value).

use std::sync::Arc;

use crate::catalog::{Column, Source};
use crate::error::{Error, Result};
use crate::parser::ast::{WindowKind, WindowSpec};
use crate::planner::pipeline::Pipeline;
use crate::planner::QueryPlan;

#[derive(Debug)]
pub struct Compiled {
    pub query_id: String,
    pub join: Option<crate::planner::join::JoinSpec>,
    /// Aggregation after a repartition (see `rekey`).
    pub repartition: bool,
    pub source: Source,
    pub pipeline: Pipeline,
    pub sink: Source,
    /// Output row positions of the sink's key columns and value columns, in the
    /// sink's column order.
    pub key_idx: Vec<usize>,
    pub value_idx: Vec<usize>,
    pub window: Option<WindowSpec>,
    pub emit_final: bool,
    /// Position of the `TIMESTAMP=` column in the source row.
    pub ts_col: Option<usize>,
    /// `TIMESTAMP_FORMAT` in chrono's syntax, and whether it has a zone.
    pub ts_format: Option<(String, bool)>,
    /// Position of the sink's `TIMESTAMP=` column in the output row, and its
    /// `TIMESTAMP_FORMAT`: the output record's timestamp comes from it.
    pub sink_ts_col: Option<usize>,
    pub sink_ts_format: Option<(String, bool)>,
    /// Aggregates whose result over no rows is 0, not NULL (SUM over a table, as
    /// ksqlDB's undo-able SUM starts from 0).
    pub zero_when_empty: Vec<bool>,
}

pub const AGG_STORE: &str = "Aggregate-Materialize";
pub const TABLE_STORE: &str = "KsqlTopic-Reduce";
/// Open windows by end time: closed ones are emitted (EMIT FINAL) and dropped.
pub const FINAL_STORE: &str = "Window-Index";

impl Compiled {
    pub fn new(query_id: &str, plan: &QueryPlan, sink: &Source) -> Result<Arc<Compiled>> {
        let position = |c: &Column| -> Result<usize> {
            plan.columns
                .iter()
                .position(|o| o.name == c.name)
                .ok_or_else(|| {
                    Error::semantic(format!(
                        "Column {} of {} is not produced by the query",
                        c.name, sink.name
                    ))
                })
        };
        let key_idx = sink
            .key_columns()
            .map(position)
            .collect::<Result<Vec<_>>>()?;
        let value_idx = sink
            .value_columns()
            .map(position)
            .collect::<Result<Vec<_>>>()?;
        let ts_col = plan
            .source
            .timestamp
            .as_ref()
            .and_then(|t| plan.source.columns.iter().position(|c| &c.name == t));
        let zero_when_empty = plan
            .pipeline
            .agg
            .as_ref()
            .map(|a| {
                a.aggs
                    .iter()
                    .map(|f| {
                        plan.source.kind == crate::parser::ast::SourceKind::Table
                            && f.fun().name().eq_ignore_ascii_case("sum")
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Arc::new(Compiled {
            query_id: query_id.to_string(),
            join: plan.join.clone(),
            repartition: plan.repartition,
            source: plan.source.clone(),
            pipeline: plan.pipeline.clone(),
            sink: sink.clone(),
            key_idx,
            value_idx,
            window: plan.window,
            emit_final: plan.emit == Some(crate::parser::ast::Emit::Final),
            ts_col,
            ts_format: plan
                .source
                .timestamp_format
                .as_deref()
                .map(crate::format::timestamp::java_to_chrono)
                .transpose()?,
            zero_when_empty,
            sink_ts_col: sink
                .timestamp
                .as_ref()
                .and_then(|t| plan.columns.iter().position(|c| &c.name == t)),
            sink_ts_format: sink
                .timestamp_format
                .as_deref()
                .map(crate::format::timestamp::java_to_chrono)
                .transpose()?,
        }))
    }

    pub fn window_kind(&self) -> Option<WindowKind> {
        self.window.map(|w| w.kind)
    }

    /// The stores of the re-keying stage (a table's previous rows).
    pub fn rekey_stores(&self) -> Vec<&'static str> {
        if self.repartition && self.source.kind == crate::parser::ast::SourceKind::Table {
            vec![TABLE_STORE]
        } else {
            Vec::new()
        }
    }

    pub fn stores(&self) -> Vec<&'static str> {
        let mut s = Vec::new();
        if self.pipeline.agg.is_some() {
            s.push(AGG_STORE);
        }
        if self.join.is_some() {
            use super::join::*;
            s.extend([LEFT_STORE, RIGHT_STORE, PENDING_STORE, EMITTED_STORE]);
            if self.join.as_ref().is_some_and(|j| j.foreign_key) {
                s.push(FOREIGN_KEY_STORE);
            }
        } else if self.source.kind == crate::parser::ast::SourceKind::Table && !self.repartition {
            s.push(TABLE_STORE);
        }
        if self.window.is_some() {
            s.push(FINAL_STORE);
        }
        s
    }
}
