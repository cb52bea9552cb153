//! KafkaStreams on a real broker: word count with exact counts, two instances sharing
//! the work, restore from the changelog.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use runnel_streams::runtime::State;
use runnel_streams::*;

use crate::common::*;

const WORDS: [&str; 8] = [
    "apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew",
];

/// Lines of 1..=4 words from a fixed pseudo-random sequence, and the exact counts.
fn lines(n: usize) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut x: u64 = 42;
    let mut counts = BTreeMap::new();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let words = 1 + (x >> 60) as usize % 4;
        let mut line = Vec::new();
        for w in 0..words {
            let word = WORDS[((x >> (8 * w)) & 7) as usize];
            *counts.entry(word.to_string()).or_insert(0) += 1;
            line.push(word);
        }
        out.push(line.join(" "));
    }
    (out, counts)
}

pub fn word_count_topology(input: &str, output: &str) -> Topology {
    let b = StreamsBuilder::new();
    b.stream::<(), String>(input)
        .flat_map_values(|l: String| l.split_whitespace().map(String::from).collect())
        .group_by(|_, w: &String| w.clone())
        .count(Materialized::named("counts"))
        .to_stream()
        .to(output);
    b.build()
}

fn decoded(m: &HashMap<Vec<u8>, Option<Vec<u8>>>) -> BTreeMap<String, i64> {
    m.iter()
        .filter_map(|(k, v)| {
            let v: [u8; 8] = v.as_deref()?.try_into().ok()?;
            Some((
                String::from_utf8_lossy(k).into_owned(),
                i64::from_be_bytes(v),
            ))
        })
        .collect()
}

pub(crate) fn config(bootstrap: &str, app: &str, dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app, bootstrap)
        .unwrap()
        .with("commit.interval.ms", "500")
        .unwrap()
        .with("state.dir", &dir.display().to_string())
        .unwrap()
}

#[test]
fn word_count_is_exact_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "wc-in", 4);
    let (input, expected) = lines(1_000_000);
    produce(
        &bs,
        "wc-in",
        input.iter().map(|l| (None, l.as_bytes().to_vec(), 0)),
    );
    // Two stream threads share the eight tasks.
    let two_threads = config(&bs, "wc", &dir.path().join("state"))
        .with("num.stream.threads", "2")
        .unwrap();
    let mut app = KafkaStreams::new(word_count_topology("wc-in", "wc-out"), two_threads);
    app.start().unwrap();
    let got = latest_per_key(&bs, "wc-out", 120, |m| decoded(m) == expected);
    assert_eq!(decoded(&got), expected);
    wait_for("RUNNING", 30, || app.state() == State::Running);
    let store = app.key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(
        store.get(&"apple".to_string()).unwrap(),
        expected.get("apple").copied()
    );
    assert_eq!(
        store.all().unwrap().into_iter().collect::<BTreeMap<_, _>>(),
        expected
    );
    app.close().unwrap();
    assert_eq!(app.state(), State::NotRunning);
    let _ = Duration::ZERO;
}

#[test]
fn two_instances_split_the_partitions_and_a_restart_restores_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "wc2-in", 4);
    let (input, expected) = lines(20_000);
    let (first, second) = input.split_at(10_000);
    produce(
        &bs,
        "wc2-in",
        first.iter().map(|l| (None, l.as_bytes().to_vec(), 0)),
    );
    let start = |n: usize| {
        let mut app = KafkaStreams::new(
            word_count_topology("wc2-in", "wc2-out"),
            config(&bs, "wc2", &dir.path().join(format!("state-{n}"))),
        );
        app.start().unwrap();
        app
    };
    let mut a = start(1);
    let mut b = start(2);
    wait_for("both instances running", 60, || {
        a.state() == State::Running && b.state() == State::Running
    });
    // Each holds some of the count store's partitions, and together all the words.
    wait_for("both instances own tasks", 60, || {
        let na = a
            .key_value_store::<String, i64>("counts")
            .and_then(|s| s.all())
            .map_or(0, |a| a.len());
        let nb = b
            .key_value_store::<String, i64>("counts")
            .and_then(|s| s.all())
            .map_or(0, |a| a.len());
        na > 0 && nb > 0 && na + nb == WORDS.len()
    });
    // One leaves; the other takes its tasks over, restoring their counts from the
    // changelog, and counts the second half on top.
    a.close().unwrap();
    produce(
        &bs,
        "wc2-in",
        second.iter().map(|l| (None, l.as_bytes().to_vec(), 0)),
    );
    let got = latest_per_key(&bs, "wc2-out", 120, |m| decoded(m) == expected);
    assert_eq!(decoded(&got), expected);
    wait_for("b's store to hold every word", 60, || {
        b.key_value_store::<String, i64>("counts")
            .and_then(|s| s.all())
            .map(|all| all.into_iter().collect::<BTreeMap<_, _>>() == expected)
            .unwrap_or(false)
    });
    b.close().unwrap();
    // A fresh instance (empty state directory) restores everything from the changelog,
    // and says so to its restore listener.
    let restored = Arc::new(Restored::default());
    let mut c = KafkaStreams::new(
        word_count_topology("wc2-in", "wc2-out"),
        config(&bs, "wc2", &dir.path().join("state-3")),
    );
    c.set_state_restore_listener(restored.clone());
    c.start().unwrap();
    wait_for("a restored store", 60, || {
        c.key_value_store::<String, i64>("counts")
            .and_then(|s| s.all())
            .map(|all| all.into_iter().collect::<BTreeMap<_, _>>() == expected)
            .unwrap_or(false)
    });
    let ends = restored.ends.lock().unwrap().clone();
    assert_eq!(
        ends.len(),
        4,
        "one restore per count-store partition: {ends:?}"
    );
    // Every committed update of every word (the changelog is not compacted yet).
    assert!(
        ends.iter().map(|(_, n)| *n).sum::<u64>() >= WORDS.len() as u64,
        "every word restored: {ends:?}"
    );
    c.close().unwrap();
}

