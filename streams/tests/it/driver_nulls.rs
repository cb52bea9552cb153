//! Kafka Streams' rules for nulls and re-grouping, through the test driver: operators
//! that need a key skip (and count) a record without one instead of failing, an
//! aggregation ignores a null value, a null key matches no table row, a table update
//! that stays in its group is one change (KIP-904), and a table filter retracts a row
//! that stops passing.

use runnel_streams::*;

#[test]
fn aggregations_skip_null_keys_and_null_values() -> anyhow::Result<()> {
    // KStreamAggregate: "Skipping record due to null key or value", counted in the
    // dropped-records metric.
    let b = StreamsBuilder::new();
    b.stream::<Option<String>, Option<String>>("events")
        .group_by_key()
        .count(Materialized::named("counts"))
        .to_stream()
        .to("counts");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("events", Some("a".to_string()), Some("x".to_string()), 1)?;
    d.pipe("events", None::<String>, Some("y".to_string()), 2)?;
    d.pipe("events", Some("a".to_string()), None::<String>, 3)?;
    d.pipe("events", Some("a".to_string()), Some("z".to_string()), 4)?;
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("counts")?,
        vec![("a".into(), Some(1)), ("a".into(), Some(2))]
    );
    assert_eq!(d.dropped_records(), 2);
    Ok(())
}

#[test]
fn a_null_key_is_skipped_even_when_the_key_type_has_no_null() -> anyhow::Result<()> {
    // Kafka's StringDeserializer reads a null key as null, which the aggregation skips;
    // a String key cannot hold it, so the source skips the record — the task goes on.
    let b = StreamsBuilder::new();
    b.stream::<String, String>("events")
        .group_by_key()
        .count(Materialized::named("counts"))
        .to_stream()
        .to("counts");
    b.table::<String, String>("rows", Materialized::named("rows"));
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe_raw("events", None, Some(b"x".to_vec()), 1)?;
    d.pipe_raw("rows", None, Some(b"x".to_vec()), 1)?;
    d.pipe("events", "a".to_string(), "y".to_string(), 2)?;
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("counts")?,
        vec![("a".into(), Some(1))]
    );
    assert_eq!(d.dropped_records(), 2);
    assert!(d
        .key_value_store::<String, String>("rows")?
        .all()?
        .is_empty());
    Ok(())
}

#[test]
fn a_null_key_matches_no_table_row_not_even_the_empty_key() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let table = b.table::<Option<String>, String>("table", Materialized::named("t"));
    let stream = b.stream::<Option<String>, String>("stream");
    stream
        .join_table(&table, |s, t| format!("{s}+{t}"))
        .to("inner");
    stream
        .left_join_table(&table, |s, t| {
            format!("{s}+{}", t.map_or("-", |t| t.as_str()))
        })
        .to("left");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("table", Some(String::new()), "empty".to_string(), 1)?;
    d.pipe("stream", None::<String>, "s1".to_string(), 2)?;
    d.pipe("stream", Some(String::new()), "s2".to_string(), 3)?;
    let values = |d: &mut TopologyTestDriver, t: &str| -> anyhow::Result<Vec<String>> {
        Ok(d.read_all::<Option<String>, String>(t)?
            .into_iter()
            .map(|r| r.value)
            .collect())
    };
    assert_eq!(values(&mut d, "inner")?, vec!["s2+empty"]);
    assert_eq!(values(&mut d, "left")?, vec!["s1+-", "s2+empty"]);
    assert_eq!(d.dropped_records(), 1);
    Ok(())
}

#[test]
fn a_table_update_within_its_group_is_one_change() -> anyhow::Result<()> {
    // KIP-904 (Kafka 3.5+): KTableRepartitionMap sends old and new together when the
    // grouping key stays; the aggregation subtracts and adds at once, one result.
    let b = StreamsBuilder::new();
    b.table::<String, i64>("scores", Materialized::named("scores"))
        .group_by(|_, v| (if v % 2 == 0 { "even" } else { "odd" }.to_string(), *v))
        .reduce(|a, b| a + b, |a, b| a - b, Materialized::named("sums"))
        .to_stream()
        .to("sums");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("scores", "a".to_string(), 2i64, 1)?;
    d.pipe("scores", "b".to_string(), 4i64, 2)?;
    d.pipe("scores", "a".to_string(), 6i64, 3)?; // stays even: 6 + 4, one change
    d.pipe("scores", "a".to_string(), 7i64, 4)?; // moves: even loses 6, odd gets 7
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("sums")?,
        vec![
            ("even".into(), Some(2)),
            ("even".into(), Some(6)),
            ("even".into(), Some(10)),
            ("even".into(), Some(4)),
            ("odd".into(), Some(7)),
        ]
    );
    Ok(())
}

#[test]
fn a_table_filter_retracts_a_row_that_stops_passing() -> anyhow::Result<()> {
    // KTableFilter: an update the predicate rejects deletes the row it had let through.
    let b = StreamsBuilder::new();
    b.table::<String, i64>("t", Materialized::named("t"))
        .filter(|_, v| *v > 10, Materialized::named("big"))
        .to_stream()
        .to("big");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("t", "k".to_string(), 20i64, 1)?;
    d.pipe("t", "k".to_string(), 5i64, 2)?;
    d.pipe("t", "k".to_string(), 30i64, 3)?;
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("big")?,
        vec![
            ("k".into(), Some(20)),
            ("k".into(), None),
            ("k".into(), Some(30))
        ]
    );
    assert_eq!(
        d.key_value_store::<String, i64>("big")?.get(&"k".into())?,
        Some(30)
    );
    Ok(())
}
