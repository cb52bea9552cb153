//! A `put`'s rows as bulk statements: each table's rows of one kind are streamed with
//! `COPY ... FROM STDIN` into a staging table (dropped at commit) with the table's
//! column types, then moved with one statement — INSERT ... SELECT [ON CONFLICT DO
//! UPDATE], UPDATE ... FROM, DELETE ... USING; insert mode copies straight into the
//! table. COPY is PostgreSQL's cheapest way in: its text format costs the server less
//! than parsing a JSON parameter (measured in the README).
//! In upsert and update modes the last operation on a key wins within the batch (a
//! later delete removes an earlier write, a later write replaces it), so deletes and
//! writes touch disjoint keys and their order does not matter; insert mode keeps every
//! row, in order.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::sink_config::InsertMode;
use super::sql::{ident, table as table_ident};

/// The table and column names rows of one shape share.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub table: Arc<str>,
    /// Every column of a write (pk included), or the key columns of a delete.
    pub names: Arc<[String]>,
    pub pk: Arc<[String]>,
}

impl Columns {
    fn same(&self, other: &Columns) -> bool {
        let names = Arc::ptr_eq(&self.names, &other.names) || self.names == other.names;
        names && self.table == other.table
    }
}

/// One row to write or delete, as COPY text fields (`copy_rows::field`).
#[derive(Debug, Clone)]
pub enum Op {
    Write {
        columns: Columns,
        /// The primary key's fields, tab-separated (last write per key wins).
        key: String,
        /// Every field, tab-separated, in `columns.names` order.
        line: String,
    },
    Delete {
        columns: Columns,
        /// The key's fields, tab-separated: the whole row.
        key: String,
    },
}

impl Op {
    fn columns(&self) -> &Columns {
        match self {
            Op::Write { columns, .. } | Op::Delete { columns, .. } => columns,
        }
    }
    fn key(&self) -> &str {
        match self {
            Op::Write { key, .. } | Op::Delete { key, .. } => key,
        }
    }
    /// The row's COPY line, without its newline.
    fn line(&self) -> &str {
        match self {
            Op::Write { line, .. } => line,
            Op::Delete { key, .. } => key,
        }
    }
}

/// Rows streamed with COPY, and the statements around it.
#[derive(Debug, PartialEq)]
pub struct Statement {
    /// Run first: creates the staging table, if the rows go through one.
    pub setup: Option<String>,
    /// `COPY ... FROM STDIN`.
    pub copy: String,
    /// The rows in COPY's text format, `batch.size` rows per COPY data message.
    pub rows: Vec<String>,
    /// Run last: the staged rows into the table (upsert, update or delete).
    pub apply: Option<String>,
}

