//! The background log cleaner as a user meets it: retention moves the log start
//! forward, compaction leaves the latest value per key.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bytes_deletes_old_segments_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("log.retention.check.interval.ms", "200")]).await;
    let bs = broker.bootstrap();
    create_topic(
        &bs,
        "ret",
        1,
        &[("segment.bytes", "10000"), ("retention.bytes", "30000")],
    )
    .await;
    let values: Vec<String> = (0..2000)
        .map(|i| format!("{i:08}-{}", "p".repeat(100)))
        .collect();
    produce_all(
        &producer(&bs, &[("acks", "all"), ("batch.size", "2000")]),
        "ret",
        &values,
        1,
    )
    .await;
    let c: BaseConsumer = client_config(&bs).set("group.id", "w").create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (low, high) = loop {
        let (low, high) = c
            .fetch_watermarks("ret", 0, Duration::from_secs(5))
            .unwrap();
        // The cleaner may run while the producer is still writing and delete
        // only part of what will be over the limit; wait for the pass after it.
        if low > 1000 || Instant::now() > deadline {
            break (low, high);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(high, 2000);
    assert!(
        low > 1000,
        "retention.bytes=30000 should keep only the newest ~30 KB, log start is {low}"
    );
    // What is left is readable from the new start and ends with the last record.
    let rest = read_all(&bs, "ret", (high - low) as usize).await;
    assert_eq!(rest.first().map(|r| r.1), Some(low));
    assert_eq!(rest.last().map(|r| r.3.clone()), values.last().cloned());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_latest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("log.retention.check.interval.ms", "200")]).await;
    let bs = broker.bootstrap();
    create_topic(
        &bs,
        "compact",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await;
    // 20 keys updated 100 times each: key{i % 20} gets values in order.
    let values: Vec<String> = (0..2000).map(|i| format!("update-{i}")).collect();
    produce_all(
        &producer(&bs, &[("acks", "all"), ("batch.size", "1000")]),
        "compact",
        &values,
        20,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = read_to_end(&bs, "compact").await;
        // Compaction only touches closed segments: the active one keeps its duplicates.
        if all.len() < 300 {
            let mut latest: HashMap<String, (i64, String)> = HashMap::new();
            for (_, offset, key, value) in &all {
                latest.insert(key.clone().unwrap(), (*offset, value.clone()));
            }
            assert_eq!(latest.len(), 20, "every key is still there");
            for (key, (_, value)) in &latest {
                let k: usize = key.trim_start_matches("key").parse().unwrap();
                assert_eq!(
                    value,
                    &format!("update-{}", 1980 + k),
                    "{key} has its latest value"
                );
            }
            let offsets: Vec<i64> = all.iter().map(|r| r.1).collect();
            assert!(
                offsets.windows(2).all(|w| w[0] < w[1]),
                "offsets keep their order"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: {} records remain",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    broker.shutdown().await.unwrap();
}
