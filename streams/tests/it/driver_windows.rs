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

/// (key, value, timestamp) of every record on `topic`.
fn stamped(
    d: &mut TopologyTestDriver,
    topic: &str,
) -> anyhow::Result<Vec<(String, Option<i64>, i64)>> {
    Ok(d.read_all::<String, Option<i64>>(topic)?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

fn session_counts(b: &StreamsBuilder, gap: u64, grace: u64) -> KTable<Windowed<String>, i64> {
    b.stream::<String, String>("activity")
        .group_by_key()
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            ms(gap),
            ms(grace),
        ))
        // Every update, as Kafka's own tests run: with the record cache a record that
        // lands inside a session would fold its tombstone and rewrite into one update.
        .count(Materialized::named("sessions").with_caching_disabled())
}

fn session_name(w: Windowed<String>) -> String {
    format!("{}@{}-{}", w.key, w.window.start, w.window.end)
}

#[test]
fn sessions_are_stamped_with_their_end_and_stay_open_for_gap_plus_grace() -> anyhow::Result<()> {
    // KStreamSessionWindowAggregate (Kafka 3.x): results and tombstones carry the
    // session's end; a record joining a session deletes it and writes the merged one
    // anew, even when the record falls inside it; a session is closed once stream time
    // passes its end + inactivity gap + grace.
    let b = StreamsBuilder::new();
    session_counts(&b, 10, 0)
        .to_stream()
        .map(|w, c| (session_name(w), c))
        .to("sessions");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("activity", "a".to_string(), "x".to_string(), 0)?;
    d.pipe("activity", "a".to_string(), "x".to_string(), 5)?;
    d.pipe("activity", "a".to_string(), "x".to_string(), 3)?;
    assert_eq!(
        stamped(&mut d, "sessions")?,
        vec![
            ("a@0-0".into(), Some(1), 0),
            ("a@0-0".into(), None, 0),
            ("a@0-5".into(), Some(2), 5),
            ("a@0-5".into(), None, 5),
            ("a@0-5".into(), Some(3), 5),
        ]
    );
    // Stream time 14: [0,5] is open until 5 + 10 + 0 = 15, so 4 still joins it.
    d.pipe("activity", "b".to_string(), "x".to_string(), 14)?;
    d.pipe("activity", "a".to_string(), "x".to_string(), 4)?;
    assert_eq!(d.dropped_late_records(), 0);
    // Stream time 16: closed; 2 is dropped.
    d.pipe("activity", "b".to_string(), "x".to_string(), 16)?;
    d.pipe("activity", "a".to_string(), "x".to_string(), 2)?;
    assert_eq!(d.dropped_late_records(), 1);
    let out = stamped(&mut d, "sessions")?;
    assert_eq!(
        out.iter()
            .filter(|(k, _, _)| k.starts_with('a'))
            .cloned()
            .collect::<Vec<_>>(),
        vec![("a@0-5".into(), None, 5), ("a@0-5".into(), Some(4), 5)]
    );
    Ok(())
}

#[test]
fn suppressed_sessions_wait_for_gap_plus_grace_and_emit_once() -> anyhow::Result<()> {
    // Kafka's GraphGraceSearchUtil: suppress(untilWindowCloses) after a session
    // aggregation waits out the inactivity gap plus grace past the session's end.
    let b = StreamsBuilder::new();
    session_counts(&b, 10, 2)
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(|w, c| (session_name(w), c))
        .to("final");
    let mut d = TopologyTestDriver::new(b.build())?;
    for (k, ts) in [("a", 0), ("a", 5), ("a", 3), ("b", 16)] {
        d.pipe("activity", k.to_string(), "x".to_string(), ts)?;
    }
    // [0,5] closes when stream time reaches 5 + 10 + 2 = 17.
    assert!(d.read_output::<String, Option<i64>>("final")?.is_none());
    d.pipe("activity", "b".to_string(), "x".to_string(), 17)?;
    assert_eq!(
        stamped(&mut d, "final")?,
        vec![("a@0-5".into(), Some(3), 5)]
    );
    d.pipe("activity", "c".to_string(), "x".to_string(), 100)?;
    assert_eq!(
        stamped(&mut d, "final")?,
        vec![("b@16-17".into(), Some(2), 17)]
    );
    Ok(())
}

