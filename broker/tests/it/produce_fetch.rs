//! Produce at every acks level and compression codec, idempotence, fetch and offsets.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acks_level_round_trips_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let topic = format!("acks-{acks}");
        create_topic(&bs, &topic, 2, &[]).await;
        let values: Vec<String> = (0..2000).map(|i| format!("{acks}-{i}")).collect();
        let p = producer(&bs, &[("acks", acks)]);
        let acked = produce_all(&p, &topic, &values, 7).await;
        if acks != "0" {
            // Offsets per partition are dense from 0.
            for part in 0..2 {
                let offs: Vec<i64> = acked.iter().filter(|a| a.0 == part).map(|a| a.1).collect();
                assert_eq!(
                    offs,
                    (0..offs.len() as i64).collect::<Vec<_>>(),
                    "acks={acks} partition {part}"
                );
            }
        }
        let got = read_all(&bs, &topic, values.len()).await;
        assert_eq!(
            got.len(),
            values.len(),
            "acks={acks}: read back every record exactly once"
        );
        // Per key, values arrive in production order.
        for k in 0..7 {
            let key = format!("key{k}");
            let seq: Vec<usize> = got
                .iter()
                .filter(|g| g.2.as_deref() == Some(key.as_str()))
                .map(|g| g.3.rsplit('-').next().unwrap().parse().unwrap())
                .collect();
            assert!(
                seq.windows(2).all(|w| w[0] < w[1]),
                "acks={acks} {key} out of order"
            );
        }
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&bs, &topic, 1, &[]).await;
        let values: Vec<String> = (0..1000)
            .map(|i| format!("{codec}-{i}-{}", "x".repeat(i % 300)))
            .collect();
        let p = producer(&bs, &[("compression.type", codec), ("acks", "all")]);
        produce_all(&p, &topic, &values, 1).await;
        let got: Vec<String> = read_all(&bs, &topic, values.len())
            .await
            .into_iter()
            .map(|g| g.3)
            .collect();
        assert_eq!(got, values, "{codec}");
    }
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_writes_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "idem", 3, &[]).await;
    let p = producer(
        &bs,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("max.in.flight.requests.per.connection", "5"),
        ],
    );
    let values: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let t = std::time::Instant::now();
    produce_all(&p, "idem", &values, 101).await;
    eprintln!("produced in {:?}", t.elapsed());
    let got = read_all(&bs, "idem", values.len()).await;
    let mut seen: Vec<u32> = got.iter().map(|g| g.3.parse().unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!((got.len(), seen.len()), (20_000, 20_000));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_keyless_records_get_kafka_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "small", 1, &[("max.message.bytes", "10000")]).await;
    create_topic(&bs, "compacted", 1, &[("cleanup.policy", "compact")]).await;
    let p = producer(
        &bs,
        &[
            ("message.max.bytes", "1000000"),
            ("compression.type", "none"),
        ],
    );
    let big = "b".repeat(50_000);
    let err = p
        .send(
            FutureRecord::<(), _>::to("small").payload(&big),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err()
        .0;
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "{err}"
    );
    let err = p
        .send(
            FutureRecord::<(), _>::to("compacted").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err()
        .0;
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidRecord),
        "{err}"
    );
    // The keyed record on the compacted topic and the small one are accepted.
    p.send(
        FutureRecord::to("compacted").key("k").payload("v"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    p.send(
        FutureRecord::<(), _>::to("small").payload("ok"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_and_offsets_for_times() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "times", 1, &[]).await;
    let p = producer(&bs, &[]);
    let base = 1_700_000_000_000i64;
    for i in 0..50i64 {
        let v = i.to_string();
        p.send(
            FutureRecord::<(), _>::to("times")
                .payload(&v)
                .timestamp(base + i * 1000),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let c: BaseConsumer = client_config(&bs).set("group.id", "t").create().unwrap();
    assert_eq!(
        c.fetch_watermarks("times", 0, Duration::from_secs(10))
            .unwrap(),
        (0, 50)
    );
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("times", 0, rdkafka::Offset::Offset(base + 20_500))
        .unwrap();
    let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
    assert_eq!(found.elements()[0].offset(), rdkafka::Offset::Offset(21));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_a_new_topic_auto_creates_it_with_num_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("num.partitions", "4")]).await;
    let bs = broker.bootstrap();
    let values: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    produce_all(&producer(&bs, &[]), "fresh-topic", &values, 40).await;
    let c: BaseConsumer = client_config(&bs).create().unwrap();
    let md = c
        .fetch_metadata(Some("fresh-topic"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);
    assert_eq!(read_all(&bs, "fresh-topic", 40).await.len(), 40);
    broker.shutdown().await.unwrap();

    // With auto.create.topics.enable=false the topic stays unknown.
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("auto.create.topics.enable", "false")]).await;
    let c: BaseConsumer = client_config(&broker.bootstrap()).create().unwrap();
    let md = c
        .fetch_metadata(Some("never-made"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        md.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );
    broker.shutdown().await.unwrap();
}
