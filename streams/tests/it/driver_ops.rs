//! Stateless operators, aggregations and the Processor API through the test driver.

use std::collections::BTreeMap;
use std::time::Duration;

use runnel_streams::*;

#[test]
fn word_count_counts_every_word() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<(), String>("lines")
        .flat_map_values(|line: String| line.split_whitespace().map(str::to_lowercase).collect())
        .group_by(|_, word: &String| word.clone())
        .count(Materialized::named("counts"))
        .to_stream()
        .to("word-counts");
    let topology = b.build();
    assert_eq!(topology.subtopologies.len(), 2, "{}", topology.describe());
    let mut d = TopologyTestDriver::new(topology)?;
    for (i, line) in ["The cat", "the dog", "a CAT the"].iter().enumerate() {
        d.pipe("lines", (), line.to_string(), i as i64)?;
    }
    let out: Vec<(String, Option<i64>)> = d.read_key_values("word-counts")?;
    let last: BTreeMap<String, i64> = out.iter().map(|(k, v)| (k.clone(), v.unwrap())).collect();
    assert_eq!(
        last,
        BTreeMap::from([
            ("the".into(), 3),
            ("cat".into(), 2),
            ("dog".into(), 1),
            ("a".into(), 1)
        ])
    );
    assert_eq!(out.len(), 7, "one update per word occurrence");
    let store = d.key_value_store::<String, i64>("counts")?;
    assert_eq!(store.get(&"the".to_string())?, Some(3));
    assert_eq!(store.get(&"bird".to_string())?, None);
    assert_eq!(store.all()?.len(), 4);
    Ok(())
}

#[test]
fn stateless_operators() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let s = b.stream::<String, i64>("in");
    let branches = s
        .filter(|_, v| *v >= 0)
        .peek(|_, _| {})
        .branch(vec![Box::new(|_, v| *v % 2 == 0), Box::new(|_, v| *v > 10)]);
    branches.branches[0].map_values(|v| v * 10).to("even");
    branches.branches[1]
        .select_key(|k, _| format!("big-{k}"))
        .to("big");
    branches.default.filter_not(|_, v| *v == 1).to("odd");
    let other = b.stream::<String, i64>("other");
    s.merge(&other)
        .map(|k, v| (v.to_string(), k))
        .flat_map(|k, v| vec![(k.clone(), v.clone()), (k, v.to_uppercase())])
        .to("merged");
    let mut d = TopologyTestDriver::new(b.build())?;
    for (k, v) in [("a", 2i64), ("b", 13), ("c", 1), ("d", 5), ("e", -4)] {
        d.pipe("in", k.to_string(), v, 0)?;
    }
    d.pipe("other", "z".to_string(), 7i64, 0)?;
    assert_eq!(
        d.read_key_values::<String, i64>("even")?,
        vec![("a".into(), 20)]
    );
    assert_eq!(
        d.read_key_values::<String, i64>("big")?,
        vec![("big-b".into(), 13)]
    );
    assert_eq!(
        d.read_key_values::<String, i64>("odd")?,
        vec![("d".into(), 5)]
    );
    let merged: Vec<(String, String)> = d.read_key_values("merged")?;
    assert_eq!(merged.len(), 12);
    assert_eq!(merged[10], ("7".into(), "z".into()));
    assert_eq!(merged[11], ("7".into(), "Z".into()));
    Ok(())
}

