//! A DataFusion physical plan, read as a push pipeline for one record at a time:
//! the filters and projections below the aggregate, the aggregate's group and
//! argument expressions with its accumulators, and the filters (HAVING) and
//! projections above it. DataFusion's own aggregate operator would wait for the end of
//! its input; a continuous query instead keeps each group's accumulator state in a
//! state store and evaluates these same expressions per record.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::error::{Error, Result};
use crate::format::Row;

pub type Expr = Arc<dyn PhysicalExpr>;

#[derive(Debug, Clone)]
pub enum Stage {
    Filter {
        predicate: Expr,
        projection: Option<Vec<usize>>,
        input: SchemaRef,
    },
    Project {
        exprs: Vec<Expr>,
        input: SchemaRef,
    },
    /// A table function (EXPLODE): one row per element of the `lists` columns, zipped,
    /// the shorter ones padded with NULL; a NULL or empty list gives no row.
    Unnest {
        lists: Vec<usize>,
    },
}

#[derive(Debug, Clone)]
pub struct AggPlan {
    pub input: SchemaRef,
    pub groups: Vec<Expr>,
    pub aggs: Vec<Arc<AggregateFunctionExpr>>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The schema records enter with (the source's, pseudo columns included).
    pub input: SchemaRef,
    pub pre: Vec<Stage>,
    pub agg: Option<AggPlan>,
    pub post: Vec<Stage>,
    pub output: SchemaRef,
}

impl Pipeline {
    /// `source` is the schema records arrive with; the plan's scan may read a
    /// projection of it (DataFusion pushes projections into the scan).
    pub fn from_plan(plan: Arc<dyn ExecutionPlan>, source: SchemaRef) -> Result<Pipeline> {
        let output = plan.schema();
        let mut chain = Vec::new();
        let mut node = plan;
        loop {
            let children = node.children();
            match children.len() {
                0 => break,
                1 => {
                    let child = children[0].clone();
                    chain.push(node);
                    node = child;
                }
                _ => {
                    return Err(Error::Engine(format!(
                        "a continuous query cannot run the operator {}",
                        node.name()
                    )))
                }
            }
        }
        let scanned = node.schema();
        chain.reverse();
        let mut pre = Vec::new();
        if scanned.fields() != source.fields() {
            let exprs = scanned
                .fields()
                .iter()
                .map(|f| {
                    let i = source
                        .index_of(f.name())
                        .map_err(|e| Error::Engine(e.to_string()))?;
                    Ok(Arc::new(Column::new(f.name(), i)) as Expr)
                })
                .collect::<Result<Vec<_>>>()?;
            pre.push(Stage::Project {
                exprs,
                input: source.clone(),
            });
        }
        let mut p = Pipeline {
            input: source,
            pre,
            agg: None,
            post: Vec::new(),
            output,
        };
        for n in chain {
            let stage = if let Some(f) = n.downcast_ref::<FilterExec>() {
                Some(Stage::Filter {
                    predicate: f.predicate().clone(),
                    projection: f.projection().as_ref().map(|p| p.to_vec()),
                    input: f.input().schema(),
                })
            } else if let Some(pr) = n.downcast_ref::<ProjectionExec>() {
                Some(Stage::Project {
                    exprs: pr.expr().iter().map(|e| e.expr.clone()).collect(),
                    input: pr.input().schema(),
                })
            } else if let Some(u) = n.downcast_ref::<UnnestExec>() {
                let one_to_one = u.struct_column_indices().is_empty()
                    && u.list_column_indices().iter().all(|l| l.depth == 1)
                    && u.schema().fields().len() == u.input().schema().fields().len();
                if !one_to_one {
                    return Err(Error::Engine(
                        "a continuous query cannot unnest structs or nested lists".into(),
                    ));
                }
                Some(Stage::Unnest {
                    lists: u
                        .list_column_indices()
                        .iter()
                        .map(|l| l.index_in_input_schema)
                        .collect(),
                })
            } else if let Some(a) = n.downcast_ref::<AggregateExec>() {
                let finishes_partial = matches!(
                    a.mode(),
                    AggregateMode::Final | AggregateMode::FinalPartitioned
                );
                if p.agg.is_some() && !finishes_partial {
                    return Err(Error::Engine(
                        "a continuous query cannot run an aggregation over an aggregation".into(),
                    ));
                }
                if p.agg.is_none() {
                    p.agg = Some(AggPlan {
                        input: a.input().schema(),
                        groups: a
                            .group_expr()
                            .expr()
                            .iter()
                            .map(|(e, _)| e.clone())
                            .collect(),
                        aggs: a.aggr_expr().to_vec(),
                    });
                }
                // A Final aggregate over a Partial one is the same aggregate.
                None
            } else if matches!(
                n.name(),
                "CoalesceBatchesExec"
                    | "RepartitionExec"
                    | "CoalescePartitionsExec"
                    | "GlobalLimitExec"
                    | "LocalLimitExec"
                    | "CooperativeExec"
                    | "SortPreservingMergeExec"
            ) {
                None
            } else {
                return Err(Error::Engine(format!(
                    "a continuous query cannot run the operator {}",
                    n.name()
                )));
            };
            if let Some(stage) = stage {
                if p.agg.is_some() {
                    p.post.push(stage)
                } else {
                    p.pre.push(stage)
                }
            }
        }
        Ok(p)
    }
}

/// One row as a one-row batch of `schema`.
pub fn batch(schema: &SchemaRef, row: &[ScalarValue]) -> Result<RecordBatch> {
    let mut cols = Vec::with_capacity(row.len());
    for (f, v) in schema.fields().iter().zip(row) {
        let mut a = v.to_array_of_size(1)?;
        if a.data_type() != f.data_type() {
            a = cast(&a, f.data_type()).map_err(|e| Error::Engine(e.to_string()))?;
        }
        cols.push(a);
    }
    // A row of no columns (`SELECT 1, COUNT(*) ... GROUP BY 1` reads none) is still a row.
    let one_row =
        datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(1));
    RecordBatch::try_new_with_options(schema.clone(), cols, &one_row)
        .map_err(|e| Error::Engine(e.to_string()))
}

