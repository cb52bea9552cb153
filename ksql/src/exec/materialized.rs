//! Pull queries served from a persistent query's state store, as ksqlDB serves them
//! from its materialized views: a table that an aggregation maintains is read from
//! the aggregation's store — one lookup per key when WHERE names the key, else every
//! group — instead of from its topic. Each stored group becomes the row its latest
//! record on the topic holds: its accumulators' results, through HAVING and the
//! projection, encoded in the sink's formats and decoded as a table row, so both ways
//! give the same rows.
//!
//! The store is only used when this instance holds every partition of it and the
//! query is running (a restoring task registers its store once restored); otherwise,
//! and for tables no single aggregation writes, the pull query reads the topic.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Ident, Value};
use runnel_streams::state::StoreHandle;

use super::aggregate::group_key;
use super::compiled::{Compiled, AGG_STORE};
use super::processor::QueryProcessor;
use super::transient::decode_parts;
use crate::catalog::{Column, Source};
use crate::error::{Error, Result};
use crate::format::Row;
use crate::parser::types::SqlType;

/// At most this many key lookups for one pull query (`IN` lists multiply); more
/// read every group.
const MAX_LOOKUPS: usize = 10_000;

/// A table's materialization here: the aggregation writing it and this instance's
/// instances of its store, by partition.
#[derive(Clone)]
pub struct Materialized {
    pub compiled: Arc<Compiled>,
    pub stores: BTreeMap<i32, StoreHandle>,
    /// The store's partitions: those of the aggregation's input topic.
    pub partitions: Option<i32>,
}

/// Whether pull queries on `q`'s sink can be served from `q`'s store: an aggregation
/// over one source whose results are emitted as they change (EMIT FINAL's store also
/// holds the windows it has not emitted yet).
pub fn serves(q: &Compiled) -> bool {
    q.pipeline.agg.is_some() && q.join.is_none() && !q.emit_final
}

/// The store the pull queries of a query [`serves`] read.
pub const STORE: &str = AGG_STORE;

fn engine(e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("materialized table: {e}"))
}

impl Materialized {
    /// Whether this instance holds every partition of the store.
    pub fn complete(&self) -> bool {
        self.partitions
            .is_some_and(|n| n > 0 && (0..n).all(|p| self.stores.contains_key(&p)))
    }

    /// The table's rows now: every group's, or those of the groups `keys` (as
    /// [`key_lookups`] gives them) hold. Blocks on the stores' locks.
    pub fn rows(&self, keys: Option<&[Vec<u8>]>) -> Result<Vec<Row>> {
        let p = QueryProcessor::new(self.compiled.clone());
        let sink = &self.compiled.sink;
        let key_cols: Vec<&Column> = sink.key_columns().collect();
        let value_cols: Vec<&Column> = sink.value_columns().collect();
        let windowed = self.compiled.window.is_some();
        let mut rows = Vec::new();
        for (partition, h) in &self.stores {
            let entries = match keys {
                None => h
                    .range(Bound::Unbounded, Bound::Unbounded)
                    .map_err(engine)?,
                Some(keys) => lookup(h, keys, windowed)?,
            };
            for (k, v) in entries {
                let Some((out, window, ts)) = p.stored_output(&k, h.value(&v))? else {
                    continue;
                };
                let ts = p.sink_time(&out)?.unwrap_or(ts);
                let (kb, vb) = p.encode_output(&out, window, (&key_cols, &value_cols))?;
                // Offsets are the topic's: a store has none (a query naming ROWOFFSET
                // or ROWPARTITION reads the topic).
                let meta = (ts, *partition, -1);
                if let Some(row) = decode_parts(sink, kb.as_deref(), Some(&vb), &[], meta)? {
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }
}

/// The entries of the groups `keys`: one `get` each, or for a windowed store every
/// window of the group (its key followed by the window's bounds).
fn lookup(h: &StoreHandle, keys: &[Vec<u8>], windowed: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for k in keys {
        if windowed {
            let mut end = k.clone();
            end.extend_from_slice(&[0xFF; 16]);
            let found = h
                .range(Bound::Included(k), Bound::Included(&end))
                .map_err(engine)?;
            out.extend(found.into_iter().filter(|(e, _)| e.len() == k.len() + 16));
        } else if let Some(v) = h.get(k).map_err(engine)? {
            out.push((k.clone(), v));
        }
    }
    Ok(out)
}

/// The store keys (without windows) of the groups a pull query's WHERE can only
/// match: every key column compared with `=` or `IN` to literals of its own type, in
/// a conjunction. `None` when WHERE leaves a key column open (the query reads every
/// group). DataFusion still applies the whole WHERE to the rows found, so this only
/// narrows what is read.
pub fn key_lookups(selection: Option<&Expr>, sink: &Source) -> Option<Vec<Vec<u8>>> {
    let mut conjuncts = Vec::new();
    flatten_and(selection?, &mut conjuncts);
    let mut per_column: Vec<Vec<ScalarValue>> = Vec::new();
    for c in sink.key_columns() {
        let found = conjuncts
            .iter()
            .find_map(|e| candidates(e, c))
            .filter(|v| !v.is_empty())?;
        per_column.push(found);
    }
    if per_column.is_empty() {
        return None;
    }
    let mut keys: Vec<Vec<ScalarValue>> = vec![Vec::new()];
    for values in per_column {
        if keys.len() * values.len() > MAX_LOOKUPS {
            return None;
        }
        keys = keys
            .iter()
            .flat_map(|k| {
                values.iter().map(move |v| {
                    let mut k = k.clone();
                    k.push(v.clone());
                    k
                })
            })
            .collect();
    }
    Some(keys.iter().map(|k| group_key(k, None)).collect())
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        Expr::Nested(inner) => flatten_and(inner, out),
        other => out.push(other),
    }
}

/// The values `e` allows key column `c`: `c = v`, `v = c` or `c IN (v, ...)`.
fn candidates(e: &Expr, c: &Column) -> Option<Vec<ScalarValue>> {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (col, lit) = if names(left, c) {
                (left, right)
            } else {
                (right, left)
            };
            (names(col, c)).then(|| literal(lit, &c.sql_type).map(|v| vec![v]))?
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } if names(expr, c) => list.iter().map(|l| literal(l, &c.sql_type)).collect(),
        _ => None,
    }
}

