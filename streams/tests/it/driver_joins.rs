//! Joins through the test driver: stream-table, stream-global table, stream-stream
//! windowed (inner, left, outer), table-table (inner, left, outer).

use std::time::Duration;

use runnel_streams::*;

#[test]
fn stream_table_joins_look_up_only_when_the_stream_side_arrives() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let users = b.table::<String, String>("users", Materialized::named("users"));
    let clicks = b.stream::<String, String>("clicks");
    clicks
        .join_table(&users, |page, region| format!("{page}/{region}"))
        .to("inner");
    clicks
        .left_join_table(&users, |page, region| {
            format!("{page}/{}", region.map_or("?", |r| r.as_str()))
        })
        .to("left");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("clicks", "alice".to_string(), "home".to_string(), 0)?;
    d.pipe("users", "alice".to_string(), "eu".to_string(), 1)?;
    d.pipe("clicks", "alice".to_string(), "cart".to_string(), 2)?;
    d.pipe("users", "alice".to_string(), "us".to_string(), 3)?;
    assert_eq!(
        d.read_key_values::<String, String>("inner")?,
        vec![("alice".into(), "cart/eu".into())]
    );
    assert_eq!(
        d.read_key_values::<String, String>("left")?,
        vec![
            ("alice".into(), "home/?".into()),
            ("alice".into(), "cart/eu".into())
        ]
    );
    Ok(())
}

#[test]
fn stream_global_table_join_by_a_mapped_key() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let products = b.global_table::<String, String>("products", Materialized::named("products"));
    b.stream::<String, String>("orders")
        .join_global(
            &products,
            |_, product: &String| product.clone(),
            |product, name| format!("{product}={name}"),
        )
        .to("named");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("products", "p1".to_string(), "lamp".to_string(), 0)?;
    d.pipe("orders", "o1".to_string(), "p1".to_string(), 1)?;
    d.pipe("orders", "o2".to_string(), "p2".to_string(), 2)?;
    assert_eq!(
        d.read_key_values::<String, String>("named")?,
        vec![("o1".into(), "p1=lamp".into())]
    );
    Ok(())
}

#[test]
fn stream_stream_joins_within_the_window() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let views = b.stream::<String, String>("views");
    let clicks = b.stream::<String, String>("clicks");
    let w = JoinWindows::of_time_difference_and_grace(
        Duration::from_millis(10),
        Duration::from_millis(100),
    );
    views
        .join(&clicks, |v, c| format!("{v}+{c}"), w)
        .to("inner");
    views
        .left_join(
            &clicks,
            |v, c| format!("{v}+{}", c.map_or("-", |c| c.as_str())),
            w,
        )
        .to("left");
    views
        .outer_join(
            &clicks,
            |v, c| {
                format!(
                    "{}+{}",
                    v.map_or("-", |v| v.as_str()),
                    c.map_or("-", |c| c.as_str())
                )
            },
            w,
        )
        .to("outer");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("views", "k".to_string(), "v1".to_string(), 100)?;
    d.pipe("clicks", "k".to_string(), "c1".to_string(), 105)?; // within 10 ms of v1
    d.pipe("clicks", "k".to_string(), "c2".to_string(), 200)?; // alone
    d.pipe("views", "k".to_string(), "v2".to_string(), 195)?; // within 10 ms of c2
    d.pipe("views", "x".to_string(), "v3".to_string(), 196)?; // other key
    let vals = |d: &mut TopologyTestDriver, t: &str| -> anyhow::Result<Vec<String>> {
        Ok(d.read_key_values::<String, String>(t)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    };
    assert_eq!(vals(&mut d, "inner")?, vec!["v1+c1", "v2+c2"]);
    // Kafka Streams 3.1+ (KStreamKStreamJoin's outer-join store): a record without a
    // partner is held until its window closes (time + 10 ms + 100 ms grace), so c2,
    // joined by v2 later, is never emitted alone, and v3 waits.
    assert_eq!(vals(&mut d, "left")?, vec!["v1+c1", "v2+c2"]);
    assert_eq!(vals(&mut d, "outer")?, vec!["v1+c1", "v2+c2"]);
    // Stream time 306 = 196 + 10 + 100: v3's window has not closed yet; at 307 it has.
    d.pipe("clicks", "y".to_string(), "c3".to_string(), 306)?;
    assert_eq!(vals(&mut d, "left")?, Vec::<String>::new());
    d.pipe("views", "z".to_string(), "v4".to_string(), 307)?;
    assert_eq!(vals(&mut d, "left")?, vec!["v3+-"]);
    assert_eq!(vals(&mut d, "outer")?, vec!["v3+-"]);
    let padded = d.read_all::<String, String>("left")?;
    assert!(padded.is_empty());
    // Both sides' unmatched records come out of the outer join, each with its own time.
    d.pipe("views", "z".to_string(), "v5".to_string(), 1000)?;
    let outer: Vec<(String, String, i64)> = d
        .read_all::<String, String>("outer")?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        outer,
        vec![
            ("y".into(), "-+c3".into(), 306),
            ("z".into(), "v4+-".into(), 307),
        ]
    );
    Ok(())
}

