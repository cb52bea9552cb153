//! Planning: a ksql SELECT becomes a DataFusion plan over the sources' schemas (an
//! empty table per source, pseudo columns included), then a push [`pipeline`] for
//! continuous execution. DataFusion resolves names, checks types, coerces and picks
//! the functions; this module adds ksqlDB's rules: which output columns form the key,
//! what a query produces (stream or table), and ksqlDB's wording for its errors.

mod aggregation;
pub mod datestring;
pub mod format;
pub mod functions;
pub mod join;
pub mod pipeline;
pub mod rewrite;
mod signatures;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{BinaryExpr, ExprSchemable, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, GroupByExpr, SelectItem, SetExpr, TableFactor,
};

use crate::catalog::{pseudo_fields, Catalog, Column, Source};
use crate::error::{Error, Result};
use crate::parser::ast::{Emit, KsqlQuery, SourceKind, WindowSpec};
use crate::parser::types::SqlType;
use pipeline::Pipeline;
use rewrite::FromSource;

/// A DataFusion session configured for ksql: identifiers keep their (upper) case, one
/// partition per plan, ksqlDB's function names registered.
pub fn session(batch_size: usize) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(batch_size.max(1));
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    // It turns COUNT(DISTINCT x) GROUP BY k into two aggregations (by k, x, then by
    // k), which a continuous query cannot run: keep DISTINCT in the accumulator.
    ctx.remove_optimizer_rule("single_distinct_aggregation_to_group_by");
    // ksqlDB keys the result of `GROUP BY 1` by that constant: keep it as a group.
    ctx.remove_optimizer_rule("eliminate_group_by_constant");
    functions::register(&ctx)?;
    Ok(ctx)
}

/// The schema a source has inside a query.
pub fn source_schema(source: &Source, windowed: bool) -> SchemaRef {
    let mut fields: Vec<_> = source
        .columns
        .iter()
        .map(|c| datafusion::arrow::datatypes::Field::new(&c.name, c.sql_type.to_arrow(), true))
        .collect();
    fields.extend(pseudo_fields(windowed || source.windowed.is_some()));
    Arc::new(Schema::new(fields))
}

/// A planned SELECT over one source.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// Set for a join: `source` is then the joined row.
    pub join: Option<join::JoinSpec>,
    pub source: Source,
    pub pipeline: Pipeline,
    /// Output columns in SELECT order; `key` marks the record key.
    pub columns: Vec<Column>,
    pub window: Option<WindowSpec>,
    pub emit: Option<Emit>,
    pub limit: Option<usize>,
    /// What the query produces.
    pub kind: SourceKind,
    /// The key of the output differs from the source's (GROUP BY / PARTITION BY).
    pub rekeyed: bool,
    /// The aggregation groups by something else than the source's key: its records
    /// go through a repartition topic first.
    pub repartition: bool,
    /// The query as DataFusion planned it.
    pub sql: String,
    /// Key columns the ksqlDB rules require in the projection but that are missing,
    /// and what they are ("key column", "grouping expression", ...).
    pub missing_key: Vec<String>,
    pub key_word: &'static str,
    /// The key columns' names in key order (GROUP BY order for an aggregation),
    /// which is the order of the sink's key (ksqlDB's schema: keys first).
    pub key_order: Vec<String>,
}

