use crate::catalog::{Catalog, Column, Format, Source};
use crate::parser::ast::{SourceKind, Statement};
use crate::parser::types::SqlType;

fn source(name: &str, kind: SourceKind, cols: &[(&str, SqlType, bool)]) -> Source {
    Source {
        name: name.into(),
        kind,
        topic: name.to_lowercase(),
        key_format: Format::Kafka,
        value_format: Format::Json,
        columns: cols
            .iter()
            .map(|(n, t, k)| Column::new(*n, t.clone(), *k))
            .collect(),
        timestamp: None,
        timestamp_format: None,
        wrap_single_value: true,
        windowed: None,
        window_size_ms: None,
        written_by: Vec::new(),
        read_only: false,
    }
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    c.sources.insert(
        "ORDERS".into(),
        source(
            "ORDERS",
            SourceKind::Stream,
            &[
                ("ID", SqlType::String, true),
                ("ITEM", SqlType::String, false),
                ("QTY", SqlType::Integer, false),
            ],
        ),
    );
    c.sources.insert(
        "ITEMS".into(),
        source(
            "ITEMS",
            SourceKind::Table,
            &[
                ("ITEM", SqlType::String, true),
                ("PRICE", SqlType::Double, false),
            ],
        ),
    );
    c
}

/// Plans a SELECT over the test catalog (ORDERS: ID STRING KEY, ITEM STRING, QTY INT).
pub(crate) fn plan(sql: &str) -> crate::Result<super::QueryPlan> {
    let Statement::Select(q) = crate::parser::parse_one(sql)?.statement else {
        panic!("{sql}")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(super::plan(&q, &catalog()))
}

fn keys(p: &super::QueryPlan) -> Vec<&str> {
    p.columns
        .iter()
        .filter(|c| c.key)
        .map(|c| c.name.as_str())
        .collect()
}

#[test]
fn projection_keeps_the_key_and_names_expressions() {
    let p = plan("SELECT id, qty + qty, UCASE(item) AS item FROM orders WHERE qty > 1").unwrap();
    assert_eq!(p.kind, SourceKind::Stream);
    assert_eq!(keys(&p), ["ID"]);
    let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ID", "KSQL_COL_0", "ITEM"]);
    assert_eq!(p.columns[1].sql_type, SqlType::Integer);
    assert!(p.pipeline.agg.is_none() && !p.repartition);
}

#[test]
fn aggregates_are_tables_keyed_by_group_and_repartition_off_key() {
    let p = plan("SELECT item, COUNT(*) AS n, SUM(qty) AS total FROM orders GROUP BY item HAVING SUM(qty) > 2").unwrap();
    assert_eq!(p.kind, SourceKind::Table);
    assert_eq!(keys(&p), ["ITEM"]);
    assert!(
        p.repartition,
        "grouping by a value column needs a repartition"
    );
    assert_eq!(
        p.pipeline.agg.as_ref().unwrap().aggs.len(),
        2,
        "HAVING shares SUM(qty) with the projection"
    );
    let p = plan("SELECT id, COUNT(*) FROM orders WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id")
        .unwrap();
    assert!(!p.repartition, "grouping by the key needs none");
    assert_eq!(p.window.unwrap().size_ms, 60_000);
}

#[test]
fn partition_by_and_joins_choose_the_key() {
    let p = plan("SELECT item, id, qty FROM orders PARTITION BY item").unwrap();
    assert_eq!(keys(&p), ["ITEM"]);
    let p = plan("SELECT o.item AS item, o.qty * i.price AS cost FROM orders o JOIN items i ON o.item = i.item").unwrap();
    assert_eq!(p.kind, SourceKind::Stream);
    assert_eq!(keys(&p), ["ITEM"]);
    assert!(
        p.join.as_ref().unwrap().left_rekey,
        "the stream joins on a value column"
    );
    let p = plan("SELECT * FROM orders o JOIN items i ON o.item = i.item").unwrap();
    let names: Vec<_> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["O_ID", "O_ITEM", "O_QTY", "I_ITEM", "I_PRICE"]);
}

#[test]
fn semantic_errors_name_the_column_or_source() {
    let e = |sql: &str| plan(sql).unwrap_err().to_string();
    assert_eq!(
        e("SELECT nope FROM orders"),
        "SELECT column 'NOPE' cannot be resolved."
    );
    assert_eq!(e("SELECT * FROM missing"), "MISSING does not exist.");
    assert!(e("SELECT id FROM orders WHERE qty = 'x'")
        .contains("Cannot compare QTY (INTEGER) to 'x' (STRING) with EQUAL"));
    assert!(e("SELECT item, qty, COUNT(*) FROM orders GROUP BY item")
        .contains("not part of GROUP BY: QTY"));
    assert!(e("SELECT * FROM orders a JOIN orders b ON a.id = b.id").contains("WITHIN"));
    assert!(e("SELECT * FROM items i JOIN orders o ON i.item = o.item")
        .contains("table-stream joins are not supported"));
    assert!(e("SELECT id, COUNT(*) FROM orders GROUP BY id EMIT FINAL")
        .contains("EMIT FINAL is only supported for windowed aggregations"));
}
