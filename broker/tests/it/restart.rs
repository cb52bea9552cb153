//! Data and committed offsets survive a clean restart; a torn tail is truncated.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_committed_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "durable", 3, &[("segment.bytes", "20000")]).await;
    let values: Vec<String> = (0..5000).map(|i| format!("v{i}")).collect();
    produce_all(&producer(&bs, &[("acks", "all")]), "durable", &values, 13).await;
    {
        let c: BaseConsumer = client_config(&bs)
            .set("group.id", "keeper")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..3 {
            tpl.add_partition_offset("durable", p, Offset::Offset(10 + p as i64))
                .unwrap();
        }
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
    broker.shutdown().await.unwrap();

    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    let got = read_all(&bs, "durable", values.len()).await;
    let mut got_values: Vec<String> = got.into_iter().map(|g| g.3).collect();
    got_values.sort();
    let mut expected = values.clone();
    expected.sort();
    assert_eq!(got_values, expected);
    let c: BaseConsumer = client_config(&bs)
        .set("group.id", "keeper")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("durable", p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let offsets: Vec<Offset> = committed.elements().iter().map(|e| e.offset()).collect();
    assert_eq!(
        offsets,
        vec![Offset::Offset(10), Offset::Offset(11), Offset::Offset(12)]
    );
    // New writes continue after the old ones.
    let more: Vec<String> = (0..10).map(|i| format!("after{i}")).collect();
    let acked = produce_all(&producer(&bs, &[]), "durable", &more, 1).await;
    assert!(acked.iter().all(|(_, o)| *o > 0));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_after_a_crash_is_truncated_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "torn", 1, &[]).await;
    let values: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
    produce_all(&producer(&bs, &[("acks", "all")]), "torn", &values, 1).await;
    broker.shutdown().await.unwrap();
    // Simulate a crash mid-write: garbage after the last batch, no clean-shutdown marker.
    let log = dir.path().join("torn-0").join("00000000000000000000.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0, 2, 7, 7, 7]);
    std::fs::write(&log, &bytes).unwrap();
    std::fs::remove_file(dir.path().join(".runnel_cleanshutdown")).unwrap();

    let broker = start(dir.path(), &[]).await;
    assert_eq!(
        std::fs::metadata(&log).unwrap().len() as usize,
        good,
        "torn tail truncated"
    );
    let got = read_all(&broker.bootstrap(), "torn", 100).await;
    assert_eq!(got.into_iter().map(|g| g.3).collect::<Vec<_>>(), values);
    broker.shutdown().await.unwrap();
}