/// Whether `e` names column `c` (unquoted names compare upper-cased, as ksqlDB's).
fn names(e: &Expr, c: &Column) -> bool {
    let ident = |i: &Ident| match i.quote_style {
        Some(_) => i.value == c.name,
        None => i.value.eq_ignore_ascii_case(&c.name) && c.name == c.name.to_uppercase(),
    };
    match e {
        Expr::Identifier(i) => ident(i),
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(ident),
        Expr::Nested(inner) => names(inner, c),
        _ => false,
    }
}

/// A literal as a key of type `t`, only where DataFusion's comparison of the column
/// with it is plain equality of values (a string with a string, an integer with an
/// integer that fits).
fn literal(e: &Expr, t: &SqlType) -> Option<ScalarValue> {
    let Expr::Value(v) = e else { return None };
    match (&v.value, t) {
        (Value::SingleQuotedString(s), SqlType::String) => Some(ScalarValue::Utf8(Some(s.clone()))),
        (Value::Number(n, _), SqlType::Integer) => {
            n.parse::<i32>().ok().map(|i| ScalarValue::Int32(Some(i)))
        }
        (Value::Number(n, _), SqlType::Bigint) => {
            n.parse::<i64>().ok().map(|i| ScalarValue::Int64(Some(i)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Format;
    use crate::parser::ast::{SourceKind, Statement};
    use datafusion::sql::sqlparser::ast::SetExpr;

    fn table(keys: &[(&str, SqlType)]) -> Source {
        let mut columns: Vec<Column> = keys
            .iter()
            .map(|(n, t)| Column::new(*n, t.clone(), true))
            .collect();
        columns.push(Column::new("N", SqlType::Bigint, false));
        Source {
            name: "T".into(),
            kind: SourceKind::Table,
            topic: "T".into(),
            key_format: Format::Kafka,
            value_format: Format::Json,
            columns,
            timestamp: None,
            timestamp_format: None,
            wrap_single_value: true,
            windowed: None,
            window_size_ms: None,
            written_by: Vec::new(),
            read_only: false,
        }
    }

    fn lookups(t: &Source, wh: &str) -> Option<Vec<String>> {
        let s = crate::parser::parse_one(&format!("SELECT * FROM t WHERE {wh};")).unwrap();
        let Statement::Select(q) = s.statement else {
            panic!("not a select")
        };
        let SetExpr::Select(select) = q.query.body.as_ref() else {
            panic!("not a select body")
        };
        key_lookups(select.selection.as_ref(), t).map(|ks| {
            ks.into_iter()
                .map(|k| String::from_utf8(k).unwrap())
                .collect()
        })
    }

    #[test]
    fn where_clauses_that_pin_the_key_become_lookups() {
        let t = table(&[("ID", SqlType::String)]);
        assert_eq!(lookups(&t, "id = 'a'"), Some(vec![r#"["a"]"#.into()]));
        assert_eq!(
            lookups(&t, "'a' = t.id AND n > 3"),
            Some(vec![r#"["a"]"#.into()])
        );
        assert_eq!(
            lookups(&t, "(n > 3 AND id IN ('a', 'b\"c'))"),
            Some(vec![r#"["a"]"#.into(), r#"["b\"c"]"#.into()])
        );
        // Anything that leaves the key open reads every group.
        for open in [
            "id > 'a'",
            "id = 'a' OR id = 'b'",
            "id NOT IN ('a')",
            "n = 3",
            "id = 5",
            "\"id\" = 'a'",
        ] {
            assert_eq!(lookups(&t, open), None, "{open}");
        }
        let t = table(&[("A", SqlType::Integer), ("B", SqlType::Bigint)]);
        assert_eq!(
            lookups(&t, "a IN (1, 2) AND b = 30000000000"),
            Some(vec!["[1,30000000000]".into(), "[2,30000000000]".into()])
        );
        assert_eq!(lookups(&t, "a = 1"), None);
        assert_eq!(lookups(&t, "a = 3000000000 AND b = 1"), None);
        assert_eq!(lookups(&t, "a = '1' AND b = 1"), None);
    }
}