/// An expression as compared between SELECT, GROUP BY and PARTITION BY (and named in
/// messages): qualifiers dropped, printed as ksqlDB prints it.
fn canonical(e: &SqlExpr) -> String {
    let mut e = e.clone();
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut e, |x| {
        if let SqlExpr::CompoundIdentifier(parts) = x {
            if let Some(last) = parts.last().cloned() {
                *x = SqlExpr::Identifier(last);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    format::expr(&e)
}

/// The sources in FROM, with their aliases; more than one means a join.
pub fn from_sources<'c>(q: &KsqlQuery, catalog: &'c Catalog) -> Result<Vec<(&'c Source, String)>> {
    let SetExpr::Select(select) = q.query.body.as_ref() else {
        return Err(Error::semantic("only SELECT queries are supported"));
    };
    let mut out = Vec::new();
    for twj in &select.from {
        let mut factors = vec![&twj.relation];
        factors.extend(twj.joins.iter().map(|j| &j.relation));
        for f in factors {
            let TableFactor::Table { name, alias, .. } = f else {
                return Err(Error::semantic("FROM takes stream and table names"));
            };
            let n = name.to_string().replace('"', "");
            let source = catalog.source(&n)?;
            let alias = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or(n);
            out.push((source, alias));
        }
    }
    if out.is_empty() {
        return Err(Error::semantic("a query needs a FROM clause"));
    }
    Ok(out)
}

/// Plans a single-source query (joins are planned in [`join`]).
pub async fn plan(q: &KsqlQuery, catalog: &Catalog) -> Result<QueryPlan> {
    let sources = from_sources(q, catalog)?;
    check_qualifiers(q, &sources)?;
    if sources.len() != 1 {
        return join::plan(q, catalog).await;
    }
    let (source, alias) = sources[0].clone();
    plan_over(q, source, &alias, None).await
}

/// Every `X.col` and `X.*` names a source of FROM by its name or alias, else ksqlDB's
/// error naming `X`.
fn check_qualifiers(q: &KsqlQuery, sources: &[(&Source, String)]) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, SelectItemQualifiedWildcardKind};
    let known = |x: &str| sources.iter().any(|(s, a)| s.name == x || a == x);
    let unknown =
        |x: &str| Error::semantic(format!("'{x}' is not a valid stream/table name or alias."));
    if let SetExpr::Select(select) = q.query.body.as_ref() {
        for item in &select.projection {
            if let SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) = item
            {
                let x = n.to_string().replace('"', "");
                if !known(&x) {
                    return Err(unknown(&x));
                }
            }
        }
    }
    let mut bad = None;
    let _ = visit_expressions(&q.query, |e| {
        if let SqlExpr::CompoundIdentifier(parts) = e {
            if parts.len() >= 2 && !known(&parts[0].value) {
                bad = Some(parts[0].value.clone());
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    match bad {
        Some(x) => Err(unknown(&x)),
        None => Ok(()),
    }
}

/// Plans `q` over one source. `join_keys`: for a join (whose joined row is the
/// source), the expressions any of which makes the output key.
pub(crate) async fn plan_over(
    q: &KsqlQuery,
    source: &Source,
    alias: &str,
    join_keys: Option<join::JoinKeys>,
) -> Result<QueryPlan> {
    let alias = alias.to_string();
    let mut query = q.query.clone();
    let limit = take_limit(&mut query)?;
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(Error::semantic("only SELECT queries are supported"));
    };
    let from = [FromSource {
        source,
        alias: alias.clone(),
        window_bounds: false,
    }];
    rewrite::expand_select(select, &from);
    let group_by: Vec<SqlExpr> = match &mut select.group_by {
        GroupByExpr::Expressions(e, _) => {
            *e = aggregation::flatten_group_by(e);
            e.clone()
        }
        GroupByExpr::All(_) => return Err(Error::semantic("GROUP BY ALL is not supported")),
    };
    // Reported once DataFusion planned the query, unless it found an unknown function.
    let aggregation_error =
        aggregation::check(&select.projection, &group_by, select.having.as_ref()).err();
    rewrite::check_map_constructors(select)?;
    if source.kind == SourceKind::Table && join_keys.is_none() {
        let table_function = aggregation::calls_table_function(&select.projection);
        if table_function {
            return Err(Error::semantic(
                "Table source is not supported with table functions",
            ));
        }
    }
    rewrite::ksql_forms(select);
    rewrite::string_plus(select, source);
    if group_by.is_empty() {
        rewrite::integer_literals(select);
    }
    rewrite::distinct_aggregates(select);
    let group_by: Vec<SqlExpr> = match &select.group_by {
        GroupByExpr::Expressions(e, _) => e.clone(),
        GroupByExpr::All(_) => Vec::new(),
    };
    let aggregate = !group_by.is_empty() || has_aggregate_call(select);
    if q.window.is_some() && group_by.is_empty() {
        return Err(Error::semantic("WINDOW clause requires a GROUP BY clause."));
    }
    if q.emit == Some(Emit::Final) && q.window.is_none() {
        return Err(Error::semantic(
            "EMIT FINAL is only supported for windowed aggregations.",
        ));
    }
    if q.window.is_some() {
        rewrite::group_by_window(select);
    }
    let items: Vec<(String, String)> = select
        .projection
        .iter()
        .map(|i| match i {
            SelectItem::UnnamedExpr(e) => (canonical(e), canonical(e)),
            SelectItem::ExprWithAlias { expr, alias } => (canonical(expr), alias.value.clone()),
            other => (other.to_string(), other.to_string()),
        })
        .collect();
    let sql = query.to_string();

    let ctx = session(1)?;
    let schema = source_schema(source, q.window.is_some());
    let table = MemTable::try_new(schema.clone(), vec![vec![]])?;
    ctx.register_table(
        datafusion::common::TableReference::bare(source.name.as_str()),
        Arc::new(table),
    )?;
    let logical = match ctx.state().create_logical_plan(&sql).await {
        Ok(plan) => plan,
        Err(e) => {
            let e = explain_error(e.into());
            let unknown_function = e.to_string().contains("Can't find any functions");
            return Err(match aggregation_error {
                Some(agg) if !unknown_function => agg,
                _ => e,
            });
        }
    };
    if let Some(e) = aggregation_error {
        return Err(e);
    }
    check_comparisons(&logical)?;
    signatures::check(&logical)?;
    let physical = ctx
        .state()
        .create_physical_plan(&logical)
        .await
        .map_err(|e| explain_error(e.into()))?;
    let pipeline = Pipeline::from_plan(physical, schema.clone())?;
    // Checked once DataFusion resolved every function (an unknown one is reported
    // first, as ksqlDB does).
    if !group_by.is_empty() && pipeline.agg.as_ref().is_none_or(|a| a.aggs.is_empty()) {
        return Err(Error::semantic(
            "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.",
        ));
    }

    // Which output columns are the key.
    let key_exprs: Vec<String> = match (aggregate || q.partition_by.is_some(), &join_keys) {
        (false, Some(join::JoinKeys::AnyOf(candidates))) => {
            let found = candidates
                .iter()
                .find(|k| items.iter().any(|(e, a)| e == *k || a == *k));
            vec![found.unwrap_or(&candidates[0]).clone()]
        }
        (false, Some(join::JoinKeys::AllOf(keys))) => {
            for k in keys {
                let mut found = items.iter().filter(|(e, _)| e == k);
                if let (Some(first), Some(_)) = (found.next(), found.clone().next()) {
                    let aliases: Vec<&str> = std::iter::once(first)
                        .chain(found)
                        .map(|(_, a)| a.as_str())
                        .collect();
                    return Err(Error::semantic(format!(
                        "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                        k.replace('.', "_"),
                        aliases.join(" and ")
                    )));
                }
            }
            keys.clone()
        }
        _ if aggregate => group_by.iter().map(canonical).collect(),
        _ => match &q.partition_by {
            Some(p) => vec![canonical(p)],
            None => source.key_columns().map(|c| c.name.clone()).collect(),
        },
    };
    let mut key_positions = Vec::new();
    let mut missing_key = Vec::new();
    // A grouping expression is found by expression (an aggregate aliased as the
    // grouped column's name is not the key); a join key also by name.
    let is_key = |(e, a): &(String, String), k: &String| e == k || (!aggregate && a == k);
    for k in &key_exprs {
        match items.iter().position(|item| is_key(item, k)) {
            Some(i) => {
                if aggregate {
                    if let Some(again) = items.iter().skip(i + 1).find(|item| is_key(item, k)) {
                        return Err(Error::semantic(format!(
                            "The projection contains a key column more than once: `{}` and `{}`.",
                            items[i].1, again.1
                        )));
                    }
                }
                key_positions.push(i)
            }
            None => missing_key.push(k.clone()),
        }
    }
    let key_word = if aggregate && join_keys.is_none() {
        "grouping expression"
    } else if q.partition_by.is_some() {
        "partitioning expression"
    } else {
        "key column"
    };
    // For a source's key ksqlDB names every key column, not only the missing ones.
    if !missing_key.is_empty() && key_word == "key column" && join_keys.is_none() {
        missing_key = key_exprs.clone();
    }
    let key_order: Vec<String> = key_positions
        .iter()
        .map(|i| pipeline.output.field(*i).name().clone())
        .collect();
    let columns = pipeline
        .output
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let sql_type = SqlType::from_arrow(f.data_type()).ok_or_else(|| {
                Error::semantic(format!(
                    "column {} has a type ksql cannot write: {}",
                    f.name(),
                    f.data_type()
                ))
            })?;
            Ok(Column::new(f.name(), sql_type, key_positions.contains(&i)))
        })
        .collect::<Result<Vec<_>>>()?;
    let kind = if aggregate || source.kind == SourceKind::Table {
        SourceKind::Table
    } else {
        SourceKind::Stream
    };
    let rekeyed = aggregate || q.partition_by.is_some();
    let by_source_key = group_by
        .iter()
        .map(rewrite::unqualified)
        .collect::<Vec<_>>()
        == source
            .key_columns()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>();
    let repartition = aggregate && join_keys.is_none() && !group_by.is_empty() && !by_source_key;
    Ok(QueryPlan {
        join: None,
        source: source.clone(),
        pipeline,
        columns,
        window: q.window,
        emit: q.emit,
        limit,
        kind,
        rekeyed,
        repartition,
        sql,
        missing_key,
        key_word,
        key_order,
    })
}

