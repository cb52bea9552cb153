//! Transactions as a librdkafka user meets them (KIP-98, KIP-447): a transactional
//! producer's committed records are what a `read_committed` consumer sees, aborted
//! ones never; an open transaction holds such consumers at the last stable offset;
//! a new producer with the same transactional.id fences the old one; the broker aborts
//! transactions older than their timeout; offsets sent to a transaction are committed
//! with it; all of it survives a restart. Expectations follow Kafka's
//! TransactionCoordinator, TransactionsTest and librdkafka's transactional tests.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::*;

const COMMITTED: &[(&str, &str)] = &[("isolation.level", "read_committed")];
const UNCOMMITTED: &[(&str, &str)] = &[("isolation.level", "read_uncommitted")];
const T: Duration = Duration::from_secs(20);

fn txn_producer(bs: &str, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut all = vec![("transactional.id", id)];
    all.extend_from_slice(extra);
    producer(bs, &all)
}

/// Runs a blocking librdkafka transaction call off the async workers the in-process
/// broker needs.
async fn blocking<F>(p: &FutureProducer, f: F) -> KafkaResult<()>
where
    F: FnOnce(&FutureProducer) -> KafkaResult<()> + Send + 'static,
{
    let p = p.clone();
    tokio::task::spawn_blocking(move || f(&p)).await.unwrap()
}

/// Sends `values` (keys `k{i}`) and waits until each is acknowledged.
async fn send(p: &FutureProducer, topic: &str, values: &[String]) {
    let mut pending = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let key = format!("k{i}");
        pending.push(
            p.send_result(FutureRecord::to(topic).key(&key).payload(v))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
    }
    for f in pending {
        f.await.unwrap().unwrap();
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn payloads(rows: &[Row]) -> BTreeSet<String> {
    rows.iter().map(|r| r.3.clone()).collect()
}

/// ListOffsets' latest offset of partition 0 under the consumer's isolation level.
async fn end_offset(bs: &str, topic: &str, isolation: &'static str) -> i64 {
    let c: BaseConsumer = client_config(bs)
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || c.fetch_watermarks(&topic, 0, T).unwrap().1)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_committed_transactions_and_never_aborted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "tx", 2, &[]).await;
    let p = txn_producer(&bs, "tx-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    for (round, commit) in [("a", true), ("b", false), ("c", true)] {
        p.begin_transaction().unwrap();
        send(&p, "tx", &values(round, 10)).await;
        if commit {
            blocking(&p, |p| p.commit_transaction(T)).await.unwrap();
        } else {
            blocking(&p, |p| p.abort_transaction(T)).await.unwrap();
        }
    }
    let committed = read_all_with(&bs, "tx", 20, COMMITTED).await;
    let mut want: BTreeSet<String> = values("a", 10).into_iter().collect();
    want.extend(values("c", 10));
    assert_eq!(committed.len(), 20, "{committed:?}");
    assert_eq!(payloads(&committed), want);
    // read_uncommitted sees the aborted records too (and never the markers).
    let all = read_all_with(&bs, "tx", 30, UNCOMMITTED).await;
    assert_eq!(all.len(), 30);
    assert!(payloads(&all).contains("b-0"));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_read_committed_consumers_at_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "lso", 1, &[]).await;
    let p = txn_producer(&bs, "lso-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    p.begin_transaction().unwrap();
    send(&p, "lso", &values("open", 5)).await;
    // Records after the open transaction's first one are held back too.
    send(&producer(&bs, &[]), "lso", &values("plain", 3)).await;
    assert_eq!(end_offset(&bs, "lso", "read_committed").await, 0, "LSO");
    assert_eq!(end_offset(&bs, "lso", "read_uncommitted").await, 8, "HW");
    assert!(read_all_with(&bs, "lso", 1, COMMITTED).await.is_empty());
    assert_eq!(read_all_with(&bs, "lso", 8, UNCOMMITTED).await.len(), 8);
    blocking(&p, |p| p.commit_transaction(T)).await.unwrap();
    // 5 + 3 records and the COMMIT marker.
    assert_eq!(end_offset(&bs, "lso", "read_committed").await, 9);
    let rows = read_all_with(&bs, "lso", 8, COMMITTED).await;
    assert_eq!(rows.len(), 8);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producer_with_the_same_id_aborts_the_old_transaction_and_fences_its_producer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "fence", 1, &[]).await;
    let old = txn_producer(&bs, "fence-1", &[]);
    blocking(&old, |p| p.init_transactions(T)).await.unwrap();
    old.begin_transaction().unwrap();
    send(&old, "fence", &values("zombie", 3)).await;
    let new = txn_producer(&bs, "fence-1", &[]);
    blocking(&new, |p| p.init_transactions(T)).await.unwrap();
    let err = blocking(&old, |p| p.commit_transaction(T))
        .await
        .expect_err("the fenced producer cannot commit");
    assert!(
        err.to_string().to_lowercase().contains("fenced"),
        "expected a fencing error, got {err}"
    );
    new.begin_transaction().unwrap();
    send(&new, "fence", &values("new", 2)).await;
    blocking(&new, |p| p.commit_transaction(T)).await.unwrap();
    let rows = read_all_with(&bs, "fence", 2, COMMITTED).await;
    assert_eq!(payloads(&rows), values("new", 2).into_iter().collect());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_older_than_its_timeout_is_aborted_by_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(
        dir.path(),
        &[(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        )],
    )
    .await;
    let bs = broker.bootstrap();
    create_topic(&bs, "slow", 1, &[]).await;
    let p = txn_producer(
        &bs,
        "slow-1",
        &[
            ("transaction.timeout.ms", "1000"),
            ("message.timeout.ms", "1000"),
        ],
    );
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    p.begin_transaction().unwrap();
    send(&p, "slow", &values("late", 3)).await;
    // The LSO moves once the broker aborted it: 3 records and the ABORT marker.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while end_offset(&bs, "slow", "read_committed").await != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the timed-out transaction was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        blocking(&p, |p| p.commit_transaction(T)).await.is_err(),
        "a transaction the broker aborted cannot commit"
    );
    assert!(read_all_with(&bs, "slow", 1, COMMITTED).await.is_empty());
    assert_eq!(read_all_with(&bs, "slow", 3, UNCOMMITTED).await.len(), 3);
    broker.shutdown().await.unwrap();
}

