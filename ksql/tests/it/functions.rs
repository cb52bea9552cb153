//! ksqlDB's aggregates that DataFusion names differently or lacks, and event time
//! read from a formatted STRING column, through a persistent query.

use serde_json::{json, Value};

use crate::common::Stack;

#[test]
fn distinct_set_topk_and_timestamp_format() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run("CREATE STREAM scores (player STRING KEY, game STRING, points INT, at STRING)
           WITH (KAFKA_TOPIC='scores', VALUE_FORMAT='JSON', PARTITIONS=1,
                 TIMESTAMP='at', TIMESTAMP_FORMAT='yyyy-MM-dd HH:mm:ss');
         CREATE TABLE stats AS SELECT player, COUNT_DISTINCT(game) AS games, COLLECT_SET(game) AS game_set,
             TOPK(points, 2) AS best, AVG(points) AS avg_points, MAX(ROWTIME) AS last_at
           FROM scores GROUP BY player;");
    for (game, points, at) in [
        ("chess", 5, "2024-03-01 10:00:00"),
        ("go", 9, "2024-03-01 11:00:00"),
        ("chess", 7, "2024-03-01 12:30:00"),
    ] {
        run(&format!("INSERT INTO scores (player, game, points, at) VALUES ('ann', '{game}', {points}, '{at}');"));
    }
    let records = runnel_testkit::wait_until(
        "three results in STATS",
        30,
        || {
            stack
                .rt
                .block_on(stack.engine.kafka().read_all("STATS"))
                .unwrap()
        },
        |records| records.len() >= 3,
    );
    let last = records.last().cloned().expect("a result");
    let v: Value = serde_json::from_slice(last.value.as_deref().unwrap()).unwrap();
    assert_eq!(v["GAMES"], json!(2));
    let mut set: Vec<String> = serde_json::from_value(v["GAME_SET"].clone()).unwrap();
    set.sort();
    assert_eq!(set, ["chess", "go"]);
    assert_eq!(v["BEST"], json!([9, 7]));
    assert_eq!(v["AVG_POINTS"], json!(7.0));
    // 2024-03-01 12:30:00 UTC, from the column rather than the record.
    assert_eq!(v["LAST_AT"], json!(1_709_296_200_000i64));
    assert_eq!(last.timestamp, 1_709_296_200_000);
}
