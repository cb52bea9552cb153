//! A stateless stream query (filter and projection) runs vectorized: the Streams
//! runtime hands its processor batches of records and DataFusion evaluates each filter
//! and projection once per batch. The output must be what ksqlDB writes row by row:
//! every record in input order, an expression that fails on one row (a division by
//! zero) NULL for that row only, a tombstone dropped by the WHERE, a malformed record
//! skipped without stopping the rest of its batch.

use serde_json::{json, Value};

use crate::common::{produce, some, Raw, Stack};

#[test]
fn a_vectorized_filter_and_projection_match_row_by_row_results() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("SET 'auto.offset.reset'='earliest';");
    run(
        "CREATE STREAM nums (k STRING KEY, id INT, d INT, name STRING)
           WITH (KAFKA_TOPIC='nums', VALUE_FORMAT='JSON', PARTITIONS=1);",
    );
    let n = 5000;
    let divisor = |i: i32| if i == 2500 { 0 } else { 1 + i % 5 };
    let records: Vec<Raw> = (0..n)
        .map(|i| {
            let key = some(format!("k{i}").as_bytes());
            let value = if i % 50 == 49 {
                None
            } else if i % 97 == 96 {
                some(b"{not json")
            } else {
                some(
                    json!({"id": i, "d": divisor(i), "name": format!("n{i}")})
                        .to_string()
                        .as_bytes(),
                )
            };
            (key, value)
        })
        .collect();
    produce(&stack.broker.bootstrap, "nums", &records);
    run(
        "CREATE STREAM out AS SELECT k, id, 700 / d AS q, UCASE(name) AS up
           FROM nums WHERE id % 3 <> 0;",
    );

    let expected: Vec<(String, Value)> = (0..n)
        .filter(|i| i % 50 != 49 && i % 97 != 96 && i % 3 != 0)
        .map(|i| {
            let q = match divisor(i) {
                0 => Value::Null,
                d => json!(700 / d),
            };
            (
                format!("k{i}"),
                json!({"ID": i, "Q": q, "UP": format!("N{i}")}),
            )
        })
        .collect();
    let got = runnel_testkit::wait_until(
        "every result in OUT",
        60,
        || {
            stack
                .rt
                .block_on(stack.engine.kafka().read_all("OUT"))
                .unwrap()
        },
        |records| records.len() >= expected.len(),
    );
    let got: Vec<(String, Value)> = got
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned(),
                serde_json::from_slice(r.value.as_deref().unwrap_or(b"null")).unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
}

