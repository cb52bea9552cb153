//! A `put`'s rows as bulk statements: each table's rows travel as one JSON array
//! parameter read by `json_populate_recordset(NULL::table, ...)`, so a batch is one
//! statement per table and kind — INSERT ... SELECT [ON CONFLICT DO UPDATE], UPDATE ...
//! FROM, DELETE ... USING — instead of a statement text that grows with every row.
//! In upsert and update modes the last operation on a key wins within the batch (a
//! later delete removes an earlier write, a later write replaces it), so deletes and
//! writes touch disjoint keys and their order does not matter; insert mode keeps every
//! row, in order.

use std::collections::HashMap;

use super::json_rows::string as json_string;
use super::sink_config::InsertMode;
use super::sql::{ident, table as table_ident};

/// One row to write or delete; values are JSON cells (`json_rows::cell`).
#[derive(Debug, Clone)]
pub enum Op {
    Write {
        table: String,
        pk: Vec<(String, String)>,
        /// Every column (pk included), with its JSON cell.
        columns: Vec<(String, String)>,
    },
    Delete {
        table: String,
        pk: Vec<(String, String)>,
    },
}

impl Op {
    fn table(&self) -> &str {
        match self {
            Op::Write { table, .. } | Op::Delete { table, .. } => table,
        }
    }
    fn pk(&self) -> &[(String, String)] {
        match self {
            Op::Write { pk, .. } | Op::Delete { pk, .. } => pk,
        }
    }
    /// The cells under their column names: the whole row, or the key of a delete.
    fn cells(&self) -> &[(String, String)] {
        match self {
            Op::Write { columns, .. } => columns,
            Op::Delete { pk, .. } => pk,
        }
    }
}

/// A statement and its rows as a JSON array (`$1`).
#[derive(Debug, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub rows: String,
}

/// The statements for a put's rows; a statement carries at most `max_rows` rows
/// (`batch.size`, as Confluent's sink means it).
pub fn statements<'a>(
    mode: InsertMode,
    ops: impl Iterator<Item = &'a Op>,
    max_rows: usize,
) -> Vec<Statement> {
    let ops: Vec<&Op> = ops.collect();
    let keyless = ops.iter().any(|op| op.pk().is_empty());
    let kept: Vec<&Op> = if mode == InsertMode::Insert || keyless {
        ops
    } else {
        // The last operation on each key of each table.
        let mut last: HashMap<(&str, Vec<&str>), usize> = HashMap::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let key = op.pk().iter().map(|(_, v)| v.as_str()).collect();
            last.insert((op.table(), key), i);
        }
        let mut keep = vec![false; ops.len()];
        for i in last.into_values() {
            keep[i] = true;
        }
        ops.into_iter()
            .zip(keep)
            .filter_map(|(op, k)| k.then_some(op))
            .collect()
    };
    // Groups of rows that share a statement: same table, kind and columns. Insert mode
    // only groups neighbours, so rows stay in order.
    let mut groups: Vec<Vec<&Op>> = Vec::new();
    let same = |a: &Op, b: &Op| {
        a.table() == b.table()
            && matches!(a, Op::Write { .. }) == matches!(b, Op::Write { .. })
            && a.cells().len() == b.cells().len()
            && a.cells().iter().zip(b.cells()).all(|(x, y)| x.0 == y.0)
    };
    for op in kept {
        let group = if mode == InsertMode::Insert {
            groups.last_mut().filter(|g| same(g[0], op))
        } else {
            groups.iter_mut().find(|g| same(g[0], op))
        };
        match group {
            Some(g) => g.push(op),
            None => groups.push(vec![op]),
        }
    }
    groups
        .iter()
        .flat_map(|g| g.chunks(max_rows.max(1)))
        .filter_map(|g| render(mode, g))
        .collect()
}

