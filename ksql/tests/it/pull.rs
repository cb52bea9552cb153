//! Pull queries on a table an aggregation maintains are answered from the
//! aggregation's state store, as ksqlDB answers them from its materialized view
//! (ksqlDB docs, "SELECT (Pull Query)": "Pulls the current value from the
//! materialized view"): by key, by IN list, by range and by window bounds, with the
//! rows the table's topic holds (latest per key). A record written to the table's
//! topic by something else than the query is not in the view.

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};

use crate::common::Stack;

/// Aligned to a minute, so that 1-minute windows start at BASE + k * 60 s.
const BASE: i64 = 1_680_000_000_000;
const ORDERS: i64 = 600;
const CUSTOMERS: i64 = 20;

fn produce_at(bootstrap: &str, topic: &str, records: &[(String, Value, i64)]) {
    let p: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (k, v, ts) in records {
        let v = v.to_string();
        let r: BaseRecord<'_, str, str> = BaseRecord::to(topic)
            .key(k.as_str())
            .payload(v.as_str())
            .timestamp(*ts);
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(std::time::Duration::from_secs(30)).unwrap();
}

fn rows(stack: &Stack, sql: &str) -> Vec<Vec<Value>> {
    stack.rt.block_on(async {
        let mut q = stack
            .engine
            .query(sql, &Default::default())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut out = Vec::new();
        while let Some(r) = q.rows.recv().await {
            out.push(r.unwrap());
        }
        out.sort_by_key(|r| r.iter().map(Value::to_string).collect::<Vec<_>>());
        out
    })
}

/// `CREATE TABLE <name> (...)` over `table`'s topic with `table`'s columns: the same
/// table read from its topic.
fn topic_copy(stack: &Stack, table: &str, name: &str, extra: &str) -> String {
    let catalog = stack.rt.block_on(stack.engine.catalog());
    let t = &catalog.sources[table];
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let key = if c.key { " PRIMARY KEY" } else { "" };
            format!("{} {}{key}", c.name, c.sql_type)
        })
        .collect();
    format!(
        "CREATE TABLE {name} ({}) WITH (KAFKA_TOPIC='{}', VALUE_FORMAT='JSON'{extra});",
        cols.join(", "),
        t.topic
    )
}

