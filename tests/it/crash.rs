//! kill -9 while an acks=all producer runs: after a restart every acknowledged record
//! is there, in order.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{free_port, ChildBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let broker = ChildBroker::start(&data, port, &["--override", "num.partitions=1"]);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    // Produce continuously from a task; the broker dies under it.
    let p = producer.clone();
    let producing = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut in_flight = std::collections::VecDeque::new();
        for i in 0u64.. {
            let v = i.to_string();
            match p.send_result(FutureRecord::<(), _>::to("crash").payload(&v)) {
                Ok(f) => in_flight.push_back((i, f)),
                Err(_) => break,
            }
            if in_flight.len() >= 200 {
                let (i, f) = in_flight.pop_front().unwrap();
                match f.await {
                    Ok(Ok(_)) => acked.push(i),
                    _ => break,
                }
            }
        }
        for (i, f) in in_flight {
            if let Ok(Ok(_)) = f.await {
                acked.push(i);
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.kill9();
    let acked = producing.await.unwrap();
    drop(producer);
    assert!(
        acked.len() > 1000,
        "only {} records were acknowledged before the kill",
        acked.len()
    );

    let broker = ChildBroker::start(&data, port, &[]);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "crash-check")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("crash", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let (_, end) = consumer
        .fetch_watermarks("crash", 0, Duration::from_secs(10))
        .unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (got.len() as i64) < end && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            got.push(
                std::str::from_utf8(m.payload().unwrap())
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
    }
    assert_eq!(got.len() as i64, end, "could not read the log back");
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(got, sorted, "records are in production order");
    let present: std::collections::HashSet<u64> = got.into_iter().collect();
    let lost: Vec<&u64> = acked.iter().filter(|i| !present.contains(i)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, first {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "{} acknowledged before kill -9, {} in the log after restart",
        acked.len(),
        present.len()
    );
}
