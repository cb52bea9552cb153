//! A restarted engine recovers its catalog from the command topic and its persistent
//! queries resume from their committed offsets with their state restored.

use runnel_ksql::format::scalar_to_json;
use serde_json::json;

use crate::common::{latest, wait_for, Stack};

#[test]
fn persistent_queries_survive_a_restart() {
    let mut stack = Stack::start().unwrap();
    let run = |stack: &Stack, sql: &str| stack.rt.block_on(stack.engine.execute(sql)).unwrap();
    run(&stack, "CREATE STREAM clicks (id STRING KEY, user_name STRING, amount INT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);
                 CREATE TABLE spend AS SELECT user_name, SUM(amount) AS total, COUNT(*) AS n FROM clicks GROUP BY user_name;");
    for (id, user, amount) in [("c1", "ann", 5), ("c2", "bob", 7), ("c3", "ann", 1)] {
        run(
            &stack,
            &format!(
                "INSERT INTO clicks (id, user_name, amount) VALUES ('{id}', '{user}', {amount});"
            ),
        );
    }
    wait_for(&stack, "SPEND", "ann", json!({"TOTAL": 6, "N": 2}));

    stack.restart_engine().unwrap();
    let catalog = stack.rt.block_on(stack.engine.catalog());
    assert!(catalog.sources.contains_key("CLICKS") && catalog.sources.contains_key("SPEND"));
    assert_eq!(catalog.queries.len(), 1, "{:?}", catalog.queries.keys());
    let id = catalog.queries.keys().next().unwrap().clone();
    assert!(id.starts_with("CTAS_SPEND_"), "{id}");

    // The resumed query adds to the restored state: nothing is counted twice.
    run(
        &stack,
        "INSERT INTO clicks (id, user_name, amount) VALUES ('c4', 'ann', 10);",
    );
    wait_for(&stack, "SPEND", "ann", json!({"TOTAL": 16, "N": 3}));
    assert_eq!(latest(&stack, "SPEND")["bob"], json!({"TOTAL": 7, "N": 1}));
    // A new query gets a fresh id after the replayed ones.
    let out = run(
        &stack,
        "CREATE STREAM big AS SELECT id, user_name, amount FROM clicks WHERE amount > 6;",
    );
    let new_id = out[0]
        .command_status()
        .and_then(|c| c.query_id.as_deref())
        .unwrap();
    assert_ne!(new_id, id);
    let _ = scalar_to_json;
}
