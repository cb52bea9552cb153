//! Argument rules of ksqlDB's variadic functions that DataFusion's coercion would
//! accept: GREATEST and LEAST take arguments of one type (DECIMALs of any precision
//! together, or any numbers with a DOUBLE among them, which all widen to DOUBLE). What
//! ksqlDB's function resolution refuses is refused here with its message: numbers of
//! several types without a DOUBLE are "ambiguous", other mixes "not accepted".

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};

use crate::error::{Error, Result};
use crate::parser::types::SqlType;

const SAME_TYPE_FUNCTIONS: &[&str] = &["greatest", "least"];

/// The argument as written: coercion's casts removed.
fn written(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => written(&c.expr),
        Expr::TryCast(c) => written(&c.expr),
        other => other,
    }
}

fn is_null_literal(e: &Expr) -> bool {
    matches!(e, Expr::Literal(v, _) if v.is_null())
}

/// The type's family as ksqlDB resolves overloads: DECIMALs are one family.
fn family(t: &SqlType) -> String {
    match t {
        SqlType::Decimal(..) => "DECIMAL".to_string(),
        other => other.to_string(),
    }
}

fn is_number(t: &SqlType) -> bool {
    matches!(
        t,
        SqlType::Integer | SqlType::Bigint | SqlType::Double | SqlType::Decimal(..)
    )
}

// `Expr::Wildcard` is deprecated, but `GREATEST(*)` still reaches the plan as one.
#[allow(deprecated)]
fn check_call(name: &str, args: &[Expr], schema: &datafusion::common::DFSchema) -> Result<()> {
    if args.iter().any(|a| matches!(a, Expr::Wildcard { .. })) {
        // `GREATEST(*)`: ksqlDB reads no parameters.
        return Err(Error::semantic(format!(
            "Function '{name}' does not accept parameters ()."
        )));
    }
    let mut shown = Vec::new();
    let mut typed: Vec<(SqlType, bool)> = Vec::new();
    for a in args {
        let a = written(a);
        if is_null_literal(a) {
            shown.push("null".to_string());
            continue;
        }
        let Some(t) = a
            .get_type(schema)
            .ok()
            .and_then(|t| SqlType::from_arrow(&t))
        else {
            return Ok(());
        };
        shown.push(t.to_string());
        typed.push((t, matches!(a, Expr::Literal(..))));
    }
    let refuse = |why: &str| {
        Err(Error::semantic(format!(
            "Function '{name}' {why} ({}).",
            shown.join(", ")
        )))
    };
    if args.is_empty() {
        return refuse("does not accept parameters");
    }
    if typed.is_empty() {
        return refuse("cannot be resolved due to ambiguous method parameters");
    }
    // A string literal converts to the DATE, TIME or TIMESTAMP it is compared with.
    let temporal = typed
        .iter()
        .any(|(t, _)| matches!(t, SqlType::Date | SqlType::Time | SqlType::Timestamp));
    // A literal takes the type of the columns beside it (`5` is an INTEGER to ksqlDB,
    // a BIGINT to DataFusion); only literals alone decide the type.
    let columns = typed.iter().any(|(_, literal)| !literal);
    let mut families: Vec<String> = typed
        .iter()
        .filter(|(t, literal)| {
            !(*literal && (columns && (is_number(t) || temporal && *t == SqlType::String)))
        })
        .map(|(t, _)| family(t))
        .collect();
    families.sort();
    families.dedup();
    if families.len() <= 1 {
        return Ok(());
    }
    if typed.iter().all(|(t, _)| is_number(t)) {
        if typed.iter().any(|(t, _)| *t == SqlType::Double) {
            return Ok(());
        }
        return refuse("cannot be resolved due to ambiguous method parameters");
    }
    refuse("does not accept parameters")
}

/// Checks every GREATEST/LEAST call of the plan.
pub fn check(plan: &LogicalPlan) -> Result<()> {
    let mut err = None;
    let _ = plan.apply(|node| {
        let schema = node
            .inputs()
            .first()
            .map(|i| i.schema().clone())
            .unwrap_or_else(|| node.schema().clone());
        for e in node.expressions() {
            let _ = e.apply(|x| {
                if let Expr::ScalarFunction(f) = x {
                    let name = f.name().to_ascii_lowercase();
                    if SAME_TYPE_FUNCTIONS.contains(&name.as_str()) {
                        if let Err(e) = check_call(&name, &f.args, &schema) {
                            err = Some(e);
                            return Ok(TreeNodeRecursion::Stop);
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