/// Evaluates an expression; a function that panics on its input (a library bug, e.g.
/// an allocation sized by a negative length) fails this evaluation only, as an error,
/// instead of the stream thread.
pub fn evaluate(e: &Expr, b: &RecordBatch) -> datafusion::common::Result<ColumnarValue> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.evaluate(b))).unwrap_or_else(
        |panic| {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            datafusion::common::exec_err!("{e} failed: {why}")
        },
    )
}

/// Evaluates an expression on a one-row batch; an error (division by zero, a failed
/// cast) is NULL, as ksqlDB makes it.
pub fn eval(e: &Expr, b: &RecordBatch) -> ScalarValue {
    let dt = e.data_type(&b.schema()).ok();
    let v = evaluate(e, b)
        .and_then(|c| c.into_array(1))
        .and_then(|a| ScalarValue::try_from_array(&a, 0));
    match (v, dt) {
        (Ok(v), _) => v,
        (Err(_), Some(dt)) => ScalarValue::try_from(&dt).unwrap_or(ScalarValue::Null),
        (Err(_), None) => ScalarValue::Null,
    }
}

/// The predicate's verdict; an error or NULL is false.
pub fn passes(e: &Expr, b: &RecordBatch) -> bool {
    evaluate(e, b)
        .and_then(|c| c.into_array(1))
        .ok()
        .and_then(|a| {
            a.as_any()
                .downcast_ref::<BooleanArray>()
                .map(|b| b.is_valid(0) && b.value(0))
        })
        .unwrap_or(false)
}

/// Runs filters and projections on a row; `None` when a filter drops it. A pipeline
/// with a table function, which can make several rows, goes through [`run_all`].
pub fn run(stages: &[Stage], row: Row) -> Result<Option<Row>> {
    let mut rows = run_all(stages, row)?;
    match rows.len() {
        0 | 1 => Ok(rows.pop()),
        _ => Err(Error::Engine(
            "a table function (EXPLODE) is not supported in this query".into(),
        )),
    }
}

/// Runs the stages on a row: the rows that come out (none when a filter drops it,
/// several after a table function).
pub fn run_all(stages: &[Stage], row: Row) -> Result<Vec<Row>> {
    let mut rows = vec![row];
    for s in stages {
        let mut next = Vec::with_capacity(rows.len());
        for mut row in rows {
            match s {
                Stage::Filter {
                    predicate,
                    projection,
                    input,
                } => {
                    let b = batch(input, &row)?;
                    if !passes(predicate, &b) {
                        continue;
                    }
                    if let Some(p) = projection {
                        row = p.iter().map(|i| row[*i].clone()).collect();
                    }
                    next.push(row);
                }
                Stage::Project { exprs, input } => {
                    let b = batch(input, &row)?;
                    next.push(exprs.iter().map(|e| eval(e, &b)).collect());
                }
                Stage::Unnest { lists } => unnest(&row, lists, &mut next)?,
            }
        }
        rows = next;
    }
    Ok(rows)
}

fn unnest(row: &Row, lists: &[usize], out: &mut Vec<Row>) -> Result<()> {
    let items = lists
        .iter()
        .map(|i| {
            crate::planner::functions::row::list_items(&row[*i])
                .map(Option::unwrap_or_default)
                .map_err(|e| Error::Engine(e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let n = items.iter().map(Vec::len).max().unwrap_or(0);
    for j in 0..n {
        let mut r = row.clone();
        for (i, list) in lists.iter().zip(&items) {
            r[*i] = list.get(j).cloned().unwrap_or(ScalarValue::Null);
        }
        out.push(r);
    }
    Ok(())
}
