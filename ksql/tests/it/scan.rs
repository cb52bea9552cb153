//! A scan (a query without EMIT) over a stream reads each Kafka partition as its own
//! DataFusion partition, in batches, while the query runs: every record of every
//! partition counts once, malformed ones are skipped, and a LIMIT ends the reading.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{produce, some, Raw, Stack};

#[test]
fn a_scan_reads_every_partition_of_a_stream_in_batches() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("CREATE STREAM visits (k STRING KEY, site STRING, v INT)
           WITH (KAFKA_TOPIC='visits', VALUE_FORMAT='JSON', PARTITIONS=3);");
    // More records than one batch holds in each partition.
    let n = 40_000;
    let records: Vec<Raw> = (0..n)
        .map(|i| {
            let value = if i % 997 == 5 {
                b"{\"SITE\": ".to_vec()
            } else {
                json!({"SITE": format!("s{}", i % 13), "V": i % 10})
                    .to_string()
                    .into_bytes()
            };
            (some(format!("k{i}").as_bytes()), Some(value))
        })
        .collect();
    produce(&stack.broker.bootstrap, "visits", &records);
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in (0..n).filter(|i| i % 997 != 5) {
        let e = expected.entry(format!("s{}", i % 13)).or_default();
        e.0 += 1;
        e.1 += (i % 10) as i64;
    }
    let rows = |sql: &str| -> Vec<Vec<Value>> {
        stack.rt.block_on(async {
            let mut q = stack.engine.query(sql, &Default::default()).await.unwrap();
            let mut out = Vec::new();
            while let Some(r) = q.rows.recv().await {
                out.push(r.unwrap());
            }
            out
        })
    };
    let got: BTreeMap<String, (i64, i64)> = rows(
        "SELECT site, COUNT(*) AS n, SUM(v) AS total FROM visits GROUP BY site ORDER BY site;",
    )
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap_or_default().to_string(),
            (r[1].as_i64().unwrap_or(-1), r[2].as_i64().unwrap_or(-1)),
        )
    })
    .collect();
    assert_eq!(got, expected);
    let partitions: Vec<Value> = rows("SELECT DISTINCT ROWPARTITION FROM visits ORDER BY 1;")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(partitions, vec![json!(0), json!(1), json!(2)]);
    assert_eq!(rows("SELECT * FROM visits LIMIT 7;").len(), 7);
}
