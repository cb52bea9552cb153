//! Helpers: start a broker on a free port in a temp dir, make rdkafka clients.

use std::path::Path;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use runnel_broker::{Broker, BrokerConfig, BrokerHandle};

pub async fn start(dir: &Path, extra: &[(&str, &str)]) -> BrokerHandle {
    // Broker logs on RUST_LOG=runnel_broker=debug; ignore a second init.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut config = BrokerConfig::default()
        .with_property("log.dirs", dir.display().to_string())
        .and_then(|c| c.with_property("listeners", "PLAINTEXT://127.0.0.1:0"))
        .and_then(|c| c.with_property("group.initial.rebalance.delay.ms", "0"))
        .and_then(|c| c.with_property("offsets.topic.num.partitions", "5"))
        .and_then(|c| c.with_property("transaction.state.log.num.partitions", "5"))
        .expect("test config");
    for (k, v) in extra {
        config = config.with_property(k, *v).expect("test config override");
    }
    Broker::start(config).await.expect("broker starts")
}

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap).create().unwrap();
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let res = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap();
    assert!(res[0].is_ok(), "create {name}: {:?}", res[0]);
}

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
        let extra_deadline = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < extra_deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(row(&m));
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
