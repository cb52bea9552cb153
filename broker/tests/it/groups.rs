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

/// Counts the assignments librdkafka receives (each is one completed rebalance).
struct CountRebalances(Arc<std::sync::atomic::AtomicUsize>);

impl rdkafka::client::ClientContext for CountRebalances {}

impl rdkafka::consumer::ConsumerContext for CountRebalances {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &rdkafka::consumer::Rebalance<'_>) {
        if matches!(r, rdkafka::consumer::Rebalance::Assign(_)) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The group as DescribeGroups shows it: (state, member ids).
fn describe(bs: &str, group: &str) -> (String, Vec<String>) {
    let c: BaseConsumer = client_config(bs).create().unwrap();
    let list = c
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .unwrap();
    let g = &list.groups()[0];
    let mut ids: Vec<String> = g.members().iter().map(|m| m.id().to_string()).collect();
    ids.sort();
    (g.state().to_string(), ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_survives_a_broker_restart_without_rejoining() {
    // Kafka keeps group metadata (generation, members, assignments) in
    // __consumer_offsets (GroupMetadataManager), so a coordinator restart does not make
    // every consumer rejoin. Before, groups came back Empty and members got
    // UNKNOWN_MEMBER_ID, then rebalanced.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listener = format!("PLAINTEXT://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("listeners", &listener)]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "kept", 2, &[]).await;
    let assignments = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let consumer: BaseConsumer<CountRebalances> = client_config(&bs)
        .set("group.id", "kept-group")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "300")
        .create_with_context(CountRebalances(assignments.clone()))
        .unwrap();
    consumer.subscribe(&["kept"]).unwrap();
    let consumer = Arc::new(consumer);
    let poll_until = |c: Arc<BaseConsumer<CountRebalances>>, want: Option<String>| {
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                    if Some(&v) == want.as_ref() {
                        return true;
                    }
                }
                if want.is_none() && c.assignment().map(|a| a.count()).unwrap_or(0) == 2 {
                    return true;
                }
            }
            false
        })
    };
    assert!(
        poll_until(consumer.clone(), None).await.unwrap(),
        "assigned"
    );
    let before = describe(&bs, "kept-group");
    assert_eq!(before.0, "Stable");
    assert_eq!(before.1.len(), 1);
    broker.shutdown().await.unwrap();

    let broker = start(dir.path(), &[("listeners", &listener)]).await;
    let after = describe(&bs, "kept-group");
    assert_eq!(after, before, "the group is back with its member");
    let p = producer(&bs, &[("acks", "all")]);
    produce_all(&p, "kept", &["after-restart".to_string()], 1).await;
    assert!(
        poll_until(consumer.clone(), Some("after-restart".into()))
            .await
            .unwrap(),
        "the consumer goes on consuming"
    );
    assert_eq!(
        assignments.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no second rebalance"
    );
    drop(consumer);
    broker.shutdown().await.unwrap();
}
