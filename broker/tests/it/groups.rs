//! Consumer groups through librdkafka: three members split the partitions, one leaves,
//! the others take over its partitions; commits are seen by a new member.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

use crate::common::*;

fn member(bs: &str, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = client_config(bs)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_partitions_and_a_leaver_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "grp", 6, &[]).await;
    let p = producer(&bs, &[("acks", "all")]);
    let values: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
    produce_all(&p, "grp", &values, 50).await;

    let seen: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    let bs2 = bs.clone();
    let seen2 = seen.clone();
    let result = tokio::task::spawn_blocking(move || {
        let members: Vec<BaseConsumer> = (0..3).map(|_| member(&bs2, "g3", "grp")).collect();
        let assignment = |c: &BaseConsumer| -> HashSet<i32> {
            c.assignment()
                .unwrap()
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect()
        };
        let poll_all = |ms: &[&BaseConsumer]| {
            for c in ms {
                while let Some(m) = c.poll(Duration::from_millis(20)) {
                    let m = m.expect("poll");
                    let v: u32 = std::str::from_utf8(m.payload().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    *seen2.lock().unwrap().entry(v).or_default() += 1;
                    c.commit_message(&m, CommitMode::Async).unwrap();
                }
            }
        };
        let all: Vec<&BaseConsumer> = members.iter().collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            poll_all(&all);
            let sizes: Vec<usize> = members.iter().map(|c| assignment(c).len()).collect();
            if sizes == [2, 2, 2] && seen2.lock().unwrap().len() == 3000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no balanced assignment: {sizes:?}"
            );
        }
        let union: HashSet<i32> = members.iter().flat_map(&assignment).collect();
        assert_eq!(union.len(), 6, "every partition assigned once");
        // One member leaves; the other two take all six partitions.
        let mut members = members;
        let leaver = members.pop().unwrap();
        leaver.unsubscribe();
        drop(leaver);
        let rest: Vec<&BaseConsumer> = members.iter().collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            poll_all(&rest);
            let sizes: Vec<usize> = members.iter().map(|c| assignment(c).len()).collect();
            if sizes == [3, 3] {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "partitions not reassigned after a leave: {sizes:?}"
            );
        }
        for c in &members {
            c.commit_consumer_state(CommitMode::Sync).ok();
        }
    })
    .await;
    result.unwrap();
    let consumed = seen.lock().unwrap().len();
    assert_eq!(consumed, 3000, "every record consumed");
    broker.shutdown().await.unwrap();
}