#[test]
fn pull_queries_read_the_aggregations_state_store() {
    let mut stack = Stack::start().unwrap();
    let run = |stack: &Stack, sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run(
        &stack,
        "CREATE STREAM orders (id STRING KEY, customer STRING, amount INT)
           WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=2);
         CREATE TABLE by_customer AS SELECT customer, COUNT(*) AS n, SUM(amount) AS total,
           MAX(amount) AS top FROM orders GROUP BY customer HAVING COUNT(*) > 1;
         CREATE TABLE per_minute AS SELECT customer, COUNT(*) AS n FROM orders
           WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY customer;",
    );
    // Customer c<i % 20>, one order a second; two customers order once (HAVING keeps
    // them out of BY_CUSTOMER).
    let mut records: Vec<(String, Value, i64)> = (0..ORDERS)
        .map(|i| {
            let v = json!({"CUSTOMER": format!("c{}", i % CUSTOMERS), "AMOUNT": i % 50});
            (format!("o{i}"), v, BASE + i * 1000)
        })
        .collect();
    for (i, solo) in ["solo1", "solo2"].iter().enumerate() {
        let v = json!({"CUSTOMER": solo, "AMOUNT": 1});
        records.push((format!("s{i}"), v, BASE + i as i64));
    }
    produce_at(&stack.broker.bootstrap, "orders", &records);

    run(
        &stack,
        &topic_copy(&stack, "BY_CUSTOMER", "by_customer_topic", ""),
    );
    run(
        &stack,
        &topic_copy(
            &stack,
            "PER_MINUTE",
            "per_minute_topic",
            ", WINDOW_TYPE='TUMBLING', WINDOW_SIZE='1 MINUTE'",
        ),
    );
    // Both queries are done once the topics hold every order.
    let counted = |sql: &str, col: usize| -> i64 {
        rows(&stack, sql)
            .iter()
            .map(|r| r[col].as_i64().unwrap_or(0))
            .sum()
    };
    runnel_testkit::wait_until(
        "the tables' topics to count every order",
        60,
        || {
            (
                counted("SELECT n FROM by_customer_topic;", 0),
                counted("SELECT n FROM per_minute_topic;", 0),
            )
        },
        |(a, b)| *a == ORDERS && *b == ORDERS + 2,
    );

    // The expected figures, computed here.
    let expect = |c: i64| {
        let amounts: Vec<i64> = (0..ORDERS)
            .filter(|i| i % CUSTOMERS == c)
            .map(|i| i % 50)
            .collect();
        json!([
            format!("c{c}"),
            amounts.len(),
            amounts.iter().sum::<i64>(),
            amounts.iter().max()
        ])
    };
    let by_key = rows(&stack, "SELECT * FROM by_customer WHERE customer = 'c3';");
    assert_eq!(by_key, vec![expect(3).as_array().unwrap().clone()]);
    assert_eq!(
        rows(
            &stack,
            "SELECT customer, total FROM by_customer WHERE customer IN ('c1', 'c12', 'nobody');"
        ),
        vec![
            vec![json!("c1"), expect(1)[2].clone()],
            vec![json!("c12"), expect(12)[2].clone()]
        ]
    );
    assert!(rows(
        &stack,
        "SELECT * FROM by_customer WHERE customer = 'solo1';"
    )
    .is_empty());
    let all = rows(&stack, "SELECT * FROM by_customer;");
    assert_eq!(all.len(), CUSTOMERS as usize);
    assert_eq!(all, rows(&stack, "SELECT * FROM by_customer_topic;"));
    assert_eq!(
        rows(
            &stack,
            "SELECT customer, n FROM by_customer WHERE customer > 'c5' AND top > 40;"
        ),
        rows(
            &stack,
            "SELECT customer, n FROM by_customer_topic WHERE customer > 'c5' AND top > 40;"
        )
    );

    // Windowed: each customer has 3 orders in each minute.
    let windows = "SELECT customer, WINDOWSTART, WINDOWEND, n FROM per_minute
                   WHERE customer = 'c3' AND WINDOWSTART >= 1680000120000 AND WINDOWSTART < 1680000300000;";
    let want: Vec<Vec<Value>> = (2..5)
        .map(|m| {
            let start = BASE + m * 60_000;
            vec![json!("c3"), json!(start), json!(start + 60_000), json!(3)]
        })
        .collect();
    assert_eq!(rows(&stack, windows), want);
    // The same bounds as ISO-8601 datestrings (UTC, and +02:00).
    let by_dates = "SELECT customer, WINDOWSTART, WINDOWEND, n FROM per_minute
                    WHERE customer = 'c3' AND WINDOWSTART >= '2023-03-28T10:42'
                      AND WINDOWSTART < '2023-03-28T12:45:00.000+0200';";
    assert_eq!(rows(&stack, by_dates), want);
    let bad = stack.rt.block_on(stack.engine.query(
        "SELECT * FROM per_minute WHERE WINDOWSTART > 'yesterday';",
        &Default::default(),
    ));
    let err = bad.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        err.contains("Failed to parse timestamp 'yesterday'"),
        "{err}"
    );
    // `*` on a windowed table: the key, the window's bounds, the values.
    let star = "SELECT * FROM per_minute WHERE customer = 'c3' AND WINDOWSTART = 1680000120000;";
    let columns = stack.rt.block_on(async {
        let q = stack.engine.query(star, &Default::default()).await.unwrap();
        q.columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
    });
    assert_eq!(columns, ["CUSTOMER", "WINDOWSTART", "WINDOWEND", "N"]);
    assert_eq!(rows(&stack, star), want[..1]);
    assert_eq!(
        rows(
            &stack,
            "SELECT customer, WINDOWSTART, WINDOWEND, n FROM per_minute;"
        ),
        rows(
            &stack,
            "SELECT customer, WINDOWSTART, WINDOWEND, n FROM per_minute_topic;"
        )
    );

    // A record on the table's topic that the query did not write: the topic shows it,
    // the materialized view does not.
    let ghost = json!({"N": 99, "TOTAL": 1, "TOP": 1});
    produce_at(
        &stack.broker.bootstrap,
        "BY_CUSTOMER",
        &[("ghost".into(), ghost, BASE)],
    );
    runnel_testkit::wait_until(
        "the ghost record on the topic",
        30,
        || {
            rows(
                &stack,
                "SELECT n FROM by_customer_topic WHERE customer = 'ghost';",
            )
        },
        |r| r == &vec![vec![json!(99)]],
    );
    assert!(rows(
        &stack,
        "SELECT * FROM by_customer WHERE customer = 'ghost';"
    )
    .is_empty());
    assert_eq!(rows(&stack, "SELECT * FROM by_customer;"), all);
    // The topic's partitions and offsets are the topic's: such a query reads it.
    assert_eq!(
        rows(
            &stack,
            "SELECT customer, ROWOFFSET >= 0 FROM by_customer WHERE customer = 'ghost';"
        ),
        vec![vec![json!("ghost"), json!(true)]]
    );

    // A restarted server restores the store from its changelog and serves it again.
    stack.restart_engine().unwrap();
    runnel_testkit::wait_until(
        "the restored store to serve c3 without the ghost",
        60,
        || {
            (
                rows(&stack, "SELECT * FROM by_customer WHERE customer = 'c3';"),
                rows(
                    &stack,
                    "SELECT * FROM by_customer WHERE customer = 'ghost';",
                ),
            )
        },
        |(c3, ghost)| c3 == &by_key && ghost.is_empty(),
    );
    assert_eq!(rows(&stack, "SELECT * FROM by_customer;"), all);
}
