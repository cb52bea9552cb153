//! Helpers of the broker's tests over the shared test kit: a broker with more
//! internal-topic partitions, rdkafka clients, reads that keep partitions and offsets.

use std::path::Path;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use runnel_broker::BrokerHandle;

/// A broker in `dir` with the test kit's defaults, five partitions for the offsets
/// and transaction topics, and `extra` over them.
pub async fn start(dir: &Path, extra: &[(&str, &str)]) -> BrokerHandle {
    let mut all = vec![
        ("offsets.topic.num.partitions", "5"),
        ("transaction.state.log.num.partitions", "5"),
    ];
    all.extend_from_slice(extra);
    runnel_testkit::start_broker(dir, &all).await
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

pub use runnel_testkit::create_topic_async as create_topic;

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = client_config(bootstrap);
    c.set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().unwrap()
}

/// Sends `values` with keys `key{i % keys}`, all enqueued at once so librdkafka
/// batches them; returns (partition, offset) per record.
pub async fn produce_all(
    p: &FutureProducer,
    topic: &str,
    values: &[String],
    keys: usize,
) -> Vec<(i32, i64)> {
    let mut pending = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let key = format!("key{}", i % keys.max(1));
        let mut record = FutureRecord::to(topic).key(&key).payload(v);
        loop {
            match p.send_result(record) {
                Ok(delivery) => break pending.push(delivery),
                Err((_, r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    let mut out = Vec::new();
    for f in pending {
        let delivery = f.await.expect("delivery future").expect("delivered");
        out.push((delivery.partition, delivery.offset));
    }
    out
}

/// A consumer assigned to every partition of `topic` from the beginning, with each
/// partition's end offset.
fn assigned_reader(
    bootstrap: &str,
    topic: &str,
    extra: &[(String, String)],
) -> (BaseConsumer, Vec<(i32, i64)>) {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", "reader")
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        ends.push((p.id(), high));
    }
    consumer.assign(&tpl).unwrap();
    (consumer, ends)
}

/// A record as the tests look at it: (partition, offset, key, value).
pub type Row = (i32, i64, Option<String>, String);

fn row(m: &rdkafka::message::BorrowedMessage<'_>) -> Row {
    (
        m.partition(),
        m.offset(),
        m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
    )
}

/// Reads every partition of `topic` from the beginning until `expected` records or a
/// timeout, then briefly more (anything beyond `expected` is a duplicate). It blocks,
/// so it runs off the async workers the in-process broker needs.
pub async fn read_all(bootstrap: &str, topic: &str, expected: usize) -> Vec<Row> {
    read_all_with(bootstrap, topic, expected, &[]).await
}

/// [`read_all`] with extra consumer settings (e.g. `isolation.level`).
pub async fn read_all_with(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    extra: &[(&str, &str)],
) -> Vec<Row> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let (consumer, _) = assigned_reader(&bs, &t, &extra);
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while out.len() < expected && std::time::Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                out.push(row(&m.expect("fetch ok")));
            }
        }
        // Then until nothing has come for 500 ms: any more is a duplicate.
        let mut quiet_since = std::time::Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(500) {
            assert!(
                std::time::Instant::now() < deadline + Duration::from_secs(30),
                "{t} kept receiving records"
            );
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(row(&m));
                quiet_since = std::time::Instant::now();
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Reads every partition of `topic` up to its current end offset.
pub async fn read_to_end(bootstrap: &str, topic: &str) -> Vec<Row> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let (consumer, ends) = assigned_reader(&bs, &t, &[]);
        let mut remaining: std::collections::HashMap<i32, i64> =
            ends.into_iter().filter(|(_, h)| *h > 0).collect();
        let mut out = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !remaining.is_empty() && std::time::Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.expect("fetch ok");
                if remaining
                    .get(&m.partition())
                    .is_some_and(|h| m.offset() + 1 >= *h)
                {
                    remaining.remove(&m.partition());
                }
                out.push(row(&m));
            }
        }
        assert!(remaining.is_empty(), "could not read {t} to its end");
        out
    })
    .await
    .unwrap()
}
