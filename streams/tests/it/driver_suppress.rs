//! `KTable::suppress` (KIP-328) as Kafka's KTableSuppressProcessor behaves: time-limit
//! rate limiting with non-resetting buffer times, bounded buffers, and its own
//! observed stream time.

use std::time::Duration;

use runnel_streams::{
    BufferConfig, KStream, Materialized, StreamsBuilder, Suppressed, TimeWindows,
    TopologyTestDriver, Windowed,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Out = Vec<(String, Option<String>, i64)>;

fn read(d: &mut TopologyTestDriver, topic: &str) -> anyhow::Result<Out> {
    Ok(d.read_all::<String, Option<String>>(topic)?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

fn limited_table(limit: u64, buffer: BufferConfig) -> anyhow::Result<TopologyTestDriver> {
    let b = StreamsBuilder::new();
    b.table::<String, String>("users", Materialized::named("users"))
        .suppress(Suppressed::until_time_limit(ms(limit), buffer))
        .to_stream()
        .to("limited");
    Ok(TopologyTestDriver::new(b.build())?)
}

#[test]
fn time_limit_emits_the_latest_update_once_the_first_has_waited() -> anyhow::Result<()> {
    // Suppressed.untilTimeLimit: a key's buffer time is its first held update's
    // (InMemoryTimeOrderedKeyValueBuffer keeps the earlier time, "non-resetting"); it
    // is emitted with its latest value and that value's timestamp once stream time
    // reaches buffer time + limit.
    let mut d = limited_table(10, BufferConfig::unbounded())?;
    for (k, v, ts) in [("a", "1", 0), ("a", "2", 3), ("b", "x", 5), ("a", "3", 9)] {
        d.pipe("users", k.to_string(), v.to_string(), ts)?;
    }
    assert_eq!(read(&mut d, "limited")?, vec![]);
    d.pipe("users", "c".to_string(), "y".to_string(), 10)?;
    assert_eq!(
        read(&mut d, "limited")?,
        vec![("a".into(), Some("3".into()), 9)]
    );
    // a's next update starts a new wait.
    d.pipe("users", "a".to_string(), "4".to_string(), 14)?;
    d.pipe("users", "c".to_string(), "z".to_string(), 15)?;
    assert_eq!(
        read(&mut d, "limited")?,
        vec![("b".into(), Some("x".into()), 5)]
    );
    d.pipe("users", "d".to_string(), "w".to_string(), 24)?;
    assert_eq!(
        read(&mut d, "limited")?,
        vec![
            ("c".into(), Some("z".into()), 15),
            ("a".into(), Some("4".into()), 14),
        ]
    );
    Ok(())
}

#[test]
fn time_limit_emits_deletes() -> anyhow::Result<()> {
    // Only final-results suppression may drop tombstones (safeToDropTombstones).
    let mut d = limited_table(5, BufferConfig::unbounded())?;
    d.pipe("users", "a".to_string(), "1".to_string(), 0)?;
    d.pipe_raw("users", Some(b"a".to_vec()), None, 2)?;
    d.pipe("users", "b".to_string(), "2".to_string(), 5)?;
    assert_eq!(read(&mut d, "limited")?, vec![("a".into(), None, 2)]);
    Ok(())
}

#[test]
fn a_full_buffer_emits_its_oldest_keys_early() -> anyhow::Result<()> {
    // BufferConfig.maxRecords(n) emits early when full (EagerBufferConfigImpl).
    let mut d = limited_table(1_000, BufferConfig::max_records(2))?;
    for (k, ts) in [("a", 0), ("b", 1), ("a", 2)] {
        d.pipe("users", k.to_string(), format!("{k}{ts}"), ts)?;
    }
    assert_eq!(read(&mut d, "limited")?, vec![]);
    d.pipe("users", "c".to_string(), "c3".to_string(), 3)?;
    // Three keys held, two allowed: the oldest (a, first held at 0) goes now.
    assert_eq!(
        read(&mut d, "limited")?,
        vec![("a".into(), Some("a2".into()), 2)]
    );
    Ok(())
}

#[test]
fn a_full_final_results_buffer_stops_the_task() -> anyhow::Result<()> {
    // untilWindowCloses takes a strict buffer: full means shut down, never emit early.
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(100)))
        .count(Materialized::named("c").with_caching_disabled())
        .suppress(Suppressed::until_window_closes_with(
            BufferConfig::max_records(1),
        ))
        .to_stream()
        .to("final");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("clicks", "a".to_string(), "x".to_string(), 1)?;
    let err = d
        .pipe("clicks", "b".to_string(), "x".to_string(), 2)
        .expect_err("a second window overfills a one-record buffer");
    assert!(
        err.to_string()
            .contains("exceeded its max capacity. Currently [2/1] records"),
        "{err}"
    );
    Ok(())
}

#[test]
fn final_results_need_a_windowed_table() {
    // GraphGraceSearchUtil: "Window close time is only defined for windowed
    // computations" — a topology error, before any record.
    let b = StreamsBuilder::new();
    b.table::<String, String>("users", Materialized::named("users"))
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .to("out");
    let err = TopologyTestDriver::new(b.build())
        .err()
        .expect("suppress(until_window_closes) of a plain table is refused");
    assert!(
        err.to_string()
            .contains("window close time is only defined for windowed computations"),
        "{err}"
    );
}

/// Each key's count per 10 ms window, final results only, to "final" as `key@start`.
fn final_counts_of_10ms_windows(s: KStream<String, String>) {
    s.group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::named("c").with_caching_disabled())
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(|w: Windowed<String>, c| (format!("{}@{}", w.key, w.window.start), c))
        .to("final");
}