#[test]
fn table_table_joins_follow_both_sides() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    let left = b.table::<String, String>("left", Materialized::named("l"));
    let right = b.table::<String, i64>("right", Materialized::named("r"));
    left.join(
        &right,
        |l, r| format!("{l}:{r}"),
        Materialized::named("inner"),
    )
    .to_stream()
    .to("inner");
    left.left_join(
        &right,
        |l, r| format!("{l}:{r:?}"),
        Materialized::named("leftj"),
    )
    .to_stream()
    .to("left-out");
    left.outer_join(
        &right,
        |l, r| format!("{l:?}:{r:?}"),
        Materialized::named("outer"),
    )
    .to_stream()
    .to("outer");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("left", "k".to_string(), "a".to_string(), 0)?;
    d.pipe("right", "k".to_string(), 1i64, 1)?;
    d.pipe("right", "k".to_string(), 2i64, 2)?;
    d.pipe_raw("left", Some(b"k".to_vec()), None, 3)?;
    assert_eq!(
        d.read_key_values::<String, Option<String>>("inner")?,
        vec![
            ("k".into(), Some("a:1".into())),
            ("k".into(), Some("a:2".into())),
            ("k".into(), None)
        ]
    );
    assert_eq!(
        d.read_key_values::<String, Option<String>>("left-out")?,
        vec![
            ("k".into(), Some("a:None".into())),
            ("k".into(), Some("a:Some(1)".into())),
            ("k".into(), Some("a:Some(2)".into())),
            ("k".into(), None)
        ]
    );
    let outer: Vec<Option<String>> = d
        .read_key_values::<String, Option<String>>("outer")?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        outer,
        vec![
            Some("Some(\"a\"):None".into()),
            Some("Some(\"a\"):Some(1)".into()),
            Some("Some(\"a\"):Some(2)".into()),
            Some("None:Some(2)".into())
        ]
    );
    assert_eq!(
        d.key_value_store::<String, String>("outer")?
            .get(&"k".into())?,
        Some("None:Some(2)".into())
    );
    Ok(())
}

