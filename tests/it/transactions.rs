//! Transactions against `runnel broker` as a process: Python's transactional clients
//! (tests/python/transactions.py: confluent-kafka producer and read_committed
//! consumers of both Python clients), and kill -9 in the middle of transactions —
//! afterwards a read_committed consumer sees every committed transaction whole and
//! nothing of any other (KIP-98's guarantee).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{free_port, ChildBroker};

const T: Duration = Duration::from_secs(10);
/// Records per transaction in the kill -9 test.
const PER_TXN: usize = 20;

#[test]
fn python_transactional_clients_commit_abort_and_read_committed() {
    let venv = std::env::var("CONFORMANCE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/runnel-conformance-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: the README's test command installs the Python clients",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/transactions.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&broker.bootstrap)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("PASS ")).count(), 3);
}

type TxnProducer = ThreadedProducer<rdkafka::producer::DefaultProducerContext>;

fn txn_producer(bootstrap: &str, id: &str) -> TxnProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("linger.ms", "2")
        .set("message.timeout.ms", "5000")
        .set("transaction.timeout.ms", "10000")
        .create()
        .unwrap()
}

/// Runs transactions of [`PER_TXN`] records until `stop` or an error; returns the
/// numbers of the transactions whose commit was acknowledged, and the producer (its
/// last transaction still open when stopped: dropping it is the caller's business).
fn run_transactions(bootstrap: &str, stop: &AtomicBool) -> (Vec<usize>, TxnProducer) {
    let p = txn_producer(bootstrap, "kill9");
    p.init_transactions(T).unwrap();
    let mut committed = Vec::new();
    for n in 0.. {
        if p.begin_transaction().is_err() {
            break;
        }
        for i in 0..PER_TXN {
            let v = format!("{n}-{i}");
            let key = i.to_string();
            if p.send(BaseRecord::to("eos").key(&key).payload(&v)).is_err() {
                return (committed, p);
            }
        }
        // The broker dies while this transaction is open, its records in the log.
        if stop.load(Ordering::Relaxed) {
            let _ = p.flush(T);
            return (committed, p);
        }
        match p.commit_transaction(T) {
            Ok(()) => committed.push(n),
            Err(_) => break,
        }
    }
    (committed, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_the_middle_of_transactions_loses_no_committed_one_and_shows_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let broker = ChildBroker::start(&data, port, &[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    let topic = NewTopic::new("eos", 2, TopicReplication::Fixed(1));
    admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (bs, s) = (broker.bootstrap.clone(), stop.clone());
    let producing = std::thread::spawn(move || run_transactions(&bs, &s));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (committed, open) = tokio::task::spawn_blocking(move || producing.join().unwrap())
        .await
        .unwrap();
    broker.kill9();
    drop(open);
    let broker = ChildBroker::start(&data, port, &[]);
    assert!(
        committed.len() >= 5,
        "only {} transactions committed before the kill",
        committed.len()
    );
    // A new producer with the id aborts what the killed one left open.
    let bs = broker.bootstrap.clone();
    tokio::task::spawn_blocking(move || txn_producer(&bs, "kill9").init_transactions(T).unwrap())
        .await
        .unwrap();
    let bs = broker.bootstrap.clone();
    let expected = committed.len() * PER_TXN;
    let rows = tokio::task::spawn_blocking(move || read_committed(&bs, "eos", expected))
        .await
        .unwrap();
    let mut per_txn: BTreeMap<usize, HashSet<usize>> = BTreeMap::new();
    for v in &rows {
        let (n, i) = v.split_once('-').unwrap();
        let fresh = per_txn
            .entry(n.parse().unwrap())
            .or_default()
            .insert(i.parse().unwrap());
        assert!(fresh, "{v} read twice");
    }
    for n in &committed {
        assert_eq!(
            per_txn.get(n).map(|s| s.len()),
            Some(PER_TXN),
            "committed transaction {n} is not whole"
        );
    }
    // The transaction open at the kill was aborted; one whose commit was cut off may
    // have committed, but only whole.
    for (n, records) in &per_txn {
        assert_eq!(records.len(), PER_TXN, "transaction {n} is partly visible");
        assert!(
            committed.contains(n) || *n == committed.last().unwrap() + 1,
            "transaction {n} was never committed but is visible"
        );
    }
    eprintln!(
        "{} transactions acknowledged before kill -9, {} visible after restart",
        committed.len(),
        per_txn.len()
    );
}

/// Values of every partition of `topic` under read_committed, until `at_least` and
/// then until 2 s pass without a record.
fn read_committed(bootstrap: &str, topic: &str, at_least: usize) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kill9-check")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut idle_since = Instant::now();
    while Instant::now() < deadline
        && (out.len() < at_least || idle_since.elapsed() < Duration::from_secs(2))
    {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            out.push(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
            idle_since = Instant::now();
        }
    }
    out
}
