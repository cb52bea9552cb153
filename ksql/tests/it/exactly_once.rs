//! `processing.guarantee` for persistent queries, as ksqlDB honours it: with
//! `exactly_once_v2` the query's Streams application writes its sink in transactions
//! (each commit leaves a COMMIT marker in the log), also after a restart, because the
//! command topic keeps the query's Streams properties.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::common::Stack;

/// (records a read_committed reader gets, the log end offset) of topic-0.
fn records_and_end(stack: &Stack, topic: &str) -> (usize, i64) {
    let records = stack
        .rt
        .block_on(stack.engine.kafka().read_all(topic))
        .unwrap()
        .len();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &stack.broker.bootstrap)
        .create()
        .unwrap();
    let (_, end) = c
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    (records, end)
}

fn wait_for_records(stack: &Stack, topic: &str, n: usize) -> (usize, i64) {
    runnel_testkit::wait_until(
        &format!("{n} records in {topic}"),
        30,
        || records_and_end(stack, topic),
        |(records, _)| *records >= n,
    )
}

#[test]
fn exactly_once_v2_queries_write_their_sink_in_transactions_also_after_a_restart() {
    let mut stack = Stack::start().unwrap();
    let run = |stack: &Stack, sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run(&stack, "SET 'processing.guarantee'='exactly_once_v2';");
    run(&stack, "CREATE STREAM src (id STRING KEY, n INT) WITH (KAFKA_TOPIC='src', VALUE_FORMAT='JSON', PARTITIONS=1);
                 CREATE STREAM big AS SELECT id, n FROM src WHERE n > 1;");
    for i in 0..6 {
        run(
            &stack,
            &format!("INSERT INTO src (id, n) VALUES ('k{i}', {i});"),
        );
    }
    let (records, end) = wait_for_records(&stack, "BIG", 4);
    assert_eq!(records, 4);
    assert!(
        end > records as i64,
        "no transaction markers in the sink: {records} records end at offset {end}"
    );
    stack.restart_engine().unwrap();
    run(&stack, "INSERT INTO src (id, n) VALUES ('k9', 9);");
    let (records2, end2) = wait_for_records(&stack, "BIG", 5);
    assert_eq!(records2, 5);
    assert!(
        end2 - records2 as i64 > end - records as i64,
        "the restarted query wrote without a transaction: end {end} -> {end2}"
    );
}