/// The statements for a put's rows: one per table, kind and columns (insert mode: per
/// run of neighbours), its rows sent `max_rows` (`batch.size`) at a time.
pub fn statements<'a>(
    mode: InsertMode,
    ops: impl Iterator<Item = &'a Op>,
    max_rows: usize,
) -> Vec<Statement> {
    let ops: Vec<&Op> = ops.collect();
    let keyless = ops.iter().any(|op| op.columns().pk.is_empty());
    let kept: Vec<&Op> = if mode == InsertMode::Insert || keyless {
        ops
    } else {
        // The last operation on each key of each table.
        let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            last.insert((&op.columns().table, op.key()), i);
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
        matches!(a, Op::Write { .. }) == matches!(b, Op::Write { .. })
            && a.columns().same(b.columns())
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
        .filter_map(|g| render(mode, g, max_rows.max(1)))
        .collect()
}

fn render(mode: InsertMode, group: &[&Op], max_rows: usize) -> Option<Statement> {
    let first = group.first()?;
    let columns = first.columns();
    let table = table_ident(&columns.table);
    let names: Vec<String> = columns.names.iter().map(|n| ident(n)).collect();
    let cols = names.join(", ");
    let pk: Vec<String> = columns.pk.iter().map(|n| ident(n)).collect();
    let key_match = pk
        .iter()
        .map(|c| format!("d.{c} = r.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let non_key: Vec<&String> = names.iter().filter(|n| !pk.contains(n)).collect();
    // The rows go to a staging table with the target's column types, made once per
    // connection and shape and emptied at every commit (creating one per put costs the
    // server more than the COPY saves); insert mode copies straight into the table.
    let stage = {
        let mut h = std::hash::DefaultHasher::new();
        (&table, &cols).hash(&mut h);
        format!("runnel_stage_{:016x}", h.finish())
    };
    let apply = match first {
        Op::Delete { .. } => Some(format!(
            "DELETE FROM {table} AS d USING {stage} AS r WHERE {key_match}"
        )),
        Op::Write { .. } if mode == InsertMode::Update => {
            if non_key.is_empty() {
                return None;
            }
            let sets: Vec<String> = non_key.iter().map(|c| format!("{c} = r.{c}")).collect();
            Some(format!(
                "UPDATE {table} AS d SET {} FROM {stage} AS r WHERE {key_match}",
                sets.join(", ")
            ))
        }
        Op::Write { .. } if mode == InsertMode::Upsert => {
            let pk = pk.join(", ");
            let action = if non_key.is_empty() {
                "NOTHING".to_string()
            } else {
                let sets: Vec<String> = non_key
                    .iter()
                    .map(|c| format!("{c} = EXCLUDED.{c}"))
                    .collect();
                format!("UPDATE SET {}", sets.join(", "))
            };
            Some(format!(
                "INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({pk}) DO {action}"
            ))
        }
        Op::Write { .. } => None,
    };
    let (setup, copy) = match apply {
        Some(_) => (
            Some(format!(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {cols} FROM {table} WITH NO DATA"
            )),
            format!("COPY {stage} ({cols}) FROM STDIN"),
        ),
        None => (None, format!("COPY {table} ({cols}) FROM STDIN")),
    };
    let rows = group
        .chunks(max_rows)
        .map(|chunk| {
            let size: usize = chunk.iter().map(|op| op.line().len() + 1).sum();
            let mut rows = String::with_capacity(size);
            for op in chunk {
                rows.push_str(op.line());
                rows.push('\n');
            }
            rows
        })
        .collect();
    Some(Statement {
        setup,
        copy,
        rows,
        apply,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(table: &str, names: &[&str]) -> Columns {
        Columns {
            table: table.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            pk: ["id".to_string()].into(),
        }
    }

    fn write(table: &str, id: &str, v: &str) -> Op {
        Op::Write {
            columns: columns(table, &["id", "v"]),
            key: id.into(),
            line: format!("{id}\t{v}"),
        }
    }

    fn delete(table: &str, id: &str) -> Op {
        Op::Delete {
            columns: columns(table, &["id"]),
            key: id.into(),
        }
    }

    /// The staging table a statement copies into.
    fn stage(s: &Statement) -> &str {
        s.copy
            .strip_prefix("COPY ")
            .and_then(|c| c.split(' ').next())
            .unwrap()
    }

    #[test]
    fn one_statement_per_table_and_kind_with_the_last_operation_per_key() {
        let ops = [
            write("t", "1", "a"),
            write("t", "1", "b"),
            write("t", "2", "c"),
            delete("t", "2"),
            write("u", "1", "x"),
            write("t", "3", "d"),
            delete("t", "4"),
            write("t", "4", "e"),
        ];
        let s = statements(InsertMode::Upsert, ops.iter(), 100);
        assert_eq!(s.len(), 3);
        let expect = |s: &Statement, t: &str, cols: &str, rows: &str, apply: String| {
            let st = stage(s);
            assert!(st.starts_with("runnel_stage_"), "{st}");
            assert_eq!(
                s.setup.as_deref(),
                Some(format!("CREATE TEMP TABLE IF NOT EXISTS {st} ON COMMIT DELETE ROWS AS SELECT {cols} FROM \"{t}\" WITH NO DATA").as_str())
            );
            assert_eq!(s.copy, format!("COPY {st} ({cols}) FROM STDIN"));
            assert_eq!(s.rows, vec![rows.to_string()]);
            assert_eq!(
                s.apply.as_deref(),
                Some(apply.replace("STAGE", st).as_str())
            );
        };
        let upsert = |t: &str| {
            format!("INSERT INTO \"{t}\" (\"id\", \"v\") SELECT \"id\", \"v\" FROM STAGE ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\"")
        };
        let cols = "\"id\", \"v\"";
        expect(&s[0], "t", cols, "1\tb\n3\td\n4\te\n", upsert("t"));
        expect(
            &s[1],
            "t",
            "\"id\"",
            "2\n",
            "DELETE FROM \"t\" AS d USING STAGE AS r WHERE d.\"id\" = r.\"id\"".into(),
        );
        expect(&s[2], "u", cols, "1\tx\n", upsert("u"));
        // One staging table per table and columns, the same in every put.
        assert!(stage(&s[0]) != stage(&s[1]) && stage(&s[0]) != stage(&s[2]));
        let again = statements(InsertMode::Upsert, ops[5..6].iter(), 100);
        assert_eq!(stage(&again[0]), stage(&s[0]));
        // Insert mode keeps every row, in order, and copies into the table itself.
        let i = statements(InsertMode::Insert, ops[..3].iter(), 100);
        assert_eq!(
            i,
            vec![Statement {
                setup: None,
                copy: "COPY \"t\" (\"id\", \"v\") FROM STDIN".into(),
                rows: vec!["1\ta\n1\tb\n2\tc\n".into()],
                apply: None,
            }]
        );
        let u = statements(InsertMode::Update, ops[..2].iter(), 100);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].rows, vec!["1\tb\n".to_string()]);
        assert_eq!(
            u[0].apply.as_deref(),
            Some(
                format!(
                    "UPDATE \"t\" AS d SET \"v\" = r.\"v\" FROM {} AS r WHERE d.\"id\" = r.\"id\"",
                    stage(&u[0])
                )
                .as_str()
            )
        );
        // batch.size splits a statement's rows into COPY data messages.
        let parts = statements(InsertMode::Insert, ops[..3].iter(), 2);
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].rows,
            vec!["1\ta\n1\tb\n".to_string(), "2\tc\n".into()]
        );
    }
}