#[test]
fn foreign_key_join_follows_both_tables_and_ignores_stale_answers() -> anyhow::Result<()> {
    let b = StreamsBuilder::new();
    // orders: order id -> customer id; customers: customer id -> name.
    let orders = b.table::<String, String>("orders", Materialized::named("orders"));
    let customers = b.table::<String, String>("customers", Materialized::named("customers"));
    orders
        .join_on_foreign_key(
            &customers,
            |customer: &String| customer.clone(),
            |c, name| format!("{c}:{name}"),
            Materialized::named("inner"),
        )
        .to_stream()
        .to("inner");
    orders
        .left_join_on_foreign_key(
            &customers,
            |customer: &String| customer.clone(),
            |c, name| format!("{c}:{}", name.map_or("?", |n| n.as_str())),
            Materialized::named("left"),
        )
        .to_stream()
        .to("left");
    let topology = b.build();
    let mut d = TopologyTestDriver::new(topology)?;
    d.pipe("customers", "c1".to_string(), "Ann".to_string(), 0)?;
    d.pipe("orders", "o1".to_string(), "c1".to_string(), 1)?;
    d.pipe("orders", "o2".to_string(), "c2".to_string(), 2)?;
    d.pipe("customers", "c2".to_string(), "Bo".to_string(), 3)?;
    d.pipe("customers", "c1".to_string(), "Anna".to_string(), 4)?;
    // o1 moves to c2; then o2 is deleted.
    d.pipe("orders", "o1".to_string(), "c2".to_string(), 5)?;
    d.pipe_raw("orders", Some(b"o2".to_vec()), None, 6)?;
    // A change of c1 no longer reaches o1.
    d.pipe("customers", "c1".to_string(), "Annie".to_string(), 7)?;
    let inner: Vec<(String, Option<String>)> = d.read_key_values("inner")?;
    assert_eq!(
        inner,
        vec![
            ("o1".into(), Some("c1:Ann".into())),
            ("o2".into(), Some("c2:Bo".into())),
            ("o1".into(), Some("c1:Anna".into())),
            ("o1".into(), Some("c2:Bo".into())),
            ("o2".into(), None),
        ]
    );
    let left: Vec<(String, Option<String>)> = d.read_key_values("left")?;
    assert_eq!(left[1], ("o2".into(), Some("c2:?".into())));
    let store = d.key_value_store::<String, String>("inner")?;
    assert_eq!(store.all()?, vec![("o1".into(), "c2:Bo".into())]);
    Ok(())
}

#[test]
fn asymmetric_join_windows_bound_each_side() -> anyhow::Result<()> {
    // JoinWindows.ofTimeDifferenceAndNoGrace(..).before(..).after(..): a click joins a
    // view from 5 ms before it to 20 ms after it.
    let b = StreamsBuilder::new();
    let w = JoinWindows::of_time_difference_without_grace(Duration::from_millis(10))
        .before(Duration::from_millis(5))
        .after(Duration::from_millis(20));
    b.stream::<String, String>("clicks")
        .join(
            &b.stream::<String, String>("views"),
            |c, v| format!("{c}+{v}"),
            w,
        )
        .to("joined");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("clicks", "k".to_string(), "c".to_string(), 100)?;
    for (v, ts) in [("v-6", 94), ("v-5", 95), ("v+20", 120), ("v+21", 121)] {
        d.pipe("views", "k".to_string(), v.to_string(), ts)?;
    }
    let joined: Vec<String> = d
        .read_key_values::<String, String>("joined")?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(joined, vec!["c+v-5", "c+v+20"]);
    Ok(())
}

#[test]
fn a_left_join_closes_windows_by_the_time_its_own_records_carry() -> anyhow::Result<()> {
    // KStreamKStreamJoin's shared TimeTracker advances with the records reaching the
    // join (either side), not with the task's stream time: a record filtered out
    // before the join closes no window.
    let b = StreamsBuilder::new();
    let views = b
        .stream::<String, String>("views")
        .filter(|_, v| v != "ignored");
    let clicks = b.stream::<String, String>("clicks");
    let w = JoinWindows::of_time_difference_without_grace(Duration::from_millis(10));
    views
        .left_join(
            &clicks,
            |v, c| format!("{v}+{}", c.map_or("-", |c| c.as_str())),
            w,
        )
        .to("left");
    let mut d = TopologyTestDriver::new(b.build())?;
    d.pipe("views", "a".to_string(), "v1".to_string(), 0)?;
    d.pipe("views", "a".to_string(), "ignored".to_string(), 100)?;
    d.pipe("clicks", "b".to_string(), "c1".to_string(), 5)?;
    assert_eq!(d.read_key_values::<String, String>("left")?, vec![]);
    // Time 20 at the join: v1's window [0 - 10, 0 + 10] has closed.
    d.pipe("clicks", "b".to_string(), "c2".to_string(), 20)?;
    assert_eq!(
        d.read_key_values::<String, String>("left")?,
        vec![("a".into(), "v1+-".into())]
    );
    Ok(())
}
