//! Records a query cannot process are logged and skipped, as ksqlDB's processing log
//! does (`ksql.logging.processing`), and never stop the query or the server: each kind
//! of bad key and value goes through persistent queries over a stream, a table and a
//! KAFKA-format key, then a good record proves every query went on past them, and
//! SHOW QUERIES still says RUNNING. The empty string key is a key (Kafka's
//! StringDeserializer reads zero bytes as ""), so it is counted, not skipped.

use serde_json::Value;

use crate::common::{produce, some, Raw, Stack};

/// Every kind of bad value, and the keys that broke the engine before.
fn bad_records() -> Vec<Raw> {
    // A large value (not a large key: ksqlDB fails a query whose output exceeds the
    // broker's message.max.bytes, ksql.fail.on.production.error).
    let huge = format!(
        r#"{{"n": 1, "s": "big", "pad": "{}"}}"#,
        "x".repeat(400_000)
    );
    vec![
        (some(b""), some(br#"{"n": 1, "s": ""}"#)),
        (None, some(br#"{"n": 2, "s": "null key"}"#)),
        (some(b"a"), some(b"not json")),
        (some(b"a"), some(br#"{"n": "seven", "s": "wrong type"}"#)),
        (some(b"a"), some(br#"{"n": 99999999999999999999999}"#)),
        (some(b"a"), some(br#"[1, 2]"#)),
        (some(b"a"), some(br#"{"n": 1, "s": "unterminated"#)),
        (some(b"a"), some(huge.as_bytes())),
        (some(b"a"), some(b"{}")),
        (some(b"a"), None),
        (
            some(&[0xff, 0xfe, 0x00]),
            some(br#"{"n": 3, "s": "bad utf-8 key"}"#),
        ),
        (some(&[0xff; 3]), None),
    ]
}

/// The latest value per key of a topic once it holds the key `until`.
fn latest_until(stack: &Stack, topic: &str, until: &[u8]) -> Vec<(Option<Vec<u8>>, Option<Value>)> {
    let records = runnel_testkit::wait_until(
        &format!("{topic} to get the record keyed {until:?}"),
        60,
        || {
            stack
                .rt
                .block_on(stack.engine.kafka().read_all(topic))
                .unwrap_or_default()
        },
        |records| records.iter().any(|r| r.key.as_deref() == Some(until)),
    );
    records
        .into_iter()
        .map(|r| (r.key, r.value.and_then(|v| serde_json::from_slice(&v).ok())))
        .collect()
}

#[test]
fn bad_keys_and_values_are_skipped_and_every_query_keeps_running() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("CREATE STREAM src (k STRING KEY, n INT, s STRING) WITH (KAFKA_TOPIC='bad_src', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE tbl (k STRING PRIMARY KEY, n INT, s STRING) WITH (KAFKA_TOPIC='bad_tbl', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE STREAM ints (id INT KEY, n INT) WITH (KAFKA_TOPIC='bad_ints', KEY_FORMAT='KAFKA', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE counts AS SELECT k, COUNT(*) AS c, SUM(n) AS total FROM src GROUP BY k;
         CREATE TABLE by_s AS SELECT s, COUNT(*) AS c FROM src GROUP BY s;
         CREATE STREAM rekeyed AS SELECT s, n FROM src PARTITION BY s;
         CREATE TABLE positive AS SELECT k, n FROM tbl WHERE n > 0;
         CREATE TABLE tbl_totals AS SELECT s, SUM(n) AS total FROM tbl GROUP BY s;
         CREATE STREAM big_ints AS SELECT id, n FROM ints WHERE n > 0;");

    let bad = bad_records();
    let good: Raw = (some(b"z"), some(br#"{"n": 5, "s": "end"}"#));
    produce(
        &stack.broker.bootstrap,
        "bad_src",
        &[bad.clone(), vec![good.clone()]].concat(),
    );
    produce(
        &stack.broker.bootstrap,
        "bad_tbl",
        &[bad.clone(), vec![good]].concat(),
    );
    let mut ints = bad;
    ints.extend([
        (some(&[1, 2, 3]), some(br#"{"n": 1}"#)),
        (some(&7i32.to_be_bytes()), some(br#"{"n": 7}"#)),
    ]);
    produce(&stack.broker.bootstrap, "bad_ints", &ints);

    // Each sink got the good record after the bad ones.
    let counts = latest_until(&stack, "COUNTS", b"z");
    let of = |rows: &[(Option<Vec<u8>>, Option<Value>)], key: &[u8]| {
        rows.iter()
            .rev()
            .find(|(k, _)| k.as_deref() == Some(key))
            .and_then(|(_, v)| v.clone())
    };
    assert_eq!(of(&counts, b"z").unwrap()["C"], 1);
    assert_eq!(
        of(&counts, b"").unwrap()["C"],
        1,
        "the empty key is counted: {counts:?}"
    );
    latest_until(&stack, "BY_S", b"end");
    latest_until(&stack, "REKEYED", b"end");
    let positive = latest_until(&stack, "POSITIVE", b"z");
    assert_eq!(of(&positive, b"").unwrap()["N"], 1, "{positive:?}");
    latest_until(&stack, "TBL_TOTALS", b"end");
    let big = latest_until(&stack, "BIG_INTS", &7i32.to_be_bytes());
    // Keys that are not 4 bytes fail Kafka's IntegerDeserializer and are skipped; a
    // stream record without a key flows on with a NULL key.
    let keys: Vec<Option<Vec<u8>>> = big.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![None, Some(7i32.to_be_bytes().to_vec())]);

    // The server answers, and no query is in ERROR.
    let shown = run("SHOW QUERIES;");
    let queries = shown[0].queries().unwrap();
    assert_eq!(queries.len(), 6);
    for q in queries {
        assert_eq!(q.state, "RUNNING", "{q:?}");
        let explained = run(&format!("EXPLAIN {};", q.id));
        assert_eq!(
            explained[0].query_description().unwrap().query_errors,
            Some(vec![])
        );
    }
    run("INSERT INTO src (k, n, s) VALUES ('after', 1, 'after');");
    latest_until(&stack, "COUNTS", b"after");
}

/// A query whose output the broker refuses (a group key larger than message.max.bytes)
/// fails as ksqlDB's does with `ksql.fail.on.production.error=true`, its default: it is
/// ERROR in SHOW QUERIES and EXPLAIN gives the reason, while the other queries and the
/// server go on.
#[test]
fn a_failed_query_is_error_with_its_reason_and_the_others_run_on() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("CREATE STREAM src (k STRING KEY, s STRING) WITH (KAFKA_TOPIC='fail_src', VALUE_FORMAT='JSON', PARTITIONS=1);
         CREATE TABLE by_s AS SELECT s, COUNT(*) AS c FROM src GROUP BY s;
         CREATE STREAM copy AS SELECT k, s FROM src;");
    let huge = format!(r#"{{"s": "{}"}}"#, "x".repeat(700_000));
    produce(
        &stack.broker.bootstrap,
        "fail_src",
        &[(some(b"a"), some(huge.as_bytes()))],
    );
    let queries = runnel_testkit::wait_until(
        "a query in state ERROR",
        60,
        || {
            run("SHOW QUERIES;")[0]
                .queries()
                .map(<[_]>::to_vec)
                .unwrap_or_default()
        },
        |queries| queries.iter().any(|q| q.state == "ERROR"),
    );
    let failed = queries
        .into_iter()
        .find(|q| q.state == "ERROR")
        .expect("the failed query");
    let id = failed.id.as_str();
    assert!(id.starts_with("CTAS_BY_S"), "{failed:?}");
    let explained = run(&format!("EXPLAIN {id};"));
    let d = explained[0].query_description().unwrap();
    assert_eq!(d.state.as_deref(), Some("ERROR"));
    let reason = d
        .query_errors
        .iter()
        .flatten()
        .next()
        .map(|e| e.error_message.as_str())
        .unwrap_or_default();
    assert!(reason.contains("MessageSizeTooLarge"), "{explained:?}");

    run("INSERT INTO src (k, s) VALUES ('b', 'small');");
    latest_until(&stack, "COPY", b"b");
    let shown = run("SHOW QUERIES;");
    let copy = shown[0]
        .queries()
        .unwrap()
        .iter()
        .find(|q| q.id != id)
        .cloned();
    assert_eq!(copy.unwrap().state, "RUNNING");
}