#[test]
fn reduce_aggregate_and_table_group_by_with_subtractor() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let s = b.stream::<String, i64>("amounts");
    s.group_by_key()
        .reduce(|a, b| a.max(b), Materialized::named("max"))
        .to_stream()
        .to("max");
    s.group_by_key()
        .aggregate(
            || Json(Vec::new()),
            |_, v, mut acc: Json<Vec<i64>>| {
                acc.0.push(*v);
                acc
            },
            Materialized::named("lists").in_memory(),
        )
        .map_values(
            |l: &Json<Vec<i64>>| l.0.iter().sum::<i64>(),
            Materialized::named("sums"),
        );
    // user -> region table, regrouped: users per region, kept right as users move.
    let users = b.table::<String, String>("user-regions", Materialized::named("users"));
    users
        .group_by(|_, region| (region.clone(), 1i64))
        .count(Materialized::named("per-region"))
        .to_stream()
        .to("region-counts");
    let mut d = TopologyTestDriver::new(b.build())?;
    for v in [3, 9, 4] {
        d.pipe("amounts", "k".to_string(), v as i64, 0)?;
    }
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("max")?,
        vec![
            ("k".into(), Some(3)),
            ("k".into(), Some(9)),
            ("k".into(), Some(9))
        ]
    );
    assert_eq!(
        d.key_value_store::<String, i64>("sums")?.get(&"k".into())?,
        Some(16)
    );
    d.pipe("user-regions", "alice".to_string(), "eu".to_string(), 0)?;
    d.pipe("user-regions", "bob".to_string(), "eu".to_string(), 0)?;
    d.pipe("user-regions", "alice".to_string(), "us".to_string(), 0)?;
    d.pipe_raw("user-regions", Some(b"bob".to_vec()), None, 0)?;
    let regions = d.key_value_store::<String, i64>("per-region")?;
    assert_eq!(regions.get(&"eu".into())?, Some(0));
    assert_eq!(regions.get(&"us".into())?, Some(1));
    let updates: Vec<(String, Option<i64>)> = d.read_key_values("region-counts")?;
    assert_eq!(
        updates,
        vec![
            ("eu".into(), Some(1)),
            ("eu".into(), Some(2)),
            ("eu".into(), Some(1)),
            ("us".into(), Some(1)),
            ("eu".into(), Some(0)),
        ]
    );
    Ok(())
}

#[test]
fn tables_from_topics_and_streams_filter_and_delete() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let t = b.table::<String, i64>("prices", Materialized::named("prices").in_memory());
    t.filter(|_, v| *v > 10, Materialized::named("expensive"))
        .to_stream()
        .to("expensive");
    b.stream::<String, i64>("events")
        .to_table(Materialized::named("latest"))
        .to_stream()
        .to("latest");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("prices", "a".to_string(), 20i64, 0)?;
    d.pipe("prices", "a".to_string(), 5i64, 0)?;
    d.pipe("prices", "b".to_string(), 1i64, 0)?;
    d.pipe_raw("prices", Some(b"a".to_vec()), None, 0)?;
    // Only changes of the filtered table: a enters, a leaves (tombstone); b never enters.
    assert_eq!(
        d.read_key_values::<String, Option<i64>>("expensive")?,
        vec![("a".into(), Some(20)), ("a".into(), None)]
    );
    assert_eq!(
        d.key_value_store::<String, i64>("prices")?.all()?,
        vec![("b".into(), 1)]
    );
    d.pipe("events", "x".to_string(), 1i64, 0)?;
    d.pipe("events", "x".to_string(), 2i64, 0)?;
    assert_eq!(
        d.key_value_store::<String, i64>("latest")?
            .get(&"x".into())?,
        Some(2)
    );
    Ok(())
}

#[test]
fn a_table_source_drops_updates_that_change_nothing() -> anyhow::Result<()> {
    // KIP-557 (KTableSource, putIfDifferentValues): the same value again at the same or
    // a later time is dropped; an older time is an update (out of order); deleting an
    // absent key changes nothing either.
    let b = StreamsBuilder::new();
    b.table::<String, i64>("prices", Materialized::named("prices"))
        .to_stream()
        .to("changes");
    let mut d = TopologyTestDriver::new(b.build())?;
    for (v, ts) in [(1i64, 5), (1, 5), (1, 7), (1, 3), (2, 8)] {
        d.pipe("prices", "a".to_string(), v, ts)?;
    }
    d.pipe_raw("prices", Some(b"b".to_vec()), None, 9)?;
    d.pipe_raw("prices", Some(b"a".to_vec()), None, 10)?;
    let changes: Vec<(String, Option<i64>, i64)> = d
        .read_all::<String, Option<i64>>("changes")?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("a".into(), Some(1), 5),
            ("a".into(), Some(1), 3),
            ("a".into(), Some(2), 8),
            ("a".into(), None, 10),
        ]
    );
    Ok(())
}