/// The committed offset of `group` on `topic`-0, as a consumer of the group reads it.
async fn committed_offset(bs: &str, group: &str, topic: &str) -> Offset {
    let c: BaseConsumer = client_config(bs).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tokio::task::spawn_blocking(move || {
        let got = c.committed_offsets(tpl, T).unwrap();
        got.elements()[0].offset()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_are_committed_with_it_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "in", 1, &[]).await;
    create_topic(&bs, "out", 1, &[]).await;
    let p = txn_producer(&bs, "eos-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    let consumer: BaseConsumer = client_config(&bs)
        .set("group.id", "eos-group")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    for (offset, commit) in [(5, false), (10, true)] {
        p.begin_transaction().unwrap();
        send(&p, "out", &values(&format!("o{offset}"), 2)).await;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("in", 0, Offset::Offset(offset))
            .unwrap();
        let cgm = consumer.group_metadata().unwrap();
        blocking(&p, move |p| p.send_offsets_to_transaction(&tpl, &cgm, T))
            .await
            .unwrap();
        if commit {
            blocking(&p, |p| p.commit_transaction(T)).await.unwrap();
        } else {
            blocking(&p, |p| p.abort_transaction(T)).await.unwrap();
            assert_eq!(
                committed_offset(&bs, "eos-group", "in").await,
                Offset::Invalid,
                "an aborted transaction commits no offset"
            );
        }
    }
    assert_eq!(
        committed_offset(&bs, "eos-group", "in").await,
        Offset::Offset(10)
    );
    drop((p, consumer));
    broker.shutdown().await.unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    assert_eq!(
        committed_offset(&bs, "eos-group", "in").await,
        Offset::Offset(10),
        "read back from __consumer_offsets with its COMMIT marker"
    );
    let rows = read_all_with(&bs, "out", 2, COMMITTED).await;
    assert_eq!(payloads(&rows), values("o10", 2).into_iter().collect());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_survives_a_restart_until_its_id_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "restart", 1, &[]).await;
    let p = txn_producer(&bs, "restart-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    p.begin_transaction().unwrap();
    send(&p, "restart", &values("open", 4)).await;
    drop(p);
    broker.shutdown().await.unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    send(&producer(&bs, &[]), "restart", &values("plain", 2)).await;
    assert_eq!(
        end_offset(&bs, "restart", "read_committed").await,
        0,
        "the open transaction still holds the LSO"
    );
    // A new producer with the id aborts what the old one left open.
    let p = txn_producer(&bs, "restart-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    let rows = read_all_with(&bs, "restart", 2, COMMITTED).await;
    assert_eq!(payloads(&rows), values("plain", 2).into_iter().collect());
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_consumers_wait_for_offsets_a_transaction_has_pending() {
    // KIP-447: OffsetFetch with require_stable (librdkafka sets it under read_committed)
    // answers UNSTABLE_OFFSET_COMMIT while an open transaction holds an offset.
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let bs = broker.bootstrap();
    create_topic(&bs, "src", 1, &[]).await;
    let p = txn_producer(&bs, "stable-1", &[]);
    blocking(&p, |p| p.init_transactions(T)).await.unwrap();
    let consumer: BaseConsumer = client_config(&bs)
        .set("group.id", "stable-group")
        .create()
        .unwrap();
    p.begin_transaction().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("src", 0, Offset::Offset(7))
        .unwrap();
    let cgm = consumer.group_metadata().unwrap();
    blocking(&p, move |p| p.send_offsets_to_transaction(&tpl, &cgm, T))
        .await
        .unwrap();
    let fetch = |isolation: &'static str| {
        let c: BaseConsumer = client_config(&bs)
            .set("group.id", "stable-group")
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("src", 0);
        tokio::task::spawn_blocking(move || {
            c.committed_offsets(tpl, Duration::from_secs(2))
                .map(|got| got.elements()[0].offset())
        })
    };
    assert_eq!(
        fetch("read_uncommitted").await.unwrap().unwrap(),
        Offset::Invalid
    );
    assert!(
        fetch("read_committed").await.unwrap().is_err(),
        "a stable offset cannot be had while the transaction is open"
    );
    blocking(&p, |p| p.commit_transaction(T)).await.unwrap();
    assert_eq!(
        fetch("read_committed").await.unwrap().unwrap(),
        Offset::Offset(7)
    );
    broker.shutdown().await.unwrap();
}
