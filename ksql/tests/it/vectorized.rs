//! A stateless stream query (filter and projection) runs vectorized: the Streams
//! runtime hands its processor batches of records and DataFusion evaluates each filter
//! and projection once per batch. The output must be what ksqlDB writes row by row:
//! every record in input order, an expression that fails on one row (a division by
//! zero) NULL for that row only, a tombstone dropped by the WHERE, a malformed record
//! skipped without stopping the rest of its batch.

use serde_json::{json, Value};

use crate::common::{produce, some, Raw, Stack};

#[test]
fn a_vectorized_filter_and_projection_match_row_by_row_results() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("SET 'auto.offset.reset'='earliest';");
    run(
        "CREATE STREAM nums (k STRING KEY, id INT, d INT, name STRING)
           WITH (KAFKA_TOPIC='nums', VALUE_FORMAT='JSON', PARTITIONS=1);",
    );
    let n = 5000;
    let divisor = |i: i32| if i == 2500 { 0 } else { 1 + i % 5 };
    let records: Vec<Raw> = (0..n)
        .map(|i| {
            let key = some(format!("k{i}").as_bytes());
            let value = if i % 50 == 49 {
                None
            } else if i % 97 == 96 {
                some(b"{not json")
            } else {
                some(
                    json!({"id": i, "d": divisor(i), "name": format!("n{i}")})
                        .to_string()
                        .as_bytes(),
                )
            };
            (key, value)
        })
        .collect();
    produce(&stack.broker.bootstrap, "nums", &records);
    run(
        "CREATE STREAM out AS SELECT k, id, 700 / d AS q, UCASE(name) AS up
           FROM nums WHERE id % 3 <> 0;",
    );

    let expected: Vec<(String, Value)> = (0..n)
        .filter(|i| i % 50 != 49 && i % 97 != 96 && i % 3 != 0)
        .map(|i| {
            let q = match divisor(i) {
                0 => Value::Null,
                d => json!(700 / d),
            };
            (
                format!("k{i}"),
                json!({"ID": i, "Q": q, "UP": format!("N{i}")}),
            )
        })
        .collect();
    let got = runnel_testkit::wait_until(
        "every result in OUT",
        60,
        || {
            stack
                .rt
                .block_on(stack.engine.kafka().read_all("OUT"))
                .unwrap()
        },
        |records| records.len() >= expected.len(),
    );
    let got: Vec<(String, Value)> = got
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                serde_json::from_slice(r.value.as_deref().unwrap_or(b"null")).unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}
