//! Planning a two-source join. The join itself is our operator (DataFusion's joins
//! would wait for the end of their inputs); everything after it is planned by
//! DataFusion over the *joined row*: a virtual source whose columns are the left
//! source's and the right source's, named `ALIAS.COLUMN`. Column references in the
//! query are rewritten to those names, ON's two sides become key expressions planned
//! over each source, and the rest is the single-source planner's.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, Expr as SqlExpr, Ident, JoinConstraint, JoinOperator,
    ObjectName, ObjectNamePart, SetExpr, TableFactor, TableWithJoins,
};

use super::pipeline::Pipeline;
use super::rewrite::{self, FromSource};
use super::{format, from_sources, plan_over, session, source_schema, QueryPlan};
use crate::catalog::{
    Catalog, Column, Source, ROWOFFSET, ROWPARTITION, ROWTIME, WINDOWEND, WINDOWSTART,
};
use crate::error::{Error, Result};
use crate::parser::ast::{KsqlQuery, SourceKind, Within};
use crate::parser::types::SqlType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinType {
    Inner,
    Left,
    Outer,
}

#[derive(Debug, Clone)]
pub struct JoinSpec {
    pub join_type: JoinType,
    pub left: Source,
    pub right: Source,
    pub within: Option<Within>,
    /// The ON expression of each side, planned over that side's row.
    pub left_key: Pipeline,
    pub right_key: Pipeline,
    /// The left side joins on something else than its key: it is repartitioned.
    pub left_rekey: bool,
    /// The right side (a stream) joins on something else than its key.
    pub right_rekey: bool,
    /// A table-table join on a column of the left table and the right table's
    /// PRIMARY KEY: many left rows join one right row, the result is keyed by the
    /// left table's key (Kafka Streams' foreign-key join, KIP-213).
    pub foreign_key: bool,
}

pub const JOINED: &str = "KSQL_JOINED";

impl JoinType {
    /// As ksqlDB's messages name the join.
    fn words(self) -> &'static str {
        match self {
            JoinType::Inner => "[INNER] JOIN",
            JoinType::Left => "LEFT [OUTER] JOIN",
            JoinType::Outer => "[FULL] OUTER JOIN",
        }
    }
}

/// Which output columns make the key of a join's result.
#[derive(Debug, Clone)]
pub enum JoinKeys {
    /// Any one of the join expressions (ksqlDB keys an equi-join by its join key).
    AnyOf(Vec<String>),
    /// All of these: a foreign-key join is keyed by the left table's PRIMARY KEY.
    AllOf(Vec<String>),
}

