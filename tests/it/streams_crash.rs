//! The word count example killed with -9 in the middle of its input and started again:
//! restored from its changelog, it ends with exactly the right counts. Under
//! exactly_once_v2 a read_committed reader sees each word's counts 1, 2, ..., n once
//! each (nothing counted twice, nothing of the killed run's open transaction).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::support::*;

const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];

fn example(name: &str) -> PathBuf {
    // target/debug/deps/it-<hash> -> target/debug/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_word_count(
    bootstrap: &str,
    state: &std::path::Path,
    log: &std::path::Path,
    guarantee: &str,
) -> Killed {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Killed(
        std::process::Command::new(example("word_count"))
            .args([
                "--bootstrap-server",
                bootstrap,
                "--application-id",
                "crash-wc",
            ])
            .args([
                "--input",
                "crash-in",
                "--output",
                "crash-out",
                "--commit-interval-ms",
                "300",
                "--processing-guarantee",
                guarantee,
            ])
            // Under exactly-once every count is checked, so none may be folded away by
            // the record cache; at least once runs with Kafka's default cache.
            .args([
                "--cache-max-bytes",
                if guarantee == "exactly_once_v2" {
                    "0"
                } else {
                    "10485760"
                },
            ])
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the word_count example is built by cargo test"),
    )
}

/// Every count per word in the output topic, in order, read (with `isolation`) until
/// `done` holds of the latest counts when no record is waiting (or the time is up).
fn counts(
    bootstrap: &str,
    isolation: &str,
    secs: u64,
    done: impl Fn(&BTreeMap<String, i64>) -> bool,
) -> (BTreeMap<String, i64>, BTreeMap<String, Vec<i64>>) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crash-reader")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition_offset("crash-out", p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut latest = BTreeMap::new();
    let mut all: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(300)) {
            Some(Ok(m)) => {
                let k = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default())
                    .parse()
                    .unwrap_or(-1);
                all.entry(k.clone()).or_default().push(v);
                latest.insert(k, v);
            }
            Some(Err(_)) => {}
            None if done(&latest) => break,
            None => {}
        }
    }
    (latest, all)
}

#[test]
fn word_count_killed_mid_run_ends_with_exact_counts() {
    killed_mid_run("at_least_once");
}

#[test]
fn exactly_once_word_count_killed_mid_run_counts_nothing_twice() {
    killed_mid_run("exactly_once_v2");
}

fn killed_mid_run(guarantee: &str) {
    let eos = guarantee == "exactly_once_v2";
    let isolation = if eos {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let bs = broker.bootstrap.clone();
    let out = runnel()
        .args([
            "topics",
            "create",
            "crash-in",
            "--partitions",
            "4",
            "--bootstrap-server",
            &bs,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let mut x: u64 = 7;
    for _ in 0..200_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let line = format!(
            "{} {}",
            WORDS[(x >> 40) as usize % 6],
            WORDS[(x >> 50) as usize % 6]
        );
        for w in line.split(' ') {
            *expected.entry(w.to_string()).or_insert(0) += 1;
        }
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to("crash-in").payload(line.as_bytes());
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
    let state = dir.path().join("state");
    let log = dir.path().join("word_count.log");
    let mut first = start_word_count(&bs, &state, &log, guarantee);
    // Kill it once it has counted some but not all of the input.
    let total: i64 = expected.values().sum();
    let (seen, _) = counts(&bs, isolation, 120, |l| !l.is_empty());
    assert!(!seen.is_empty(), "the word count produced nothing");
    first.0.kill().unwrap(); // SIGKILL
    first.0.wait().unwrap();
    let _second = start_word_count(&bs, &state, &log, guarantee);
    let (got, all) = counts(&bs, isolation, 180, |l| l == &expected);
    if let Ok(keep) = std::env::var("STREAMS_CRASH_LOG") {
        let _ = std::fs::copy(&log, keep);
    }
    assert_eq!(
        got,
        expected,
        "{total} words; log: {}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    if eos {
        for (word, seq) in &all {
            let want: Vec<i64> = (1..=expected[word]).collect();
            assert!(
                seq == &want,
                "{word}: {} counts read for {} occurrences; first out of step at {:?}",
                seq.len(),
                expected[word],
                seq.iter().zip(&want).position(|(a, b)| a != b)
            );
        }
    }
}
