//! Operator names and options as Kafka's `Grouped`, `Joined`, `StreamJoined` and
//! `Consumed` give them: named internal topics and stores keep their names when the
//! topology changes, and the named operators still compute the same results.

use std::collections::BTreeSet;
use std::time::Duration;

use runnel_streams::topology::TopicRef;
use runnel_streams::*;

fn internal_topics(t: &Topology) -> BTreeSet<String> {
    t.internal_topics
        .iter()
        .map(|i| i.topic.resolve("app"))
        .collect()
}

fn stores(t: &Topology) -> BTreeSet<String> {
    t.subtopologies
        .iter()
        .flat_map(|s| s.stores.iter().map(|s| s.name.clone()))
        .collect()
}

#[test]
fn grouped_names_the_repartition_topic() -> anyhow::Result<()> {
    // Grouped.as(name): `<application.id>-<name>-repartition` (KGroupedStreamImpl,
    // KTableImpl.groupBy).
    let b = StreamsBuilder::new();
    let clicks = b.stream::<String, String>("clicks");
    clicks
        .group_by_with(|_, page: &String| page.clone(), Grouped::named("by-page"))
        .count(Materialized::named("page-counts"))
        .to_stream()
        .to("page-counts");
    clicks
        .select_key(|_, page: &String| format!("{page}!"))
        .group_by_key_with(Grouped::named("rekeyed"))
        .count(Materialized::named("rekeyed-counts"));
    b.table::<String, String>("users", Materialized::named("users"))
        .group_by_with(
            |_, region: &String| (region.clone(), 1i64),
            Grouped::named("by-region"),
        )
        .count(Materialized::named("region-counts"));
    let t = b.build();
    let topics = internal_topics(&t);
    for name in [
        "app-by-page-repartition",
        "app-rekeyed-repartition",
        "app-by-region-repartition",
    ] {
        assert!(topics.contains(name), "{name} missing from {topics:?}");
    }
    let mut d = TopologyTestDriver::new(t)?;
    for page in ["home", "cart", "home"] {
        d.pipe("clicks", "u".to_string(), page.to_string(), 0)?;
    }
    let counts: Vec<(String, i64)> = d.read_key_values("page-counts")?;
    assert_eq!(
        counts,
        vec![("home".into(), 1), ("cart".into(), 1), ("home".into(), 2)]
    );
    Ok(())
}

#[test]
fn stream_joined_names_the_join_stores_and_repartition_topics() -> anyhow::Result<()> {
    // KStreamImplJoin: stores `<store>-this-join-store`, `<store>-outer-other-join-store`
    // for a left join (`-outer-this-join` too for an outer join), the shared outer
    // store `<store>-outer-shared-join-store`; repartition topics
    // `<name>-left-repartition` and `<name>-right-repartition`.
    let b = StreamsBuilder::new();
    let views = b
        .stream::<String, String>("views")
        .select_key(|_, v: &String| v.clone());
    let clicks = b
        .stream::<String, String>("clicks")
        .select_key(|_, c: &String| c.clone());
    let w = JoinWindows::of_time_difference_without_grace(Duration::from_millis(10));
    views
        .left_join_with(
            &clicks,
            |v, c| format!("{v}+{}", c.map_or("-", |c| c.as_str())),
            w,
            StreamJoined::named("vc").with_store_name("vc-store"),
        )
        .to("left");
    views
        .outer_join_with(
            &clicks,
            |v, c| format!("{v:?}+{c:?}"),
            w,
            StreamJoined::default().with_store_name("both"),
        )
        .to("outer");
    let t = b.build();
    let topics = internal_topics(&t);
    for name in [
        "app-vc-left-repartition",
        "app-vc-right-repartition",
        "app-vc-store-this-join-store-changelog",
        "app-vc-store-outer-other-join-store-changelog",
        "app-vc-store-outer-shared-join-store-changelog",
    ] {
        assert!(topics.contains(name), "{name} missing from {topics:?}");
    }
    let stores = stores(&t);
    for name in [
        "both-outer-this-join-store",
        "both-outer-other-join-store",
        "both-outer-shared-join-store",
    ] {
        assert!(stores.contains(name), "{name} missing from {stores:?}");
    }
    let mut d = TopologyTestDriver::new(t)?;
    d.pipe("views", "u".to_string(), "k".to_string(), 0)?;
    d.pipe("clicks", "u".to_string(), "k".to_string(), 5)?;
    let left: Vec<(String, String)> = d.read_key_values("left")?;
    assert_eq!(left, vec![("k".into(), "k+k".into())]);
    Ok(())
}

#[test]
fn stream_joined_without_logging_has_no_changelogs() {
    let b = StreamsBuilder::new();
    let a = b.stream::<String, String>("a");
    a.join_with(
        &b.stream::<String, String>("b"),
        |x, y| format!("{x}{y}"),
        JoinWindows::of_time_difference_without_grace(Duration::from_millis(1)),
        StreamJoined::default()
            .with_store_name("ab")
            .with_logging_disabled(),
    )
    .to("ab");
    let t = b.build();
    assert!(
        !t.internal_topics
            .iter()
            .any(|i| matches!(&i.topic, TopicRef::Internal(n) if n.contains("changelog"))),
        "{:?}",
        internal_topics(&t)
    );
    assert!(stores(&t).contains("ab-this-join-store"));
}

#[test]
fn joined_names_the_stream_side_repartition() -> anyhow::Result<()> {
    // KStreamImpl.join(KTable, joiner, Joined.as(name)): `<name>-repartition`.
    let b = StreamsBuilder::new();
    let users = b.table::<String, String>("users", Materialized::named("users"));
    b.stream::<String, String>("orders")
        .select_key(|_, user: &String| user.clone())
        .join_table_with(
            &users,
            |o, u| format!("{o}@{u}"),
            Joined::named("orders-by-user"),
        )
        .to("enriched");
    let t = b.build();
    assert!(internal_topics(&t).contains("app-orders-by-user-repartition"));
    let mut d = TopologyTestDriver::new(t)?;
    d.pipe("users", "ann".to_string(), "paris".to_string(), 0)?;
    d.pipe("orders", "o1".to_string(), "ann".to_string(), 1)?;
    let out: Vec<(String, String)> = d.read_key_values("enriched")?;
    assert_eq!(out, vec![("ann".into(), "ann@paris".into())]);
    Ok(())
}

#[test]
fn consumed_with_a_timestamp_extractor_sets_event_time() -> anyhow::Result<()> {
    // Consumed.with(TimestampExtractor): the record's event time comes from its value.
    let b = StreamsBuilder::new();
    b.stream_with::<String, i64>(
        "readings",
        Consumed::with_timestamp_extractor(|_, v: &i64, _| *v * 1000),
    )
    .to("out");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("readings", "s".to_string(), 7i64, 1)?;
    let r = d
        .read_output::<String, i64>("out")?
        .expect("the reading is forwarded");
    assert_eq!((r.value, r.timestamp), (7, 7000));
    Ok(())
}