fn take_limit(query: &mut datafusion::sql::sqlparser::ast::Query) -> Result<Option<usize>> {
    use datafusion::sql::sqlparser::ast::{LimitClause, Value};
    let Some(clause) = query.limit_clause.take() else {
        return Ok(None);
    };
    let limit = match clause {
        LimitClause::LimitOffset {
            limit: Some(SqlExpr::Value(v)),
            offset: None,
            ..
        } => match &v.value {
            Value::Number(n, _) => n.parse::<usize>().ok(),
            _ => None,
        },
        _ => None,
    };
    limit
        .map(Some)
        .ok_or_else(|| Error::semantic("LIMIT takes a whole number"))
}

fn has_aggregate_call(select: &datafusion::sql::sqlparser::ast::Select) -> bool {
    let mut found = false;
    let mut visit = |e: &SqlExpr| {
        if let SqlExpr::Function(f) = e {
            let name = f.name.to_string().to_ascii_uppercase();
            if functions::AGGREGATES.contains(&name.as_str()) {
                found = true;
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    };
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(&select.projection, &mut visit);
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(&select.having, &mut visit);
    found
}

/// DataFusion's planning errors in ksqlDB's words.
pub fn explain_error(e: Error) -> Error {
    let Error::Semantic(msg) = &e else { return e };
    if let Some(i) = msg.find("No field named ") {
        let rest = &msg[i + "No field named ".len()..];
        let name: String = rest
            .split(char::is_whitespace)
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .replace(['"', '\''], "");
        return Error::Semantic(format!("SELECT column '{name}' cannot be resolved."));
    }
    if let Some(i) = msg.find(" was called without any arguments") {
        let name = msg[..i].rsplit(' ').next().unwrap_or_default();
        return Error::Semantic(format!("Function '{name}' does not accept parameters ()."));
    }
    if let Some(rest) = msg.split("Invalid function '").nth(1) {
        let name = rest
            .split('\'')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        return Error::Semantic(format!("Can't find any functions with the name '{name}'"));
    }
    if let Some(i) = msg.find("must appear in the GROUP BY clause") {
        let column = msg[..i]
            .rsplit("column ")
            .next()
            .unwrap_or("")
            .trim()
            .replace('"', "");
        let column = column.rsplit('.').next().unwrap_or(&column).to_string();
        return Error::Semantic(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {column}"
        ));
    }
    if msg.contains("could not be resolved from available columns") {
        let expr = msg
            .split("Expression ")
            .nth(1)
            .and_then(|r| r.split(" could not").next())
            .unwrap_or("")
            .replace('"', "");
        let expr = expr.rsplit('.').next().unwrap_or(&expr).to_string();
        return Error::Semantic(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {expr}"
        ));
    }
    e
}

