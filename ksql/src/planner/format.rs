//! Expressions as ksqlDB prints them in its messages (its `ExpressionFormatter`):
//! names unquoted, a binary operation in parentheses (`(F1 - F2)`), function names in
//! upper case, string literals single-quoted, types by their ksqlDB names. Messages
//! that quote a user's expression (GROUP BY, joins) use it so they read as ksqlDB's.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    UnaryOperator, Value,
};

/// `e` as ksqlDB prints it.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => id.value.clone(),
        Expr::CompoundIdentifier(parts) => parts
            .iter()
            .map(|p| p.value.as_str())
            .collect::<Vec<_>>()
            .join("."),
        Expr::Nested(inner) => expr(inner),
        Expr::Value(v) => value(&v.value),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Arrow,
            right,
        } => format!("{}->{}", expr(left), expr(right)),
        Expr::BinaryOp { left, op, right } => {
            format!("({} {} {})", expr(left), operator(op), expr(right))
        }
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr: inner,
        } => format!("-{}", expr(inner)),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        } => format!("(NOT {})", expr(inner)),
        Expr::IsNull(inner) => format!("({} IS NULL)", expr(inner)),
        Expr::IsNotNull(inner) => format!("({} IS NOT NULL)", expr(inner)),
        Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => format!(
            "({}{} BETWEEN {} AND {})",
            expr(inner),
            if *negated { " NOT" } else { "" },
            expr(low),
            expr(high)
        ),
        Expr::Like {
            negated,
            expr: inner,
            pattern,
            ..
        } => format!(
            "({}{} LIKE {})",
            expr(inner),
            if *negated { " NOT" } else { "" },
            expr(pattern)
        ),
        Expr::Cast {
            kind: CastKind::Cast,
            expr: inner,
            data_type,
            ..
        } => format!("CAST({} AS {})", expr(inner), data_type_name(data_type)),
        Expr::Substring {
            expr: inner,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![expr(inner)];
            args.extend(substring_from.as_deref().map(expr));
            args.extend(substring_for.as_deref().map(expr));
            format!("SUBSTRING({})", args.join(", "))
        }
        Expr::Function(f) => {
            let name = f.name.to_string().replace('"', "").to_ascii_uppercase();
            // ksqlDB's SUBSTRING runs as `ksql_substring` (see `rewrite::ksql_forms`).
            let name = if name == "KSQL_SUBSTRING" {
                "SUBSTRING".to_string()
            } else {
                name
            };
            let args: Vec<String> = match &f.args {
                FunctionArguments::List(list) => list.args.iter().map(argument).collect(),
                _ => Vec::new(),
            };
            // ksqlDB's parser turns COUNT(*) into COUNT(ROWTIME).
            let args = if name == "COUNT" && args == ["*"] {
                vec!["ROWTIME".to_string()]
            } else {
                args
            };
            format!("{name}({})", args.join(", "))
        }
        other => other.to_string().replace('"', ""),
    }
}

fn argument(a: &FunctionArg) -> String {
    let e = match a {
        FunctionArg::Named { arg, .. }
        | FunctionArg::ExprNamed { arg, .. }
        | FunctionArg::Unnamed(arg) => arg,
    };
    match e {
        FunctionArgExpr::Expr(e) => expr(e),
        FunctionArgExpr::Wildcard | FunctionArgExpr::WildcardWithOptions(_) => "*".to_string(),
        FunctionArgExpr::QualifiedWildcard(n) => format!("{n}.*"),
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Boolean(b) => b.to_string(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

fn operator(op: &BinaryOperator) -> String {
    match op {
        BinaryOperator::NotEq => "<>".to_string(),
        other => other.to_string(),
    }
}

/// A type by the name ksqlDB gives it.
pub fn data_type_name(t: &DataType) -> String {
    match t {
        DataType::Varchar(_)
        | DataType::String(_)
        | DataType::Text
        | DataType::CharVarying(_)
        | DataType::Char(_) => "STRING".to_string(),
        DataType::Int(_) | DataType::Integer(_) => "INTEGER".to_string(),
        DataType::BigInt(_) => "BIGINT".to_string(),
        DataType::Double(_) | DataType::DoublePrecision => "DOUBLE".to_string(),
        DataType::Boolean | DataType::Bool => "BOOLEAN".to_string(),
        other => other.to_string().to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::expr;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn shown(sql: &str) -> String {
        let e = Parser::new(&GenericDialect {})
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .expect("test expression parses");
        expr(&e)
    }

    /// As ksqlDB's ExpressionFormatter prints them in the QTT messages of group-by.json.
    #[test]
    fn formats_as_ksqldb() {
        assert_eq!(shown("F1 - F2"), "(F1 - F2)");
        assert_eq!(shown("F1 * SUM(F2)"), "(F1 * SUM(F2))");
        assert_eq!(shown("SUBSTRING(SOURCE, 0, 1)"), "SUBSTRING(SOURCE, 0, 1)");
        assert_eq!(shown("SUM(COUNT())"), "SUM(COUNT())");
        assert_eq!(shown("COUNT(*)"), "COUNT(ROWTIME)");
        assert_eq!(
            shown("CAST(LEFT_TABLE.FOREIGN_KEY AS VARCHAR)"),
            "CAST(LEFT_TABLE.FOREIGN_KEY AS STRING)"
        );
        assert_eq!(shown("a = 'x'"), "(a = 'x')");
    }
}