#[test]
fn bad_records_fail_clearly() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("in").to("out");
    let mut d = TopologyTestDriver::new(b.build())?;
    let err = d
        .pipe_raw("in", Some(b"k".to_vec()), Some(b"abc".to_vec()), 0)
        .unwrap_err();
    assert!(err.to_string().contains("a long"), "{err}");
    Ok(())
}

#[test]
fn the_driver_takes_a_config_and_counts_skipped_records() -> anyhow::Result<()> {
    // Kafka: new TopologyTestDriver(topology, props) with LogAndContinueExceptionHandler.
    let b = StreamsBuilder::new();
    b.stream::<String, i64>("in").to("out");
    let config = StreamsConfig::new("configured", "unused:9092")?.with(
        "default.deserialization.exception.handler",
        "LogAndContinueExceptionHandler",
    )?;
    let mut d = TopologyTestDriver::with_config(b.build(), &config)?;
    d.pipe_raw("in", Some(b"k".to_vec()), Some(b"abc".to_vec()), 0)?;
    d.pipe("in", "k".to_string(), 7i64, 1)?;
    assert_eq!(
        d.read_key_values::<String, i64>("out")?,
        vec![("k".into(), 7)]
    );
    assert_eq!(d.dropped_records(), 1);
    Ok(())
}

struct Dedupe;

impl Processor<String, String, String, String> for Dedupe {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        r: Record<String, String>,
    ) {
        if ctx.get::<String, i64>("seen", &r.value).is_none() {
            ctx.put("seen", &r.value, Some(&r.timestamp));
            ctx.forward(r);
        }
    }
    fn punctuations(&self) -> Vec<(PunctuationType, i64)> {
        vec![
            (PunctuationType::WallClockTime, 1000),
            (PunctuationType::StreamTime, 100),
        ]
    }
    fn punctuate(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        kind: PunctuationType,
        time: i64,
    ) {
        match kind {
            // Forget what was seen more than 100 ms of stream time ago.
            PunctuationType::StreamTime => {
                for (v, ts) in ctx.all::<String, i64>("seen") {
                    if ts < time - 100 {
                        ctx.put::<String, i64>("seen", &v, None);
                    }
                }
            }
            PunctuationType::WallClockTime => {
                ctx.forward(Record::new("tick".into(), time.to_string(), time));
            }
        }
    }
}

#[test]
fn processor_api_with_stores_and_punctuations() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    b.stream::<String, String>("in")
        .process(|| Dedupe, vec![Materialized::named("seen").in_memory()])
        .to("out");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("in", "k".to_string(), "x".to_string(), 0)?;
    d.pipe("in", "k".to_string(), "x".to_string(), 50)?;
    d.pipe("in", "k".to_string(), "y".to_string(), 60)?;
    // Stream time 250 punctuates and forgets x (seen at 0).
    d.pipe("in", "k".to_string(), "z".to_string(), 250)?;
    d.pipe("in", "k".to_string(), "x".to_string(), 260)?;
    let vals: Vec<String> = d
        .read_key_values::<String, String>("out")?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(vals, vec!["x", "y", "z", "x"]);
    d.advance_wall_clock_time(Duration::from_millis(999))?;
    assert!(d.read_output::<String, String>("out")?.is_none());
    d.advance_wall_clock_time(Duration::from_millis(1))?;
    assert_eq!(
        d.read_output::<String, String>("out")?.map(|r| r.value),
        Some("1000".into())
    );
    Ok(())
}