#[derive(Default)]
struct Restored {
    ends: std::sync::Mutex<Vec<(i32, u64)>>,
}

impl runnel_streams::runtime::StateRestoreListener for Restored {
    fn on_restore_end(&self, store: &str, partition: i32, total: u64) {
        assert_eq!(store, "counts");
        self.ends.lock().unwrap().push((partition, total));
    }
}

#[test]
fn a_partitioner_picks_the_output_partition() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "part-in", 1);
    create_topic(&bs, "part-out", 3);
    let b = StreamsBuilder::new();
    b.stream::<String, String>("part-in")
        .to_with_partitioner("part-out", |k: &String, _, n| k.len() as i32 % n);
    let mut app = KafkaStreams::new(b.build(), config(&bs, "part", &dir.path().join("state")));
    app.start().unwrap();
    let keys = ["a", "bb", "ccc", "dddd", "eeeee"];
    produce(
        &bs,
        "part-in",
        keys.iter()
            .map(|k| (Some(k.as_bytes().to_vec()), b"v".to_vec(), 0)),
    );
    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "part-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&["part-out"]).unwrap();
    let mut seen = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < keys.len() && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) {
            seen.insert(
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.partition(),
            );
        }
    }
    let expected: BTreeMap<String, i32> = keys
        .iter()
        .map(|k| (k.to_string(), k.len() as i32 % 3))
        .collect();
    assert_eq!(seen, expected);
    app.close().unwrap();
}

/// The empty string is a key like any other (Kafka's `StringSerializer` writes it as
/// zero bytes): the persistent store counts it, where fjall alone refuses (panics on)
/// an empty key. A processor that panics ends its thread as an uncaught exception ends
/// a Kafka Streams thread: state ERROR, with the reason, not a silent RUNNING.
#[test]
fn the_empty_key_is_counted_and_a_panicking_processor_puts_the_app_in_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "ek-in", 1);
    let b = StreamsBuilder::new();
    b.stream::<(), String>("ek-in")
        .peek(|_, v: &String| {
            // The test's poison record: a bug in user code.
            assert_ne!(v, "boom", "poison record");
        })
        .group_by(|_, v: &String| v.clone())
        .count(Materialized::named("ek-counts"))
        .to_stream()
        .to("ek-out");
    let mut app = KafkaStreams::new(b.build(), config(&bs, "ek", &dir.path().join("state")));
    app.start().unwrap();
    let words = ["", "a", "", "b", ""];
    produce(
        &bs,
        "ek-in",
        words.iter().map(|w| (None, w.as_bytes().to_vec(), 0)),
    );
    let want: BTreeMap<String, i64> = [("".into(), 3), ("a".into(), 1), ("b".into(), 1)].into();
    let got = latest_per_key(&bs, "ek-out", 60, |m| decoded(m) == want);
    assert_eq!(decoded(&got), want);

    produce(&bs, "ek-in", [(None, b"boom".to_vec(), 0)]);
    wait_for("state ERROR", 60, || app.state() == State::Error);
    let e = app.last_error().unwrap_or_default();
    assert!(
        e.contains("a processor panicked") && e.contains("poison record"),
        "{e}"
    );
    assert!(app.close().is_err(), "close reports the thread's failure");
}

