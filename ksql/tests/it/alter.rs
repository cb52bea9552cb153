//! `ALTER STREAM|TABLE ... ADD [COLUMN]` as ksqlDB 0.14+ runs it: new value columns on
//! a source declared with CREATE ... WITH, readable by the queries started after it and
//! kept across a restart (the command topic replays it); refused on CREATE ... AS
//! sinks, on read-only sources, on the other kind and for a name already in use.

use runnel_ksql::entity::Entity;
use serde_json::json;

use crate::common::{wait_for, Stack};

fn field_names(described: &[Entity]) -> Vec<String> {
    match &described[0] {
        Entity::SourceDescription {
            source_description, ..
        } => source_description
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        other => panic!("not a source description: {other:?}"),
    }
}

#[test]
fn alter_adds_columns_that_new_queries_read() {
    let mut stack = Stack::start().unwrap();
    let run = |stack: &Stack, sql: &str| stack.rt.block_on(stack.engine.execute(sql));
    let err = |stack: &Stack, sql: &str| run(stack, sql).unwrap_err().to_string();
    run(&stack, "CREATE STREAM orders (id STRING KEY, qty INT) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);").unwrap();
    let out = run(
        &stack,
        "ALTER STREAM orders ADD COLUMN price DOUBLE, ADD note STRING;",
    )
    .unwrap();
    assert_eq!(
        out[0].command_status().map(|c| c.message.as_str()),
        Some("Stream altered."),
        "{out:?}"
    );
    let described = run(&stack, "DESCRIBE orders;").unwrap();
    assert_eq!(
        field_names(&described),
        ["ROWTIME", "ID", "QTY", "PRICE", "NOTE"]
    );

    run(
        &stack,
        "INSERT INTO orders (id, qty, price, note) VALUES ('o1', 2, 1.5, 'x');",
    )
    .unwrap();
    run(
        &stack,
        "CREATE STREAM priced AS SELECT id, qty * price AS total, note FROM orders;",
    )
    .unwrap();
    wait_for(&stack, "PRICED", "o1", json!({"TOTAL": 3.0, "NOTE": "x"}));

    let e = err(&stack, "ALTER STREAM priced ADD COLUMN extra INT;");
    assert!(
        e.contains("ALTER command is not supported for CREATE ... AS statements."),
        "{e}"
    );
    let e = err(&stack, "ALTER TABLE orders ADD COLUMN extra INT;");
    assert!(
        e.contains("Incompatible data source type is STREAM, but statement was ALTER TABLE"),
        "{e}"
    );
    let e = err(&stack, "ALTER STREAM orders ADD COLUMN qty BIGINT;");
    assert!(
        e.contains(
            "Cannot add column `QTY` to schema. A column with the same name already exists."
        ),
        "{e}"
    );
    run(&stack, "CREATE SOURCE STREAM readonly (id STRING KEY, v INT) WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON');").unwrap();
    let e = err(&stack, "ALTER STREAM readonly ADD COLUMN w INT;");
    assert!(
        e.contains(
            "Cannot alter stream 'READONLY': ALTER operations are not supported on source streams."
        ),
        "{e}"
    );

    stack.restart_engine().unwrap();
    let described = run(&stack, "DESCRIBE orders;").unwrap();
    assert_eq!(
        field_names(&described),
        ["ROWTIME", "ID", "QTY", "PRICE", "NOTE"]
    );
}
