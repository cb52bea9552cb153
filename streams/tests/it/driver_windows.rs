//! Windowed aggregations through the test driver: tumbling, hopping, late records past
//! grace, session merges, suppress.

use std::time::Duration;

use runnel_streams::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn tumbling_windows_count_and_drop_late_records() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
        .count(Materialized::named("clicks-per-10ms"))
        .to_stream()
        .map(|w: Windowed<String>, c| {
            (
                format!("{}@{}-{}", w.key, w.window.start, w.window.end),
                c.unwrap_or(0),
            )
        })
        .to("counts");
    let mut d = TopologyTestDriver::new(b.build())?;
    for ts in [1, 4, 12, 9, 25, 13] {
        d.pipe("clicks", "u".to_string(), "c".to_string(), ts)?;
    }
    // 13 arrives when stream time is 25: window [10,20) closed at 20 + 5 = 25.
    assert_eq!(d.dropped_late_records(), 1);
    let out: Vec<(String, i64)> = d.read_key_values("counts")?;
    assert_eq!(
        out,
        vec![
            ("u@0-10".into(), 1),
            ("u@0-10".into(), 2),
            ("u@10-20".into(), 1),
            ("u@0-10".into(), 3),
            ("u@20-30".into(), 1),
        ]
    );
    let store = d.window_store::<String, i64>("clicks-per-10ms")?;
    assert_eq!(
        store.fetch(&"u".into(), 0, 100)?,
        vec![(0, 3), (10, 1), (20, 1)]
    );
    Ok(())
}

#[test]
fn hopping_windows_count_a_record_in_each_window() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("v")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(5)))
        .aggregate(|| 0i64, |_, v, acc| acc + v, Materialized::named("sums"));
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("v", "k".to_string(), 1i64, 7)?;
    d.pipe("v", "k".to_string(), 10i64, 12)?;
    let store = d.window_store::<String, i64>("sums")?;
    assert_eq!(
        store.fetch(&"k".into(), 0, 100)?,
        vec![(0, 1), (5, 11), (10, 10)]
    );
    Ok(())
}

#[test]
fn session_windows_merge_and_tombstone_the_merged_sessions() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("activity")
        .group_by_key()
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            ms(15),
            ms(100),
        ))
        .count(Materialized::named("sessions"))
        .to_stream()
        .map(|w: Windowed<String>, c| (format!("{}@{}-{}", w.key, w.window.start, w.window.end), c))
        .to("sessions");
    let mut d = TopologyTestDriver::new(b.build())?;
    for ts in [0, 30, 5, 18] {
        d.pipe("activity", "u".to_string(), "x".to_string(), ts)?;
    }
    let out: Vec<(String, Option<i64>)> = d.read_key_values("sessions")?;
    assert_eq!(
        out,
        vec![
            ("u@0-0".into(), Some(1)),
            ("u@30-30".into(), Some(1)),
            // 5 extends the first session.
            ("u@0-0".into(), None),
            ("u@0-5".into(), Some(2)),
            // 18 is within the 15 ms gap of both [0,5] and [30,30]: they merge into [0,30].
            ("u@0-5".into(), None),
            ("u@30-30".into(), None),
            ("u@0-30".into(), Some(4)),
        ]
    );
    let sessions = d
        .session_store::<String, i64>("sessions")?
        .fetch(&"u".into())?;
    assert_eq!(sessions, vec![(Window { start: 0, end: 30 }, 4)]);
    Ok(())
}

#[test]
fn suppress_emits_once_per_window_when_it_closes() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(2)))
        .count(Materialized::named("c"))
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(|w: Windowed<String>, c| (format!("{}@{}", w.key, w.window.start), c.unwrap_or(0)))
        .to("final");
    let mut d = TopologyTestDriver::new(b.build())?;
    for (k, ts) in [("a", 1), ("a", 3), ("b", 8), ("a", 11), ("b", 11)] {
        d.pipe("clicks", k.to_string(), "x".to_string(), ts)?;
    }
    // Stream time 11: [0,10) closes at 12. Nothing final yet.
    assert!(d.read_output::<String, i64>("final")?.is_none());
    d.pipe("clicks", "a".to_string(), "x".to_string(), 12)?;
    let out: Vec<(String, i64)> = d.read_key_values("final")?;
    assert_eq!(out, vec![("a@0".into(), 2), ("b@0".into(), 1)]);
    d.pipe("clicks", "c".to_string(), "x".to_string(), 40)?;
    let out: Vec<(String, i64)> = d.read_key_values("final")?;
    assert_eq!(out, vec![("a@10".into(), 2), ("b@10".into(), 1)]);
    Ok(())
}

#[test]
fn sliding_windows_aggregate_records_within_the_time_difference() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("v")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(ms(10), ms(50)))
        .aggregate(|| 0i64, |_, v, acc| acc + v, Materialized::named("sliding"))
        .to_stream()
        .map(|w: Windowed<String>, s| {
            (
                format!("[{},{}]", w.window.start, w.window.end),
                s.unwrap_or(0),
            )
        })
        .to("sums");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("v", "k".to_string(), 1i64, 10)?;
    d.pipe("v", "k".to_string(), 2i64, 15)?;
    d.pipe("v", "k".to_string(), 4i64, 30)?;
    // Out of order: 8 at 12 opens [2,12] and [13,23] and falls in [5,15] and [11,21].
    d.pipe("v", "k".to_string(), 8i64, 12)?;
    let out: Vec<(String, i64)> = d.read_key_values("sums")?;
    assert_eq!(
        out,
        vec![
            ("[0,10]".into(), 1),
            ("[5,15]".into(), 3),
            ("[11,21]".into(), 2),
            ("[20,30]".into(), 4),
            ("[2,12]".into(), 9),
            ("[5,15]".into(), 11),
            ("[11,21]".into(), 10),
            ("[13,23]".into(), 2),
        ]
    );
    // Every window with records, and its sum, as the store holds it now.
    let store = d.window_store::<String, i64>("sliding")?;
    assert_eq!(
        store.fetch(&"k".into(), 0, 100)?,
        vec![(0, 1), (2, 9), (5, 11), (11, 10), (13, 2), (20, 4)]
    );
    Ok(())
}
