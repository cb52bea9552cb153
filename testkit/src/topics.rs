//! Topics from a test's side, through rdkafka as any client: create them, produce with
//! Kafka's partitioner, read them back from the beginning.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A record as read back: key (empty when none) and value (`None`: a tombstone).
pub type Row = (Vec<u8>, Option<Vec<u8>>);

/// Creates a topic (replication 1) with topic configs; panics if it cannot.
pub async fn create_topic_async(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("an admin client");
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    for r in admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap_or_else(|e| panic!("creating topic {name}: {e}"))
    {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// [`create_topic_async`] for blocking tests, without topic configs.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to create a topic")
        .block_on(create_topic_async(bootstrap, name, partitions, &[]));
}

/// Produces (key, value, timestamp) records with Kafka's murmur2 partitioner and
/// `acks=all`, and waits until all are acknowledged.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = (Option<Vec<u8>>, Vec<u8>, i64)>,
) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("acks", "all")
        .create()
        .expect("a producer");
    for (k, v, ts) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(v.as_slice()).timestamp(ts);
        if let Some(k) = &k {
            r = r.key(k.as_slice());
        }
        // A full queue hands the record back: wait for room.
        while let Err((_, back)) = p.send(r) {
            r = back;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    p.flush(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("producing to {topic}: {e}"));
}

/// Reads a topic from the beginning, keeping the latest value per key, until `done`
/// says the map is complete (or `secs` pass; the caller checks what it got).
pub fn latest_per_key(
    bootstrap: &str,
    topic: &str,
    secs: u64,
    mut done: impl FnMut(&HashMap<Vec<u8>, Option<Vec<u8>>>) -> bool,
) -> HashMap<Vec<u8>, Option<Vec<u8>>> {
    let mut latest = HashMap::new();
    read_until(bootstrap, topic, secs, |records| {
        latest.extend(records.drain(..));
        done(&latest)
    });
    latest
}

/// Every record of a topic from the beginning, read until `done` says they are
/// complete at a pause in the stream (or `secs` pass; the caller checks what it got).
pub fn all_records(
    bootstrap: &str,
    topic: &str,
    secs: u64,
    mut done: impl FnMut(&[Row]) -> bool,
) -> Vec<Row> {
    let mut all = Vec::new();
    read_until(bootstrap, topic, secs, |records| {
        all.append(records);
        done(&all)
    });
    all
}

/// Every record of a topic from the beginning, once nothing new has arrived for
/// `idle`: how a test checks that no more records come, without a fixed sleep.
/// Panics if the topic is still receiving after `secs`.
pub fn drain_until_idle(bootstrap: &str, topic: &str, idle: Duration, secs: u64) -> Vec<Row> {
    let mut all = Vec::new();
    let mut quiet_since = Instant::now();
    let idled = read_until(bootstrap, topic, secs, |records| {
        if !records.is_empty() {
            quiet_since = Instant::now();
        }
        all.append(records);
        quiet_since.elapsed() >= idle
    });
    assert!(
        idled,
        "topic {topic} was still receiving records after {secs}s"
    );
    all
}

/// Polls `topic` from its beginning; at each pause hands `check` what arrived since
/// the last one, and stops when it says so (true) or at the deadline (false).
fn read_until(
    bootstrap: &str,
    topic: &str,
    secs: u64,
    mut check: impl FnMut(&mut Vec<Row>) -> bool,
) -> bool {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .expect("a consumer");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut assigned = false;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if !assigned {
            let parts: Vec<i32> = c
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map(|md| {
                    md.topics()
                        .first()
                        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
                        .unwrap_or_default()
                })
                .unwrap_or_default();
            if parts.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("a partition to read");
            }
            c.assign(&tpl).expect("the partitions assigned");
            assigned = true;
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(e)) => eprintln!("reading {topic}: {e}"),
            None => {
                if check(&mut out) {
                    return true;
                }
            }
        }
    }
    check(&mut out)
}
