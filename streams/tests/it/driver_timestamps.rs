//! Result timestamps as Kafka Streams 3.x sets them (KIP-258, timestamped stores): an
//! aggregation's result carries the largest timestamp of the records behind it, a
//! table-table or foreign-key join result the larger of its two rows' timestamps.

use std::time::Duration;

use runnel_streams::*;

/// (key, value, timestamp) of every record on `topic`.
fn stamped<K: Serde, V: Serde>(
    d: &mut TopologyTestDriver,
    topic: &str,
) -> anyhow::Result<Vec<(K, V, i64)>> {
    Ok(d.read_all::<K, V>(topic)?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

#[test]
fn aggregations_carry_the_latest_timestamp_behind_them() -> anyhow::Result<()> {
    // KStreamAggregate and KStreamWindowAggregate: newTimestamp = max(record, aggregate).
    let b = StreamsBuilder::new();
    let clicks = b.stream::<String, String>("clicks");
    clicks
        .group_by_key()
        .count(Materialized::named("counts"))
        .to_stream()
        .to("counts");
    clicks
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
            100,
        )))
        .count(Materialized::named("windowed"))
        .to_stream()
        .map(|w: Windowed<String>, c| (format!("{}@{}", w.key, w.window.start), c))
        .to("windowed");
    let mut d = TopologyTestDriver::new(b.build())?;
    for ts in [50, 30, 70] {
        d.pipe("clicks", "a".to_string(), "x".to_string(), ts)?;
    }
    // The out-of-order record (30) does not move the result's time back.
    assert_eq!(
        stamped::<String, Option<i64>>(&mut d, "counts")?,
        vec![
            ("a".into(), Some(1), 50),
            ("a".into(), Some(2), 50),
            ("a".into(), Some(3), 70),
        ]
    );
    assert_eq!(
        stamped::<String, Option<i64>>(&mut d, "windowed")?,
        vec![
            ("a@0".into(), Some(1), 50),
            ("a@0".into(), Some(2), 50),
            ("a@0".into(), Some(3), 70),
        ]
    );
    Ok(())
}

#[test]
fn table_joins_carry_the_later_of_both_rows() -> anyhow::Result<()> {
    // KTableKTableInnerJoin / KTableKTableLeftJoin: max(record, other side's row).
    let b = StreamsBuilder::new();
    let left = b.table::<String, String>("left", Materialized::named("l"));
    let right = b.table::<String, String>("right", Materialized::named("r"));
    left.join(
        &right,
        |l, r| format!("{l}+{r}"),
        Materialized::named("inner"),
    )
    .to_stream()
    .to("inner");
    left.left_join(
        &right,
        |l, r| format!("{l}+{}", r.map_or("-", |r| r.as_str())),
        Materialized::named("left-join"),
    )
    .to_stream()
    .to("left-join");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("left", "k".to_string(), "a".to_string(), 10)?;
    d.pipe("right", "k".to_string(), "x".to_string(), 30)?;
    d.pipe("left", "k".to_string(), "b".to_string(), 20)?;
    d.pipe("right", "k".to_string(), "y".to_string(), 25)?;
    assert_eq!(
        stamped::<String, Option<String>>(&mut d, "inner")?,
        vec![
            ("k".into(), Some("a+x".into()), 30),
            ("k".into(), Some("b+x".into()), 30),
            ("k".into(), Some("b+y".into()), 25),
        ]
    );
    assert_eq!(
        stamped::<String, Option<String>>(&mut d, "left-join")?,
        vec![
            ("k".into(), Some("a+-".into()), 10),
            ("k".into(), Some("a+x".into()), 30),
            ("k".into(), Some("b+x".into()), 30),
            ("k".into(), Some("b+y".into()), 25),
        ]
    );
    Ok(())
}

#[test]
fn foreign_key_join_results_carry_the_later_of_both_rows() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let orders = b.table::<String, String>("orders", Materialized::named("orders"));
    let customers = b.table::<String, String>("customers", Materialized::named("customers"));
    orders
        .join_on_foreign_key(
            &customers,
            |customer: &String| customer.clone(),
            |c, name| format!("{c}:{name}"),
            Materialized::named("joined"),
        )
        .to_stream()
        .to("joined");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("customers", "c1".to_string(), "Ann".to_string(), 40)?;
    d.pipe("orders", "o1".to_string(), "c1".to_string(), 10)?;
    d.pipe("customers", "c1".to_string(), "Anna".to_string(), 50)?;
    // The same order again changes nothing: the table source drops it (KIP-557).
    d.pipe("orders", "o1".to_string(), "c1".to_string(), 60)?;
    d.pipe("orders", "o2".to_string(), "c1".to_string(), 70)?;
    assert_eq!(
        stamped::<String, Option<String>>(&mut d, "joined")?,
        vec![
            ("o1".into(), Some("c1:Ann".into()), 40),
            ("o1".into(), Some("c1:Anna".into()), 50),
            ("o2".into(), Some("c1:Anna".into()), 70),
        ]
    );
    Ok(())
}