#[test]
fn sliding_windows_start_at_zero_and_closed_windows_stay_closed() -> anyhow::Result<()> {
    // KStreamSlidingWindowAggregate: a record earlier than the time difference falls in
    // [0, d] (processEarly); a window whose end + grace stream time has reached is
    // never updated again, even by a record that is not late itself.
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("v")
        .group_by_key()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(ms(10), ms(0)))
        .aggregate(|| 0i64, |_, v, acc| acc + v, Materialized::named("sliding"))
        .to_stream()
        .map(|w: Windowed<String>, s| (format!("[{},{}]", w.window.start, w.window.end), s))
        .to("sums");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("v", "k".to_string(), 1i64, 3)?;
    d.pipe("v", "k".to_string(), 2i64, 8)?;
    let mut out = stamped(&mut d, "sums")?;
    out.sort();
    // Stamped with each window's latest record.
    assert_eq!(
        out,
        vec![
            ("[0,10]".into(), Some(1), 3),
            ("[0,10]".into(), Some(3), 8),
            ("[4,14]".into(), Some(2), 8),
        ]
    );
    d.pipe("v", "k".to_string(), 4i64, 20)?;
    d.pipe("v", "k".to_string(), 8i64, 31)?;
    stamped(&mut d, "sums")?;
    // 21 is not late (21 + 10 >= 31) but the windows it falls in, [11,21] and
    // [21,31], have closed: only its right window [22,32] (holding 31) is new.
    d.pipe("v", "k".to_string(), 16i64, 21)?;
    assert_eq!(
        stamped(&mut d, "sums")?,
        vec![("[22,32]".into(), Some(8), 31)]
    );
    Ok(())
}

#[test]
fn emit_on_window_close_gives_one_final_result_per_window() -> anyhow::Result<()> {
    // KIP-825: windowedBy(...).emitStrategy(EmitStrategy.onWindowClose()).
    let b = StreamsBuilder::new();
    let grouped = b.stream::<String, i64>("v").group_by_key();
    grouped
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(2)))
        .emit_strategy(EmitStrategy::on_window_close())
        .count(Materialized::named("closed-counts"))
        .to_stream()
        .map(|w: Windowed<String>, c| (format!("{}@{}", w.key, w.window.start), c))
        .to("counts");
    grouped
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(ms(10), ms(0)))
        .reduce(|a, b| a.max(b), Materialized::named("sliding-max"))
        .to_stream()
        .map(|w: Windowed<String>, m| (format!("[{},{}]", w.window.start, w.window.end), m))
        .to("max");
    let mut d = TopologyTestDriver::new(b.build())?;
    for (v, ts) in [(5i64, 1), (9, 4), (2, 8)] {
        d.pipe("v", "k".to_string(), v, ts)?;
    }
    // [0,10) closes at stream time 12: nothing final yet.
    assert!(d.read_output::<String, Option<i64>>("counts")?.is_none());
    d.pipe("v", "k".to_string(), 1i64, 12)?;
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("counts")?,
        vec![("k@0".into(), Some(3))]
    );
    let max: Vec<(String, Option<i64>)> = d.read_key_values("max")?;
    assert_eq!(max.first(), Some(&("[0,10]".into(), Some(5))));
    assert!(max.contains(&("[0,10]".into(), Some(9))));
    Ok(())
}

#[test]
fn windowed_output_in_kafkas_layouts_reads_back() -> anyhow::Result<()> {
    // Kafka's WindowedSerdes: TimeWindowedSerializer writes key + start, the
    // SessionWindowedSerializer key + end + start (what Kafka consumers and ksqlDB read).
    let b = StreamsBuilder::new();
    let grouped = b.stream::<String, String>("clicks").group_by_key();
    grouped
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::named("tw"))
        .to_stream()
        .map(|w, c| (TimeWindowedKey::<String, 10>(w), c))
        .to("time-out");
    grouped
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_no_grace(ms(100)))
        .count(Materialized::named("sw"))
        .to_stream()
        .map(|w, c| (SessionWindowedKey(w), c))
        .to("session-out");
    b.stream::<SessionWindowedKey<String>, Option<i64>>("session-out")
        .map(|k, c| (session_name(k.0), c))
        .to("session-read");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("clicks", "u".to_string(), "x".to_string(), 12)?;
    d.pipe("clicks", "u".to_string(), "x".to_string(), 17)?;
    let raw = d.read_all::<Vec<u8>, Option<i64>>("time-out")?;
    let mut want = b"u".to_vec();
    want.extend(10i64.to_be_bytes());
    assert_eq!(raw.last().map(|r| &r.key), Some(&want));
    let back = TimeWindowedKey::<String, 10>::from_bytes(Some(&want))?;
    assert_eq!(back.0.window, Window { start: 10, end: 20 });
    let raw = d.read_all::<Vec<u8>, Option<i64>>("session-out")?;
    let mut want = b"u".to_vec();
    want.extend(17i64.to_be_bytes());
    want.extend(12i64.to_be_bytes());
    assert_eq!(
        raw.last().map(|r| (&r.key, r.value)),
        Some((&want, Some(2)))
    );
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("session-read")?
            .last(),
        Some(&("u@12-17".to_string(), Some(2)))
    );
    Ok(())
}
