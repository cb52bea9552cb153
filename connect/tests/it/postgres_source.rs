//! PostgresSource against a real PostgreSQL: each mode picks up what it should —
//! incrementing sees inserts, timestamp modes see inserts and updates, bulk sees the
//! whole table — and a restart of the worker resumes from the committed offsets.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::common::*;
use crate::pg::PgServer;

/// Every record of a topic, read until nothing new arrives for `idle`.
async fn drain(bootstrap: &str, topic: &str, idle: Duration) -> Vec<Value> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "pg-drain")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t, 0, Offset::Beginning).unwrap();
        c.assign(&tpl).unwrap();
        let mut out = Vec::new();
        // A fresh consumer needs a moment before its first fetch returns.
        let mut last = Instant::now() + Duration::from_secs(2);
        while last.elapsed() < idle || Instant::now() < last {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                out.push(
                    serde_json::from_slice(m.payload().unwrap_or(b"null")).unwrap_or(Value::Null),
                );
                last = Instant::now();
            }
        }
        out
    })
    .await
    .unwrap()
}

fn ids(values: &[Value]) -> Vec<i64> {
    values.iter().filter_map(|v| v["id"].as_i64()).collect()
}

fn connector(name: &str, mode: &str, pg: &PgServer) -> (String, Value) {
    let mut config = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
        "connection.url": pg.url(),
        "table.whitelist": "items",
        "mode": mode,
        "topic.prefix": format!("{name}-"),
        "poll.interval.ms": "200",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    });
    if mode.contains("incrementing") {
        config["incrementing.column.name"] = json!("id");
    }
    if mode.contains("timestamp") {
        config["timestamp.column.name"] = json!("updated_at");
    }
    if mode == "bulk" {
        config["poll.interval.ms"] = json!("3600000");
    }
    (name.to_string(), json!({"name": name, "config": config}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mode_picks_up_inserts_and_updates_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute(
        "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2), \
         tags TEXT[], updated_at TIMESTAMP NOT NULL DEFAULT clock_timestamp());
         INSERT INTO items (name, price, tags) VALUES ('lamp', 19.99, '{home,light}'), ('desk', 120.00, NULL), ('pen', 1.50, '{office}');",
    )
    .await
    .unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let modes = [
        ("inc", "incrementing"),
        ("ts", "timestamp"),
        ("tsinc", "timestamp+incrementing"),
        ("bulk", "bulk"),
    ];
    for (name, _) in &modes {
        create_topics(&bs, &[&format!("{name}-items")]).await;
    }
    let worker = standalone(&bs, dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);
    for (name, mode) in &modes {
        let (_, body) = connector(name, mode, &pg);
        let (code, resp) = api.post("/connectors", Some(body)).await;
        assert_eq!(code, 201, "{resp}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids(&drain(&bs, "tsinc-items", Duration::from_millis(500)).await).len() < 3 {
        assert!(Instant::now() < deadline, "the first rows never arrived");
    }
    // An update (new timestamp) and an insert.
    db.batch_execute("UPDATE items SET name = 'desk2', updated_at = clock_timestamp() WHERE id = 2; INSERT INTO items (name) VALUES ('cup');")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The worker restarts; the tasks resume from their offsets.
    worker.shutdown().await;
    db.batch_execute("INSERT INTO items (name) VALUES ('ink')")
        .await
        .unwrap();
    let worker = standalone(&bs, dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);
    for (name, mode) in &modes {
        let (_, body) = connector(name, mode, &pg);
        let (code, resp) = api.post("/connectors", Some(body)).await;
        assert_eq!(code, 201, "{resp}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = Duration::from_secs(2);
    assert_eq!(
        ids(&drain(&bs, "inc-items", idle).await),
        vec![1, 2, 3, 4, 5],
        "incrementing sees inserts once"
    );
    let ts = drain(&bs, "ts-items", idle).await;
    assert_eq!(
        ids(&ts),
        vec![1, 2, 3, 2, 4, 5],
        "timestamp sees inserts and the update once"
    );
    assert_eq!(ts[3]["name"], "desk2");
    assert_eq!(
        ids(&drain(&bs, "tsinc-items", idle).await),
        vec![1, 2, 3, 2, 4, 5]
    );
    // Bulk: the whole table at each start (before and after the restart), in no order.
    let mut bulk = ids(&drain(&bs, "bulk-items", idle).await);
    assert_eq!(bulk.len(), 8, "{bulk:?}");
    bulk[..3].sort();
    bulk[3..].sort();
    assert_eq!(bulk, vec![1, 2, 3, 1, 2, 3, 4, 5]);
    // Types: numeric as a Decimal, arrays as arrays, timestamps as epoch millis.
    assert_eq!(ts[0]["tags"], json!(["home", "light"]));
    assert!(
        ts[0]["updated_at"]
            .as_i64()
            .is_some_and(|ms| ms > 1_600_000_000_000),
        "{}",
        ts[0]
    );
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
