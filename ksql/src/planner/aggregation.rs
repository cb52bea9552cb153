//! ksqlDB's rules for an aggregating SELECT (its `AggregateAnalyzer` and
//! `QueryAnalyzer` checks), applied to the statement as written — before DataFusion
//! plans it — so each violation is reported with ksqlDB's message, naming the
//! expression as ksqlDB prints it (see [`super::format`]):
//! - GROUP BY holds no aggregate and no expression twice;
//! - aggregate calls are not nested;
//! - every non-aggregate SELECT expression is a GROUP BY expression or uses only
//!   columns that are GROUP BY expressions; the same for HAVING.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, Expr, FunctionArguments, SelectItem,
    Value,
};

use super::format;
use super::functions::AGGREGATES;
use crate::catalog::{WINDOWEND, WINDOWSTART};
use crate::error::{Error, Result};

/// ksqlDB's table functions (one row in, any number out).
pub const TABLE_FUNCTIONS: &[&str] = &["EXPLODE", "CUBE_EXPLODE"];

/// Whether the projection calls a table function.
pub fn calls_table_function(projection: &[SelectItem]) -> bool {
    let mut found = false;
    for item in projection {
        let _ = visit_expressions(item, |x| {
            if let Expr::Function(f) = x {
                let name = f.name.to_string().to_ascii_uppercase();
                found |= TABLE_FUNCTIONS.contains(&name.as_str());
            }
            ControlFlow::<()>::Continue(())
        });
    }
    found
}

fn is_aggregate(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string().replace('"', "").to_ascii_uppercase();
            AGGREGATES.contains(&name.as_str()).then_some(name)
        }
        _ => None,
    }
}

/// The first aggregate call in `e` (outermost first).
fn first_aggregate(e: &Expr) -> Option<(String, Expr)> {
    let mut found = None;
    let _ = visit_expressions(e, |x| match is_aggregate(x) {
        Some(name) => {
            found = Some((name, x.clone()));
            ControlFlow::Break(())
        }
        None => ControlFlow::Continue(()),
    });
    found
}

/// The expression as compared between SELECT and GROUP BY: qualifiers dropped.
fn canonical(e: &Expr) -> String {
    super::rewrite::unqualified(e)
}

/// Column references of `e` outside aggregate calls and outside sub-expressions that
/// are GROUP BY expressions (`grouped`, canonical), in order (each once).
fn free_columns(e: &Expr, grouped: &[String]) -> Vec<Expr> {
    let mut e = e.clone();
    // Children first: a grouped expression is replaced once its own children were.
    let _ = visit_expressions_mut(&mut e, |x| {
        if is_aggregate(x).is_some() || grouped.contains(&canonical(x)) {
            *x = Expr::Value(Value::Null.into());
        } else if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Arrow,
            ..
        } = x
        {
            // `s->f`: `f` names a field, not a column.
            *x = (**left).clone();
        }
        ControlFlow::<()>::Continue(())
    });
    let mut out: Vec<Expr> = Vec::new();
    let _ = visit_expressions(&e, |x| {
        let column = match x {
            Expr::Identifier(id) => id.value != WINDOWSTART && id.value != WINDOWEND,
            Expr::CompoundIdentifier(_) => true,
            _ => false,
        };
        if column && !out.iter().any(|c| canonical(c) == canonical(x)) {
            out.push(x.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

fn unqualified(e: &Expr) -> Expr {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let Expr::CompoundIdentifier(parts) = x {
            if let Some(last) = parts.last().cloned() {
                *x = Expr::Identifier(last);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    e
}

/// `GROUP BY (a, b)`: one parenthesised list of expressions is the same as `a, b`.
pub fn flatten_group_by(group_by: &[Expr]) -> Vec<Expr> {
    match group_by {
        [Expr::Tuple(items)] => items.clone(),
        other => other.to_vec(),
    }
}

/// Checks an aggregating SELECT; `projection` has its `*` expanded.
pub fn check(projection: &[SelectItem], group_by: &[Expr], having: Option<&Expr>) -> Result<()> {
    for g in group_by {
        if let Some((name, _)) = first_aggregate(g) {
            return Err(Error::semantic(format!(
                "GROUP BY does not support aggregate functions: {name} is an aggregate function."
            )));
        }
    }
    for (i, g) in group_by.iter().enumerate() {
        if group_by[..i].iter().any(|h| canonical(h) == canonical(g)) {
            return Err(Error::semantic(format!(
                "Duplicate GROUP BY expression: {}",
                format::expr(g)
            )));
        }
    }
    let exprs: Vec<&Expr> = projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })
        .collect();
    for e in exprs.iter().copied().chain(having) {
        let mut nested = None;
        let _ = visit_expressions(e, |x| {
            if let Expr::Function(f) = x {
                if is_aggregate(x).is_some() {
                    if let FunctionArguments::List(list) = &f.args {
                        let inner = list.args.iter().any(|a| {
                            let mut hit = false;
                            let _ = visit_expressions(a, |y| {
                                hit |= is_aggregate(y).is_some();
                                ControlFlow::<()>::Continue(())
                            });
                            hit
                        });
                        if inner {
                            nested = Some(x.clone());
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(n) = nested {
            return Err(Error::semantic(format!(
                "Aggregate functions can not be nested: {}",
                format::expr(&n)
            )));
        }
    }
    let table_function = calls_table_function(projection);
    let aggregating = !group_by.is_empty()
        || exprs
            .iter()
            .chain(having.as_ref())
            .any(|e| first_aggregate(e).is_some());
    if table_function && aggregating {
        return Err(Error::semantic(
            "Table functions cannot be used with aggregations.",
        ));
    }
    // Without any aggregate call the query is not an aggregation (or, with GROUP BY, is
    // refused once its functions are resolved: an unknown one is reported first).
    if !exprs
        .iter()
        .chain(having.as_ref())
        .any(|e| first_aggregate(e).is_some())
    {
        if group_by.is_empty() {
            return Ok(());
        }
        return Err(Error::semantic(
            "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.",
        ));
    }
    let grouped: Vec<String> = group_by.iter().map(canonical).collect();
    let bad: Vec<String> = exprs
        .iter()
        .filter(|e| !free_columns(e, &grouped).is_empty())
        .map(|e| format::expr(&unqualified(e)))
        .collect();
    if !bad.is_empty() {
        return Err(Error::semantic(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {}",
            bad.join(", ")
        )));
    }
    if let Some(c) = having.and_then(|h| free_columns(h, &grouped).into_iter().next()) {
        return Err(Error::semantic(format!(
            "Non-aggregate HAVING expression not part of GROUP BY: {}",
            format::expr(&unqualified(&c))
        )));
    }
    if group_by.is_empty() {
        let calls: Vec<String> = exprs
            .iter()
            .filter_map(|e| first_aggregate(e))
            .map(|(_, call)| format::expr(&call))
            .collect();
        return Err(Error::semantic(format!(
            "CREATE TABLE AS SELECT statement does not support aggregate function [{}] without a GROUP BY clause.",
            calls.join(", ")
        )));
    }
    Ok(())
}