/// `e` with every column qualified by the source it belongs to, as ksqlDB prints a
/// join condition.
fn qualified_by_side(e: &SqlExpr, la: &str, l: &Source, ra: &str, r: &Source) -> SqlExpr {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let SqlExpr::Identifier(id) = x {
            let side = if l.column(&id.value).is_some() {
                Some(la)
            } else if r.column(&id.value).is_some() {
                Some(ra)
            } else {
                None
            };
            if let Some(alias) = side {
                *x = SqlExpr::CompoundIdentifier(vec![Ident::new(alias), id.clone()]);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    e
}

fn side_of(e: &SqlExpr, la: &str, ra: &str, l: &Source, r: &Source) -> Option<bool> {
    let mut left = false;
    let mut right = false;
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        match x {
            SqlExpr::CompoundIdentifier(parts) if parts.len() == 2 => {
                if parts[0].value == la {
                    left = true;
                } else if parts[0].value == ra {
                    right = true;
                }
            }
            SqlExpr::Identifier(id) => {
                left |= l.column(&id.value).is_some();
                right |= r.column(&id.value).is_some();
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    match (left, right) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Column references -> the joined row's `ALIAS.COLUMN` names.
fn qualify(e: &mut SqlExpr, sides: &[(&str, &Source)]) -> Result<()> {
    let mut err = None;
    let _ = visit_expressions_mut(e, |x| {
        let name = match x {
            SqlExpr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let (a, c) = (&parts[0].value, &parts[1].value);
                match sides.iter().find(|(alias, _)| alias == a) {
                    Some((_, s)) if s.column(c).is_some() => Some(format!("{a}.{c}")),
                    Some(_) if [ROWTIME, ROWPARTITION, ROWOFFSET].contains(&c.as_str()) => {
                        Some(c.clone())
                    }
                    Some(_) => {
                        err = Some(Error::semantic(format!(
                            "Column '{a}.{c}' cannot be resolved."
                        )));
                        None
                    }
                    None => {
                        err = Some(Error::semantic(format!(
                            "Source '{a}' is not part of the query: '{a}.{c}' cannot be resolved."
                        )));
                        None
                    }
                }
            }
            SqlExpr::Identifier(id) if id.quote_style.is_none() || !id.value.contains('.') => {
                let c = &id.value;
                if [ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND].contains(&c.as_str())
                {
                    None
                } else {
                    let found: Vec<_> = sides
                        .iter()
                        .filter(|(_, s)| s.column(c).is_some())
                        .collect();
                    match found.as_slice() {
                        [(a, _)] => Some(format!("{a}.{c}")),
                        [] => {
                            err = Some(Error::semantic(format!(
                                "SELECT column '{c}' cannot be resolved."
                            )));
                            None
                        }
                        _ => {
                            err = Some(Error::semantic(format!(
                                "Column '{c}' is ambiguous: qualify it with a source alias."
                            )));
                            None
                        }
                    }
                }
            }
            _ => None,
        };
        if let Some(n) = name {
            *x = SqlExpr::Identifier(Ident::with_quote('"', n));
        }
        if err.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    err.map_or(Ok(()), Err)
}

/// Plans `expr` (with its qualifiers stripped) over one source's row.
async fn key_pipeline(source: &Source, expr: &SqlExpr) -> Result<Pipeline> {
    let ctx = session(1)?;
    let schema = source_schema(source, false);
    ctx.register_table(
        datafusion::common::TableReference::bare(source.name.as_str()),
        Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?),
    )?;
    let mut e = expr.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let SqlExpr::CompoundIdentifier(parts) = x {
            if let Some(last) = parts.last().cloned() {
                *x = SqlExpr::Identifier(last);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let sql = format!("SELECT {e} FROM \"{}\"", source.name);
    let logical = ctx.state().create_logical_plan(&sql).await?;
    let physical = ctx.state().create_physical_plan(&logical).await?;
    Pipeline::from_plan(physical, schema)
}

pub async fn plan(q: &KsqlQuery, catalog: &Catalog) -> Result<QueryPlan> {
    let sources = from_sources(q, catalog)?;
    if sources.len() != 2 {
        return Err(Error::semantic("a query joins at most two sources"));
    }
    let ((left, la), (right, ra)) = (sources[0].clone(), sources[1].clone());
    let mut query = q.query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(Error::semantic("only SELECT queries are supported"));
    };
    let join = select.from[0].joins[0].clone();
    let (join_type, constraint) = match &join.join_operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinType::Inner, c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinType::Left, c),
        JoinOperator::FullOuter(c) => (JoinType::Outer, c),
        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
            return Err(Error::semantic(
                "RIGHT OUTER JOIN on a foreign key is not supported; swap the sources and use LEFT JOIN",
            ))
        }
        other => {
            return Err(Error::semantic(format!(
                "unsupported join type: {other:?}; use [INNER] JOIN, LEFT [OUTER] JOIN or FULL OUTER JOIN"
            )))
        }
    };
    let JoinConstraint::On(on) = constraint else {
        return Err(Error::semantic("a join needs an ON clause"));
    };
    let SqlExpr::BinaryOp {
        left: a,
        op: BinaryOperator::Eq,
        right: b,
    } = on
    else {
        let shown = format::expr(&qualified_by_side(on, &la, left, &ra, right));
        if matches!(
            on,
            SqlExpr::BinaryOp {
                op: BinaryOperator::And,
                ..
            }
        ) {
            return Err(Error::semantic(format!(
                "Invalid join condition: joins on multiple conditions are not yet supported. Got {shown}."
            )));
        }
        return Err(Error::semantic(format!(
            "Unsupported join criteria {shown}: joins need an equality between one expression of each source"
        )));
    };
    let (lexpr, rexpr) = match (side_of(a, &la, &ra, left, right), side_of(b, &la, &ra, left, right)) {
        (Some(true), Some(false)) => ((**a).clone(), (**b).clone()),
        (Some(false), Some(true)) => ((**b).clone(), (**a).clone()),
        _ => {
            return Err(Error::semantic(format!(
                "Invalid join criteria {on}: each side of = must reference exactly one of {la} and {ra}"
            )))
        }
    };
    let within = q.within.first().copied().flatten();
    match (left.kind, right.kind) {
        (SourceKind::Stream, SourceKind::Stream) if within.is_none() => {
            return Err(Error::semantic(
                "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/platform/current/ksqldb/syntax-reference.html#create-stream-as-select",
            ))
        }
        (SourceKind::Stream, SourceKind::Stream) => {}
        (_, _) if within.is_some() => {
            return Err(Error::semantic("A window definition (WITHIN) was provided for a join that does not involve two streams."))
        }
        (SourceKind::Table, SourceKind::Stream) => {
            return Err(Error::semantic(format!(
                "Invalid join order: table-stream joins are not supported; only stream-table joins. Got {} {} {}.",
                la, join_type.words(), ra
            )))
        }
        (SourceKind::Stream, SourceKind::Table) if join_type == JoinType::Outer => {
            return Err(Error::semantic(format!(
                "Invalid join type: full-outer join not supported for stream-table join. Got {} {} {}.",
                la, join_type.words(), ra
            )))
        }
        _ => {}
    }
    // The ON condition as ksqlDB prints it in its messages: as written, every column
    // qualified by its source.
    let condition = {
        let show = |e: &SqlExpr| format::expr(&qualified_by_side(e, &la, left, &ra, right));
        format!("{} = {}", show(a), show(b))
    };
    let is_key = |s: &Source, e: &SqlExpr| {
        let keys: Vec<String> = s.key_columns().map(|c| c.name.clone()).collect();
        keys.len() == 1 && rewrite::unqualified(e) == keys[0]
    };
    if right.kind == SourceKind::Table && !is_key(right, &rexpr) {
        let what = if left.kind == SourceKind::Table {
            "table-table joins require to join on the primary key of the right input table"
        } else {
            "stream-table joins require to join on the table's primary key"
        };
        return Err(Error::semantic(format!(
            "Invalid join condition: {what}. Got {condition}."
        )));
    }
    let foreign_key = left.kind == SourceKind::Table && !is_key(left, &lexpr);
    if foreign_key && join_type == JoinType::Outer {
        return Err(Error::semantic(format!(
            "Invalid join type: full-outer join not supported for foreign-key table-table join. Got {} {} {}.",
            la, join_type.words(), ra
        )));
    }
    let left_rekey = !is_key(left, &lexpr);
    // A right stream joining on a value column is repartitioned as well (a right
    // table was refused above: it must join on its PRIMARY KEY).
    let right_rekey = !is_key(right, &rexpr);
    let left_key = key_pipeline(left, &lexpr).await?;
    let right_key = key_pipeline(right, &rexpr).await?;
    let types = [&left_key, &right_key].map(|p| {
        p.output
            .fields()
            .first()
            .and_then(|f| SqlType::from_arrow(f.data_type()))
    });
    if let [Some(lt), Some(rt)] = &types {
        if lt != rt {
            let (ta, tb) = if side_of(a, &la, &ra, left, right) == Some(true) {
                (lt, rt)
            } else {
                (rt, lt)
            };
            let show = |e: &SqlExpr| format::expr(&qualified_by_side(e, &la, left, &ra, right));
            return Err(Error::semantic(format!(
                "Invalid join condition: types don't match. Got {}{{{ta}}} = {}{{{tb}}}.",
                show(a),
                show(b)
            )));
        }
    }

    let from = [
        FromSource {
            source: left,
            alias: la.clone(),
            window_bounds: false,
        },
        FromSource {
            source: right,
            alias: ra.clone(),
            window_bounds: false,
        },
    ];
    for item in &mut select.projection {
        use datafusion::sql::sqlparser::ast::SelectItem;
        // A selected column is named after itself, or `ALIAS_COLUMN` when both
        // sources have a column of that name, as ksqlDB names join results.
        if let SelectItem::UnnamedExpr(e) = item {
            let named = match e {
                SqlExpr::Identifier(id) => Some((None, id.value.clone())),
                SqlExpr::CompoundIdentifier(p) if p.len() == 2 => {
                    Some((Some(p[0].value.clone()), p[1].value.clone()))
                }
                _ => None,
            };
            if let Some((qualifier, column)) = named {
                let both = left.column(&column).is_some() && right.column(&column).is_some();
                let name = match qualifier {
                    Some(q) if both => format!("{q}_{column}"),
                    _ => column,
                };
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::new(name),
                };
            }
        }
    }
    rewrite::expand_select(select, &from);
    rewrite::ksql_forms(select);
    let sides = [(la.as_str(), left), (ra.as_str(), right)];
    let mut qerr = Ok(());
    for item in &mut select.projection {
        use datafusion::sql::sqlparser::ast::SelectItem;
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            if let Err(e) = qualify(e, &sides) {
                qerr = Err(e);
            }
        }
    }
    qerr?;
    if let Some(w) = &mut select.selection {
        qualify(w, &sides)?;
    }
    if let Some(h) = &mut select.having {
        qualify(h, &sides)?;
    }
    if let datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(es, _) = &mut select.group_by {
        for e in es {
            qualify(e, &sides)?;
        }
    }
    select.from = vec![TableWithJoins {
        relation: TableFactor::Table {
            name: ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
                '"', JOINED,
            ))]),
            alias: None,
            args: None,
            with_hints: vec![],
            version: None,
            with_ordinality: false,
            partitions: vec![],
            json_path: None,
            sample: None,
            index_hints: vec![],
        },
        joins: vec![],
    }];
    let mut partition_by = q.partition_by.clone();
    if let Some(p) = &mut partition_by {
        qualify(p, &sides)?;
    }
    let keys = if foreign_key {
        let keys: Vec<String> = left
            .key_columns()
            .map(|c| format!("{la}.{}", c.name))
            .collect();
        JoinKeys::AllOf(keys)
    } else {
        let mut keys = Vec::new();
        for e in [&lexpr, &rexpr] {
            let mut e = e.clone();
            qualify(&mut e, &sides)?;
            keys.push(rewrite::unqualified(&e));
        }
        JoinKeys::AnyOf(keys)
    };
    let joined = Source {
        name: JOINED.to_string(),
        kind: if left.kind == SourceKind::Table && right.kind == SourceKind::Table {
            SourceKind::Table
        } else {
            SourceKind::Stream
        },
        topic: String::new(),
        key_format: left.key_format,
        value_format: left.value_format,
        columns: [(la.as_str(), left), (ra.as_str(), right)]
            .iter()
            .flat_map(|(a, s)| {
                s.columns
                    .iter()
                    .map(move |c| Column::new(format!("{a}.{}", c.name), c.sql_type.clone(), false))
            })
            .collect(),
        timestamp: None,
        timestamp_format: None,
        wrap_single_value: true,
        windowed: None,
        window_size_ms: None,
        written_by: Vec::new(),
        read_only: false,
    };
    let rewritten = KsqlQuery {
        query,
        window: q.window,
        within: Vec::new(),
        partition_by,
        emit: q.emit,
        text: q.text.clone(),
    };
    let mut plan = plan_over(&rewritten, &joined, JOINED, Some(keys)).await?;
    plan.join = Some(JoinSpec {
        join_type,
        left: left.clone(),
        right: right.clone(),
        within,
        left_key,
        right_key,
        left_rekey,
        right_rekey,
        foreign_key,
    });
    Ok(plan)
}
