//! An in-process broker (on its own tokio runtime, so test threads may block) and
//! helpers to produce and read topics with rdkafka.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use runnel_broker::{Broker, BrokerConfig, BrokerHandle};

pub struct TestBroker {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<BrokerHandle>,
    pub bootstrap: String,
}

impl TestBroker {
    pub fn start(dir: &Path) -> TestBroker {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = BrokerConfig::default()
            .with_property("log.dirs", dir.display().to_string())
            .and_then(|c| c.with_property("listeners", "PLAINTEXT://127.0.0.1:0"))
            .and_then(|c| c.with_property("group.initial.rebalance.delay.ms", "0"))
            .and_then(|c| c.with_property("offsets.topic.num.partitions", "3"))
            .unwrap();
        let handle = rt.block_on(Broker::start(config)).unwrap();
        let bootstrap = handle.bootstrap();
        TestBroker {
            rt,
            handle: Some(handle),
            bootstrap,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}

pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in rt
        .block_on(admin.create_topics([&t], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

/// Produces (key, value, timestamp) records with Kafka's murmur2 partitioner.
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
        .unwrap();
    for (k, v, ts) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(v.as_slice()).timestamp(ts);
        if let Some(k) = &k {
            r = r.key(k.as_slice());
        }
        let mut r = r;
        loop {
            match p.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// Reads a topic from the beginning, keeping the latest value per key, until `done`
/// says the map is complete (or the deadline passes).
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
/// complete at a pause in the stream (or the deadline passes).
pub fn all_records(
    bootstrap: &str,
    topic: &str,
    secs: u64,
    mut done: impl FnMut(&[(Vec<u8>, Option<Vec<u8>>)]) -> bool,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut all = Vec::new();
    read_until(bootstrap, topic, secs, |records| {
        all.append(records);
        done(&all)
    });
    all
}

/// Polls `topic` from its beginning; at each pause hands `check` what arrived since
/// the last one, and stops when it says so or at the deadline.
fn read_until(
    bootstrap: &str,
    topic: &str,
    secs: u64,
    mut check: impl FnMut(&mut Vec<(Vec<u8>, Option<Vec<u8>>)>) -> bool,
) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut assigned = false;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if !assigned {
            let md = c
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .unwrap();
            let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
            if parts.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .unwrap();
            }
            c.assign(&tpl).unwrap();
            assigned = true;
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.key().unwrap_or_default().to_vec(),
                m.payload().map(<[u8]>::to_vec),
            )),
            Some(Err(e)) => eprintln!("poll: {e}"),
            None => {
                if check(&mut out) {
                    return;
                }
            }
        }
    }
    check(&mut out);
}

pub fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