#[test]
fn suppress_closes_windows_by_the_time_it_has_seen() -> anyhow::Result<()> {
    // KTableSuppressProcessor advances its own observedStreamTime with the records it
    // receives: a record filtered out upstream does not close a window here.
    let b = StreamsBuilder::new();
    final_counts_of_10ms_windows(
        b.stream::<String, String>("clicks")
            .filter(|_, v| v != "ignored"),
    );
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("clicks", "a".to_string(), "x".to_string(), 1)?;
    d.pipe("clicks", "a".to_string(), "ignored".to_string(), 50)?;
    assert!(d.read_output::<String, Option<i64>>("final")?.is_none());
    d.pipe("clicks", "b".to_string(), "x".to_string(), 10)?;
    let out: Vec<(String, Option<i64>)> = d.read_key_values("final")?;
    assert_eq!(out, vec![("a@0".into(), Some(1))]);
    Ok(())
}

#[test]
fn suppress_after_a_merge_emits_each_window_once() -> anyhow::Result<()> {
    // A processor reached from two parents (here the aggregation after `merge`) is one
    // instance per task, as in Kafka's processor graph: one buffer, one final result
    // per window whichever input closes it.
    let b = StreamsBuilder::new();
    let web = b.stream::<String, String>("web");
    let app = b.stream::<String, String>("app");
    final_counts_of_10ms_windows(web.merge(&app));
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("web", "u".to_string(), "x".to_string(), 1)?;
    d.pipe("app", "u".to_string(), "x".to_string(), 2)?;
    d.pipe("web", "v".to_string(), "x".to_string(), 3)?;
    d.pipe("app", "v".to_string(), "x".to_string(), 12)?;
    d.pipe("web", "w".to_string(), "x".to_string(), 25)?;
    d.pipe("app", "w".to_string(), "x".to_string(), 40)?;
    let out: Vec<(String, Option<i64>)> = d.read_key_values("final")?;
    assert_eq!(
        out,
        vec![
            ("u@0".into(), Some(2)),
            ("v@0".into(), Some(1)),
            ("v@10".into(), Some(1)),
            ("w@20".into(), Some(1)),
        ]
    );
    Ok(())
}
