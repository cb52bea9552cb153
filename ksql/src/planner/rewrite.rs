//! Rewrites of the SELECT's AST before DataFusion plans it, so ksqlDB's semantics come
//! out of a standard SQL plan:
//! - `*` expands to the source's columns (never the pseudo columns); over a join, to
//!   every column of each side named `ALIAS_COLUMN`, as ksqlDB names them;
//! - unaliased expressions get ksqlDB's generated names `KSQL_COL_0`, `KSQL_COL_1`...;
//! - `COUNT_DISTINCT(x)` becomes `COUNT(DISTINCT x)`, `COLLECT_SET(x)`
//!   `ARRAY_AGG(DISTINCT x)`;
//! - a windowed aggregation groups by `WINDOWSTART, WINDOWEND` as well.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, DuplicateTreatment, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, ObjectName,
    ObjectNamePart, Select, SelectItem, SelectItemQualifiedWildcardKind, Value,
};

use crate::catalog::{Source, WINDOWEND, WINDOWSTART};

/// A source in FROM: its catalog entry and the name it goes by in the query.
pub struct FromSource<'a> {
    pub source: &'a Source,
    pub alias: String,
    /// `*` gives a windowed source's WINDOWSTART and WINDOWEND after its key columns,
    /// as a ksqlDB pull query's does.
    pub window_bounds: bool,
}

pub fn expand_select(select: &mut Select, from: &[FromSource<'_>]) {
    let joined = from.len() > 1;
    let mut items = Vec::new();
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(_) => {
                for f in from {
                    items.extend(star(f, joined));
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let alias = name.to_string();
                for f in from.iter().filter(|f| f.alias == alias) {
                    items.extend(star(f, joined));
                }
            }
            other => items.push(other),
        }
    }
    // Generated names skip the names the sources and the projection already use, as
    // ksqlDB's ColumnNames.columnAliasGenerator does.
    let mut taken: std::collections::HashSet<String> = from
        .iter()
        .flat_map(|f| f.source.columns.iter().map(|c| c.name.clone()))
        .collect();
    for item in &items {
        if let SelectItem::ExprWithAlias { alias, .. } = item {
            taken.insert(alias.value.clone());
        }
    }
    let mut generated = 0;
    let mut next_name = || loop {
        let name = format!("KSQL_COL_{generated}");
        generated += 1;
        if !taken.contains(&name) {
            return name;
        }
    };
    for item in &mut items {
        if let SelectItem::UnnamedExpr(e) = item {
            match e {
                Expr::Identifier(_) => {}
                // ksqlDB names a struct field access after the field.
                Expr::BinaryOp {
                    op: BinaryOperator::Arrow,
                    right,
                    ..
                } if matches!(right.as_ref(), Expr::Identifier(_)) => {
                    if let Expr::Identifier(field) = right.as_ref() {
                        let alias = field.clone();
                        *item = SelectItem::ExprWithAlias {
                            expr: e.clone(),
                            alias,
                        };
                    }
                }
                Expr::CompoundIdentifier(parts) => {
                    let last = parts.last().cloned().unwrap_or_else(|| Ident::new(""));
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: last,
                    };
                }
                _ => {
                    *item = SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: Ident::new(next_name()),
                    };
                }
            }
        }
    }
    select.projection = items;
}