/// A windowed aggregation runs vectorized: each batch's rows are filtered, grouped and
/// aggregated at once, each group's state read and written once per batch. With record
/// caching off (as ksqlDB's own tests run) the output must be every update in input
/// order, as Kafka Streams' hopping windows give them (TimeWindows: windows
/// `[k*advance, k*advance+size)`, a record is late once stream time reaches the
/// window's end + grace); a division by zero inside SUM's argument is NULL for that
/// row only, malformed records are skipped, HAVING holds back a group's first update.
/// With caching on (ksqlDB's default) a window's updates are deduplicated as a cached
/// KTable's are: what is emitted for each window is a subsequence of its updates that
/// ends with its final result.
#[test]
fn a_vectorized_windowed_aggregation_emits_what_kafka_streams_does() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("SET 'auto.offset.reset'='earliest';");
    run(
        "CREATE STREAM readings (k STRING KEY, t BIGINT, v INT, d INT)
           WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=1, TIMESTAMP='t');",
    );
    let n = 6000i64;
    let (size, advance, grace) = (2000i64, 1000i64, 1000i64);
    let event_time = |i: i64| {
        if i % 503 == 502 {
            1000 + i * 10 - 2500
        } else {
            1000 + i * 10
        }
    };
    let divisor = |i: i64| if i == 3000 { 0 } else { 1 + i % 3 };
    let records: Vec<Raw> = (0..n)
        .map(|i| {
            let key = some(format!("s{}", i % 37).as_bytes());
            let value = if i % 211 == 210 {
                b"{\"T\": oops".to_vec()
            } else {
                json!({"T": event_time(i), "V": i % 11, "D": divisor(i)})
                    .to_string()
                    .into_bytes()
            };
            (key, Some(value))
        })
        .collect();
    produce(&stack.broker.bootstrap, "readings", &records);

    // Kafka Streams' hopping windows and grace, and ksqlDB's SUM (NULLs ignored).
    let mut expected: Vec<((String, i64), Value)> = Vec::new();
    let mut state: std::collections::HashMap<(String, i64), (i64, i64)> = Default::default();
    let mut stream_time = i64::MIN;
    for i in (0..n).filter(|i| i % 211 != 210) {
        let t = event_time(i);
        stream_time = stream_time.max(t);
        if i % 11 == 4 {
            continue;
        }
        let first = ((t - size + advance).max(0) / advance) * advance;
        for start in (first..=t).step_by(advance as usize) {
            if start + size + grace <= stream_time {
                continue;
            }
            let key = (format!("s{}", i % 37), start);
            let (count, sum) = state.entry(key.clone()).or_default();
            *count += 1;
            if divisor(i) != 0 {
                *sum += (i % 11) * 100 / divisor(i);
            }
            if *count > 1 {
                expected.push((key, json!({"N": *count, "S": *sum})));
            }
        }
    }
    let query = |sink: &str| {
        format!(
            "CREATE TABLE {sink} AS SELECT k, COUNT(*) AS n, SUM(v * 100 / d) AS s FROM readings
               WINDOW HOPPING (SIZE 2 SECONDS, ADVANCE BY 1 SECOND, GRACE PERIOD 1 SECOND)
               WHERE v <> 4 GROUP BY k HAVING COUNT(*) > 1;"
        )
    };
    run("SET 'ksql.streams.cache.max.bytes.buffering'='0';");
    run(&query("every_update"));
    run("SET 'ksql.streams.cache.max.bytes.buffering'='10485760';");
    run(&query("cached"));

    let read = |topic: &str| -> Vec<((String, i64), Value)> {
        let records = stack
            .rt
            .block_on(stack.engine.kafka().read_all(topic))
            .unwrap();
        records
            .iter()
            .map(|r| {
                let key = r.key.as_deref().unwrap_or_default();
                let (k, start) = key.split_at(key.len().saturating_sub(8));
                let start = i64::from_be_bytes(start.try_into().unwrap_or([0; 8]));
                let value = serde_json::from_slice(r.value.as_deref().unwrap_or(b"null")).unwrap();
                ((String::from_utf8_lossy(k).into_owned(), start), value)
            })
            .collect()
    };
    runnel_testkit::wait_until(
        "every update in EVERY_UPDATE",
        60,
        || read("EVERY_UPDATE").len(),
        |got| *got >= expected.len(),
    );
    let got = read("EVERY_UPDATE");
    assert_eq!(got.len(), expected.len());
    if let Some(i) = (0..got.len()).find(|i| got[*i] != expected[*i]) {
        panic!("update {i}: got {:?}, expected {:?}", got[i], expected[i]);
    }

    // Cached: per window, a subsequence of its updates ending with the final result.
    let mut per_window: std::collections::BTreeMap<(String, i64), Vec<Value>> = Default::default();
    for (k, v) in &expected {
        per_window.entry(k.clone()).or_default().push(v.clone());
    }
    let finals = |records: &[((String, i64), Value)]| {
        let mut last = std::collections::BTreeMap::new();
        for (k, v) in records {
            last.insert(k.clone(), v.clone());
        }
        last
    };
    let want_finals: std::collections::BTreeMap<_, _> = per_window
        .iter()
        .map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default()))
        .collect();
    runnel_testkit::wait_until(
        "every window's final result in CACHED",
        60,
        || finals(&read("CACHED")) == want_finals,
        |done| *done,
    );
    let cached = read("CACHED");
    assert!(
        cached.len() < expected.len(),
        "caching on emitted {} records for {} updates",
        cached.len(),
        expected.len()
    );
    let mut seen: std::collections::BTreeMap<(String, i64), usize> = Default::default();
    for (k, v) in &cached {
        let updates = &per_window[k];
        let from = seen.get(k).copied().unwrap_or(0);
        let Some(at) = updates[from..].iter().position(|u| u == v) else {
            panic!("{k:?}: {v} is not one of its later updates");
        };
        seen.insert(k.clone(), from + at + 1);
    }
}