/// Counts of 20,000 records over 10 keys on a real broker — plain, in one-day windows
/// and in one-hour sessions — with Kafka's record cache (statestore.cache.max.bytes) on
/// and off: all end at the exact counts; with the cache, updates of a key (window,
/// session) between two commits (500 ms apart) are folded, without it every update is
/// an output record (for sessions a tombstone and the grown session).
#[test]
fn the_record_cache_folds_updates_between_commits() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "cache-in", 1);
    let n = 20_000;
    produce(
        &bs,
        "cache-in",
        (0..n).map(|i| {
            let key = format!("k{}", i % 10).into_bytes();
            (Some(key), b"x".to_vec(), 1 + i as i64)
        }),
    );
    let count_topology = |output: &str| {
        let b = StreamsBuilder::new();
        let grouped = b.stream::<String, String>("cache-in").group_by_key();
        grouped
            .count(Materialized::named("counts"))
            .to_stream()
            .to(output);
        grouped
            .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(
                86_400,
            )))
            .count(Materialized::named("daily"))
            .to_stream()
            .map(|w: Windowed<String>, c| (format!("{}@{}", w.key, w.window.start), c))
            .to(&format!("{output}-daily"));
        grouped
            .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(
                Duration::from_secs(3600),
            ))
            .count(Materialized::named("sessions"))
            .to_stream()
            .map(|w: Windowed<String>, c| {
                let key = format!("{}@{}-{}", w.key, w.window.start, w.window.end);
                (key, c)
            })
            .to(&format!("{output}-sessions"));
        grouped
            .windowed_by_sliding(SlidingWindows::of_time_difference_with_no_grace(
                Duration::from_millis(50),
            ))
            .count(Materialized::named("sliding"))
            .to_stream()
            .map(|w: Windowed<String>, c| {
                let key = format!("{}@{}-{}", w.key, w.window.start, w.window.end);
                (key, c)
            })
            .to(&format!("{output}-sliding"));
        b.build()
    };
    // Sliding windows' final counts, from the test driver without the cache.
    let (sliding_expected, sliding_updates) = {
        let cfg = StreamsConfig::new("reference", &bs)
            .unwrap()
            .with("statestore.cache.max.bytes", "0")
            .unwrap();
        let mut d = TopologyTestDriver::with_config(count_topology("reference"), &cfg).unwrap();
        for i in 0..n {
            let key = format!("k{}", i % 10);
            d.pipe("cache-in", key, "x".to_string(), 1 + i as i64)
                .unwrap();
        }
        let updates = d
            .read_all::<String, Option<i64>>("reference-sliding")
            .unwrap();
        let count = updates.len();
        let latest: BTreeMap<String, i64> = updates
            .into_iter()
            .filter_map(|r| Some((r.key, r.value?)))
            .collect();
        (latest, count)
    };
    let expected: BTreeMap<String, i64> = (0..10).map(|k| (format!("k{k}"), 2_000)).collect();
    let mut outputs = Vec::new();
    for (app_id, cache_bytes) in [("cached", "10485760"), ("uncached", "0")] {
        let output = format!("{app_id}-out");
        let cfg = config(&bs, app_id, &dir.path().join(app_id))
            .with("statestore.cache.max.bytes", cache_bytes)
            .unwrap();
        let mut app = KafkaStreams::new(count_topology(&output), cfg);
        app.start().unwrap();
        let all = all_records(&bs, &output, 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == expected
        });
        let daily_expected: BTreeMap<String, i64> = expected
            .iter()
            .map(|(k, c)| (format!("{k}@0"), *c))
            .collect();
        let daily = all_records(&bs, &format!("{output}-daily"), 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == daily_expected
        });
        // Key j's records are at 1 + j, 11 + j, ..., 19991 + j: one session.
        let session_expected: BTreeMap<String, i64> = (0..10)
            .map(|j| (format!("k{j}@{}-{}", 1 + j, 19_991 + j), 2_000))
            .collect();
        let sessions = all_records(&bs, &format!("{output}-sessions"), 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == session_expected
        });
        let sliding = all_records(&bs, &format!("{output}-sliding"), 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == sliding_expected
        });
        app.close().unwrap();
        for (records, want) in [
            (&all, &expected),
            (&daily, &daily_expected),
            (&sessions, &session_expected),
            (&sliding, &sliding_expected),
        ] {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            assert_eq!(&decoded(&latest), want, "{app_id}");
        }
        outputs.push((all.len(), daily.len(), sessions.len(), sliding.len()));
    }
    eprintln!(
        "record cache: (plain, windowed, session, sliding) output records for {n} inputs: \
         {outputs:?}; {} sliding windows",
        sliding_expected.len()
    );
    assert_eq!(
        outputs[1],
        (n, n, 2 * n - 10, sliding_updates),
        "without the cache every update is an output record"
    );
    // Each record opens windows of its own, so folding stops at one output per window.
    assert!(
        outputs[0].3 * 2 <= sliding_updates,
        "the cache should fold sliding windows' updates: {} of {sliding_updates}",
        outputs[0].3
    );
    for folded in [outputs[0].0, outputs[0].1, outputs[0].2] {
        assert!(
            folded * 10 <= n,
            "the cache should fold updates between commits: {folded} output records for {n} inputs"
        );
    }
}