/// ksqlDB's expression forms, spelled as DataFusion's functions:
/// - `s->f` (struct field access) is `get_field(s, 'F')`;
/// - `STRUCT(f := v, ...)` is `named_struct('F', v, ...)`;
/// - `MAP(k := v, ...)` is `make_map(k, v, ...)`.
pub fn ksql_forms(select: &mut Select) {
    let _ = visit_expressions_mut(select, |e| {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Arrow,
                right,
            } => {
                if let Expr::Identifier(field) = right.as_ref() {
                    let name = Expr::Value(Value::SingleQuotedString(field.value.clone()).into());
                    *e = call("get_field", vec![(**left).clone(), name]);
                }
            }
            // DataFusion plans SUBSTRING with its own (SQL-standard) function; ksqlDB's
            // positions differ, so it goes through the registry's `ksql_substring`.
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![(**expr).clone()];
                args.extend(substring_from.as_deref().cloned());
                args.extend(substring_for.as_deref().cloned());
                *e = call("ksql_substring", args);
            }
            // DataFusion's LIKE escapes with a backslash only: a pattern with another
            // ESCAPE character is rewritten to backslash escapes when it is read.
            Expr::Like {
                pattern,
                escape_char,
                ..
            } if escape_char
                .as_ref()
                .is_some_and(|c| c.value != Value::SingleQuotedString("\\".into())) =>
            {
                if let Some(c) = escape_char.take() {
                    let escape = Expr::Value(c);
                    **pattern = call("ksql_like_escape", vec![(**pattern).clone(), escape]);
                }
            }
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_uppercase();
                if name == "EXPLODE" {
                    // DataFusion's table function for a list, with the same zip.
                    f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("unnest"))]);
                }
                if name == "STDDEV_SAMP" || name == "STDDEV_SAMPLE" {
                    // ksqlDB's sample standard deviation of fewer than two values is
                    // 0.0, DataFusion's NULL.
                    let zero = Expr::Value(Value::Number("0.0".to_string(), false).into());
                    *e = call("coalesce", vec![e.clone(), zero]);
                    return ControlFlow::<()>::Continue(());
                }
                if name == "CUBE_EXPLODE" {
                    if let FunctionArguments::List(list) = &f.args {
                        let args = list
                            .args
                            .iter()
                            .filter_map(|a| match a {
                                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.clone()),
                                _ => None,
                            })
                            .collect();
                        *e = call("unnest", vec![call("ksql_cube", args)]);
                    }
                    return ControlFlow::<()>::Continue(());
                }
                let FunctionArguments::List(list) = &f.args else {
                    return ControlFlow::<()>::Continue(());
                };
                let Some(pairs) = named_pairs(&list.args).filter(|p| !p.is_empty()) else {
                    return ControlFlow::<()>::Continue(());
                };
                match name.as_str() {
                    "STRUCT" => {
                        let args = pairs
                            .into_iter()
                            .flat_map(|(k, v)| {
                                let field = match k {
                                    Expr::Identifier(i) => i.value,
                                    other => other.to_string(),
                                };
                                [Expr::Value(Value::SingleQuotedString(field).into()), v]
                            })
                            .collect();
                        *e = call("named_struct", args);
                    }
                    "MAP" => {
                        let args = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
                        *e = call("make_map", args);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The `name := value` arguments of STRUCT(...) and MAP(...), as the parser gives
/// them; `None` if one argument is of another form.
fn named_pairs(args: &[FunctionArg]) -> Option<Vec<(Expr, Expr)>> {
    args.iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
                left,
                op: BinaryOperator::Assignment,
                right,
            })) => Some(((**left).clone(), (**right).clone())),
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(v),
                ..
            } => Some((Expr::Identifier(name.clone()), v.clone())),
            FunctionArg::ExprNamed {
                name,
                arg: FunctionArgExpr::Expr(v),
                ..
            } => Some((name.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

/// A call of the function `name`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn star(f: &FromSource<'_>, joined: bool) -> Vec<SelectItem> {
    let mut names: Vec<String> = f.source.columns.iter().map(|c| c.name.clone()).collect();
    if f.window_bounds && f.source.windowed.is_some() {
        let after_keys = f.source.columns.iter().take_while(|c| c.key).count();
        names.splice(
            after_keys..after_keys,
            [WINDOWSTART, WINDOWEND].map(String::from),
        );
    }
    names
        .into_iter()
        .map(|name| {
            let expr = Expr::CompoundIdentifier(vec![
                Ident::with_quote('"', &f.alias),
                Ident::with_quote('"', &name),
            ]);
            let alias = if joined {
                format!("{}_{}", f.alias, name)
            } else {
                name
            };
            SelectItem::ExprWithAlias {
                expr,
                alias: Ident::with_quote('"', alias),
            }
        })
        .collect()
}

/// ksqlDB aggregate names that are DataFusion aggregates with DISTINCT.
pub fn distinct_aggregates(select: &mut Select) {
    let _ = visit_expressions_mut(select, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_ascii_uppercase();
            let target = match name.as_str() {
                "COUNT_DISTINCT" => Some("COUNT"),
                _ => None,
            };
            if let (Some(target), FunctionArguments::List(args)) = (target, &mut f.args) {
                f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(target))]);
                args.duplicate_treatment = Some(DuplicateTreatment::Distinct);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

pub fn group_by_window(select: &mut Select) {
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        exprs.push(Expr::Identifier(Ident::new(WINDOWSTART)));
        exprs.push(Expr::Identifier(Ident::new(WINDOWEND)));
    }
}