fn render(mode: InsertMode, group: &[&Op]) -> Option<Statement> {
    let first = group.first()?;
    let table = table_ident(first.table());
    let source = format!("json_populate_recordset(NULL::{table}, $1::text::json)");
    let names: Vec<String> = first.cells().iter().map(|(n, _)| ident(n)).collect();
    let pk: Vec<String> = first.pk().iter().map(|(n, _)| ident(n)).collect();
    let key_match = pk
        .iter()
        .map(|c| format!("d.{c} = r.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let non_key: Vec<&String> = names.iter().filter(|n| !pk.contains(n)).collect();
    let sql = match first {
        Op::Delete { .. } => {
            format!("DELETE FROM {table} AS d USING {source} AS r WHERE {key_match}")
        }
        Op::Write { .. } if mode == InsertMode::Update => {
            if non_key.is_empty() {
                return None;
            }
            let sets: Vec<String> = non_key.iter().map(|c| format!("{c} = r.{c}")).collect();
            format!(
                "UPDATE {table} AS d SET {} FROM {source} AS r WHERE {key_match}",
                sets.join(", ")
            )
        }
        Op::Write { .. } => {
            let cols = names.join(", ");
            let mut sql = format!("INSERT INTO {table} ({cols}) SELECT {cols} FROM {source}");
            if mode == InsertMode::Upsert {
                let pk = pk.join(", ");
                if non_key.is_empty() {
                    sql.push_str(&format!(" ON CONFLICT ({pk}) DO NOTHING"));
                } else {
                    let sets: Vec<String> = non_key
                        .iter()
                        .map(|c| format!("{c} = EXCLUDED.{c}"))
                        .collect();
                    sql.push_str(&format!(
                        " ON CONFLICT ({pk}) DO UPDATE SET {}",
                        sets.join(", ")
                    ));
                }
            }
            sql
        }
    };
    // The column names as JSON keys once; then each row's cells.
    let keys: Vec<String> = first
        .cells()
        .iter()
        .map(|(n, _)| {
            let mut k = String::new();
            json_string(n, &mut k);
            k
        })
        .collect();
    let size: usize = group
        .iter()
        .map(|op| {
            op.cells()
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
                + 2
        })
        .sum();
    let mut rows = String::with_capacity(size + 2);
    rows.push('[');
    for (i, op) in group.iter().enumerate() {
        if i > 0 {
            rows.push(',');
        }
        rows.push('{');
        for (j, ((_, cell), key)) in op.cells().iter().zip(&keys).enumerate() {
            if j > 0 {
                rows.push(',');
            }
            rows.push_str(key);
            rows.push(':');
            rows.push_str(cell);
        }
        rows.push('}');
    }
    rows.push(']');
    Some(Statement { sql, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(table: &str, id: &str, v: &str) -> Op {
        Op::Write {
            table: table.into(),
            pk: vec![("id".into(), id.into())],
            columns: vec![("id".into(), id.into()), ("v".into(), v.into())],
        }
    }

    fn delete(table: &str, id: &str) -> Op {
        Op::Delete {
            table: table.into(),
            pk: vec![("id".into(), id.into())],
        }
    }

    #[test]
    fn one_statement_per_table_and_kind_with_the_last_operation_per_key() {
        let ops = [
            write("t", "1", "\"a\""),
            write("t", "1", "\"b\""),
            write("t", "2", "\"c\""),
            delete("t", "2"),
            write("u", "1", "\"x\""),
            write("t", "3", "\"d\""),
            delete("t", "4"),
            write("t", "4", "\"e\""),
        ];
        let s = statements(InsertMode::Upsert, ops.iter(), 100);
        let upsert = |t: &str| {
            format!(
                "INSERT INTO \"{t}\" (\"id\", \"v\") SELECT \"id\", \"v\" FROM json_populate_recordset(NULL::\"{t}\", $1::text::json) ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""
            )
        };
        assert_eq!(
            s,
            vec![
                Statement {
                    sql: upsert("t"),
                    rows: r#"[{"id":1,"v":"b"},{"id":3,"v":"d"},{"id":4,"v":"e"}]"#.into(),
                },
                Statement {
                    sql: "DELETE FROM \"t\" AS d USING json_populate_recordset(NULL::\"t\", $1::text::json) AS r WHERE d.\"id\" = r.\"id\"".into(),
                    rows: r#"[{"id":2}]"#.into(),
                },
                Statement {
                    sql: upsert("u"),
                    rows: r#"[{"id":1,"v":"x"}]"#.into(),
                },
            ]
        );
        // Insert mode keeps every row, in order.
        let i = statements(InsertMode::Insert, ops[..3].iter(), 100);
        assert_eq!(i.len(), 1);
        assert_eq!(
            i[0].rows,
            r#"[{"id":1,"v":"a"},{"id":1,"v":"b"},{"id":2,"v":"c"}]"#
        );
        let u = statements(InsertMode::Update, ops[..2].iter(), 100);
        assert_eq!(
            u,
            vec![Statement {
                sql: "UPDATE \"t\" AS d SET \"v\" = r.\"v\" FROM json_populate_recordset(NULL::\"t\", $1::text::json) AS r WHERE d.\"id\" = r.\"id\"".into(),
                rows: r#"[{"id":1,"v":"b"}]"#.into(),
            }]
        );
    }
}