#[test]
fn a_cached_table_source_forwards_each_key_once_per_flush() {
    // KTableSource over a caching store: a key's updates between commits reach the
    // table's downstream as one change (Kafka's default), every one without the cache.
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "table-in", 1);
    let n: i64 = 20_000;
    produce(
        &bs,
        "table-in",
        (0..n).map(|i| {
            let key = format!("k{}", i % 10).into_bytes();
            (Some(key), i.to_be_bytes().to_vec(), 1 + i)
        }),
    );
    let expected: BTreeMap<String, i64> = (0..10).map(|j| (format!("k{j}"), n - 10 + j)).collect();
    let mut outputs = Vec::new();
    for (app_id, cache_bytes) in [("cached-table", "10485760"), ("uncached-table", "0")] {
        let output = format!("{app_id}-out");
        let b = StreamsBuilder::new();
        let latest = b.table::<String, i64>("table-in", Materialized::named("latest"));
        latest.to_stream().to(&output);
        // A named derived table is cached too; its input already comes folded.
        latest
            .map_values(|v| v * 2, Materialized::named("doubled"))
            .to_stream()
            .to(&format!("{output}-doubled"));
        let cfg = config(&bs, app_id, &dir.path().join(app_id))
            .with("statestore.cache.max.bytes", cache_bytes)
            .unwrap();
        let mut app = KafkaStreams::new(b.build(), cfg);
        app.start().unwrap();
        let records = all_records(&bs, &output, 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == expected
        });
        let doubled_expected: BTreeMap<String, i64> =
            expected.iter().map(|(k, v)| (k.clone(), 2 * v)).collect();
        let doubled = all_records(&bs, &format!("{output}-doubled"), 120, |records| {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            decoded(&latest) == doubled_expected
        });
        app.close().unwrap();
        for (records, want) in [(&records, &expected), (&doubled, &doubled_expected)] {
            let latest: HashMap<Vec<u8>, Option<Vec<u8>>> = records.iter().cloned().collect();
            assert_eq!(&decoded(&latest), want, "{app_id}");
        }
        outputs.push((records.len() as i64, doubled.len() as i64));
    }
    eprintln!(
        "table source, named map_values: output records for {n} inputs, cached and not: \
         {outputs:?}"
    );
    assert_eq!(
        outputs[1],
        (n, n),
        "without the cache every update is forwarded"
    );
    for folded in [outputs[0].0, outputs[0].1] {
        assert!(
            folded * 10 <= n,
            "the cache should fold a key's updates: {folded} records"
        );
    }
}

#[test]
fn interactive_queries_read_through_the_record_cache() {
    // Kafka's CachingKeyValueStore serves queries from the cache: a count is visible
    // as soon as it is processed, though nothing is flushed before the next commit.
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(&dir.path().join("broker"));
    let bs = broker.bootstrap.clone();
    create_topic(&bs, "iq-in", 2);
    let b = StreamsBuilder::new();
    b.stream::<String, String>("iq-in")
        .group_by_key()
        .count(Materialized::named("counts"))
        .to_stream()
        .to("iq-out");
    let cfg = config(&bs, "iq-cache", &dir.path().join("iq"))
        .with("commit.interval.ms", "600000")
        .unwrap();
    let mut app = KafkaStreams::new(b.build(), cfg);
    app.start().unwrap();
    produce(
        &bs,
        "iq-in",
        (0..300).map(|i| (Some(format!("k{}", i % 3).into_bytes()), b"x".to_vec(), i)),
    );
    wait_for("every count in the store, through the cache", 60, || {
        let Ok(store) = app.key_value_store::<String, i64>("counts") else {
            return false;
        };
        store.all().ok()
            == Some(vec![
                ("k0".to_string(), 100),
                ("k1".to_string(), 100),
                ("k2".to_string(), 100),
            ])
    });
    // Not flushed: the counts were not forwarded to the output yet.
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "iq-check")
        .create()
        .unwrap();
    let high = |p: i32| {
        consumer
            .fetch_watermarks("iq-out", p, Duration::from_secs(5))
            .map_or(0, |(_, h)| h)
    };
    let (high, high1) = (high(0), high(1));
    assert_eq!(high + high1, 0, "nothing flushed before the commit");
    app.close().unwrap();
}