/// An expression's text without source qualifiers, for matching key expressions
/// against SELECT items (`o.ID` and `ID` name the same column of one source).
pub fn unqualified(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = visit_expressions_mut(&mut e, |x| {
        if let Expr::CompoundIdentifier(parts) = x {
            if let Some(last) = parts.last().cloned() {
                *x = Expr::Identifier(last);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    e.to_string().replace('"', "")
}

/// ksqlDB's `+` also concatenates strings: where an operand is a string (a string
/// literal or column, a cast to STRING, SUBSTRING, another concatenation) `a + b` is
/// planned as `a || b` (NULL if either is NULL).
pub fn string_plus(select: &mut Select, source: &Source) {
    fn is_string(e: &Expr, source: &Source) -> bool {
        match e {
            Expr::Value(v) => matches!(v.value, Value::SingleQuotedString(_)),
            Expr::Identifier(id) => source
                .column(&id.value)
                .is_some_and(|c| c.sql_type == crate::parser::types::SqlType::String),
            Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|id| {
                source
                    .column(&id.value)
                    .is_some_and(|c| c.sql_type == crate::parser::types::SqlType::String)
            }),
            Expr::Nested(inner) => is_string(inner, source),
            Expr::BinaryOp {
                op: BinaryOperator::StringConcat,
                ..
            } => true,
            Expr::Cast { data_type, .. } => super::format::data_type_name(data_type) == "STRING",
            Expr::Function(f) => {
                let name = f.name.to_string().to_ascii_uppercase();
                ["KSQL_SUBSTRING", "CONCAT", "UCASE", "LCASE", "TRIM"].contains(&name.as_str())
            }
            _ => false,
        }
    }
    let _ = visit_expressions_mut(select, |e| {
        if let Expr::BinaryOp { left, op, right } = e {
            if *op == BinaryOperator::Plus && (is_string(left, source) || is_string(right, source))
            {
                *op = BinaryOperator::StringConcat;
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// ksqlDB types an integer literal as INTEGER when it fits (DataFusion as BIGINT): a
/// selected literal keeps ksqlDB's type, so the result's schema is ksqlDB's.
pub fn integer_literals(select: &mut Select) {
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            let fits = matches!(e, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.to_string().parse::<i32>().is_ok()));
            if fits {
                *e = Expr::Cast {
                    kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                    expr: Box::new(e.clone()),
                    data_type: datafusion::sql::sqlparser::ast::DataType::Int(None),
                    array: false,
                    format: None,
                };
            }
        }
    }
}

/// ksqlDB's rules for `MAP(k := v, ...)`: not empty, and neither all keys nor all
/// values NULL (its map type could not be known).
pub fn check_map_constructors(select: &Select) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::visit_expressions;
    // `MAP(null := v)` reaches us as an argument named NULL.
    let is_null = |e: &Expr| match e {
        Expr::Value(v) => v.value == Value::Null,
        Expr::Identifier(id) => id.quote_style.is_none() && id.value.eq_ignore_ascii_case("NULL"),
        _ => false,
    };
    let mut err = None;
    let _ = visit_expressions(select, |e| {
        let Expr::Function(f) = e else {
            return ControlFlow::Continue(());
        };
        if !f.name.to_string().eq_ignore_ascii_case("MAP") {
            return ControlFlow::Continue(());
        }
        let args: &[FunctionArg] = match &f.args {
            FunctionArguments::List(list) => &list.args,
            _ => &[],
        };
        let pairs = named_pairs(args).unwrap_or_default();
        let message = if args.is_empty() {
            "Map constructor cannot be empty. Please supply at least one key value pair (see https://github.com/confluentinc/ksql/issues/4239)."
        } else if !pairs.is_empty() && pairs.iter().all(|(k, _)| is_null(k)) {
            "Cannot construct a map with all NULL keys"
        } else if !pairs.is_empty() && pairs.iter().all(|(_, v)| is_null(v)) {
            "Cannot construct a map with all NULL values"
        } else {
            return ControlFlow::Continue(());
        };
        err = Some(crate::error::Error::semantic(message));
        ControlFlow::Break(())
    });
    err.map_or(Ok(()), Err)
}