fn type_class(t: &DataType) -> &'static str {
    match t {
        t if t.is_numeric() => "number",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Boolean => "boolean",
        DataType::Null => "null",
        _ => "other",
    }
}

/// ksqlDB rejects comparisons between unrelated types (INT = 'x') where DataFusion
/// would try a cast at run time.
fn check_comparisons(plan: &LogicalPlan) -> Result<()> {
    let mut err = None;
    let _ = plan.apply(|node| {
        let schema = node
            .inputs()
            .first()
            .map(|i| i.schema().clone())
            .unwrap_or_else(|| node.schema().clone());
        for e in node.expressions() {
            let _ = e.apply(|x| {
                if let datafusion::logical_expr::Expr::BinaryExpr(BinaryExpr { left, op, right }) = x {
                    if op.supports_propagation() || is_comparison(op) {
                        if let (Ok(lt), Ok(rt)) = (left.get_type(&schema), right.get_type(&schema)) {
                            let (lc, rc) = (type_class(&lt), type_class(&rt));
                            if lc != rc && lc != "null" && rc != "null" && lc != "other" && rc != "other" {
                                err = Some(Error::Semantic(format!(
                                    "Error in WHERE expression: Cannot compare {} ({}) to {} ({}) with {}.",
                                    shown(left),
                                    SqlType::from_arrow(&lt).map(|t| t.to_string()).unwrap_or_default(),
                                    shown(right),
                                    SqlType::from_arrow(&rt).map(|t| t.to_string()).unwrap_or_default(),
                                    op_name(op),
                                )));
                                return Ok(TreeNodeRecursion::Stop);
                            }
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(if err.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    err.map_or(Ok(()), Err)
}

/// An operand as ksqlDB prints it: a column by name, a string literal quoted.
fn shown(e: &datafusion::logical_expr::Expr) -> String {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::Expr;
    match e {
        Expr::Column(c) => c.name.clone(),
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => format!("'{s}'"),
        Expr::Literal(v, _) => v.to_string(),
        other => other.to_string().replace('"', ""),
    }
}

fn is_comparison(op: &datafusion::logical_expr::Operator) -> bool {
    use datafusion::logical_expr::Operator::*;
    matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq)
}

fn op_name(op: &datafusion::logical_expr::Operator) -> &'static str {
    use datafusion::logical_expr::Operator::*;
    match op {
        Eq => "EQUAL",
        NotEq => "NOT_EQUAL",
        Lt => "LESS_THAN",
        LtEq => "LESS_THAN_OR_EQUAL",
        Gt => "GREATER_THAN",
        GtEq => "GREATER_THAN_OR_EQUAL",
        _ => "an operator",
    }
}

#[cfg(test)]
pub(crate) mod tests;
