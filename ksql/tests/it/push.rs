//! A push query's rows carry their source record's metadata: ROWPARTITION and
//! ROWOFFSET are the partition and offset the record has in the source topic, and
//! header columns read its Kafka headers (ksqlDB docs, "Pseudocolumns"; KLIP-57
//! header columns), whatever partition the record came from.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};

use crate::common::Stack;

#[test]
fn push_query_rows_carry_the_source_partition_offset_and_headers() {
    let stack = Stack::start().unwrap();
    stack
        .rt
        .block_on(stack.engine.execute(
            "CREATE STREAM events (id STRING KEY, v INT, trace BYTES HEADER('trace'))
               WITH (KAFKA_TOPIC='events', VALUE_FORMAT='JSON', PARTITIONS=3);",
        ))
        .unwrap();
    // Two records in each partition, in order: partition p, offsets 0 and 1.
    let p: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.broker.bootstrap)
        .create()
        .unwrap();
    let mut want = Vec::new();
    for partition in 0..3 {
        for offset in 0..2 {
            let id = format!("e{partition}{offset}");
            let trace = format!("t-{id}");
            let value = json!({"V": partition * 10 + offset}).to_string();
            let headers = OwnedHeaders::new().insert(Header {
                key: "trace",
                value: Some(trace.as_bytes()),
            });
            p.send(
                BaseRecord::to("events")
                    .partition(partition)
                    .key(id.as_str())
                    .payload(value.as_str())
                    .headers(headers),
            )
            .map_err(|(e, _)| e)
            .unwrap();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(trace.as_bytes());
            want.push(vec![json!(id), json!(partition), json!(offset), json!(b64)]);
        }
    }
    p.flush(std::time::Duration::from_secs(30)).unwrap();

    let props = [("auto.offset.reset".to_string(), "earliest".to_string())].into();
    let mut got: Vec<Vec<Value>> = stack.rt.block_on(async {
        let mut q = stack
            .engine
            .query(
                "SELECT id, ROWPARTITION AS p, ROWOFFSET AS o, trace FROM events EMIT CHANGES LIMIT 6;",
                &props,
            )
            .await
            .unwrap();
        let mut out = Vec::new();
        while let Some(r) = q.rows.recv().await {
            out.push(r.unwrap());
        }
        out
    });
    got.sort_by_key(|r| r[0].to_string());
    assert_eq!(got, want);
}
