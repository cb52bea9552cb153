//! PostgresSink against a real PostgreSQL: upserts, deletes, auto.create, auto.evolve,
//! and a PostgreSQL restart in the middle of the run.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::json;

use crate::common::*;
use crate::pg::PgServer;

fn key(id: i32) -> String {
    json!({"schema": {"type": "int32", "optional": false}, "payload": id}).to_string()
}

fn value(name: &str, age: i32, email: Option<&str>) -> String {
    let mut fields = vec![
        json!({"field": "name", "type": "string", "optional": false}),
        json!({"field": "age", "type": "int32", "optional": true}),
    ];
    let mut payload = json!({"name": name, "age": age});
    if let Some(e) = email {
        fields.push(json!({"field": "email", "type": "string", "optional": true}));
        payload["email"] = json!(e);
    }
    json!({"schema": {"type": "struct", "name": "customer", "optional": false, "fields": fields}, "payload": payload}).to_string()
}

async fn send(p: &FutureProducer, id: i32, v: Option<String>) {
    let k = key(id);
    let mut r = FutureRecord::<String, String>::to("customers").key(&k);
    if let Some(v) = &v {
        r = r.payload(v);
    }
    p.send(r, Duration::from_secs(10)).await.unwrap();
}

async fn rows(pg: &PgServer) -> Vec<(i32, String, Option<i32>, Option<String>)> {
    let c = pg.client().await;
    let Ok(rs) = c.query("SELECT * FROM customers ORDER BY id", &[]).await else {
        return Vec::new();
    };
    rs.iter()
        .map(|r| {
            let email: Option<String> = r
                .columns()
                .iter()
                .any(|c| c.name() == "email")
                .then(|| r.get("email"))
                .flatten();
            (r.get("id"), r.get("name"), r.get("age"), email)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upserts_deletes_schema_changes_and_a_database_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["customers"]).await;
    let mut wc = worker_config(&bs, dir.path());
    for conv in ["key.converter", "value.converter"] {
        wc.props.insert(
            conv.into(),
            "org.apache.kafka.connect.json.JsonConverter".into(),
        );
    }
    let worker = runnel_connect::standalone::Standalone::start(wc, vec![])
        .await
        .unwrap();
    let api = Api::new(worker.rest_addr);
    let (code, resp) = api
        .post(
            "/connectors",
            Some(json!({"name": "pg-sink", "config": {
                "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/postgres?user=postgres", pg.port),
                "topics": "customers",
                "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
                "delete.enabled": "true", "auto.create": "true", "auto.evolve": "true",
                "max.retries": "60", "retry.backoff.ms": "250"}})),
        )
        .await;
    assert_eq!(code, 201, "{resp}");
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    send(&p, 1, Some(value("Ann", 30, None))).await;
    send(&p, 2, Some(value("Bo", 40, None))).await;
    send(&p, 1, Some(value("Annie", 31, None))).await;
    send(&p, 2, None).await; // tombstone: deleted
                             // A new optional field: auto.evolve adds the column.
    send(&p, 3, Some(value("Cy", 5, Some("cy@example.com")))).await;
    let want = vec![
        (1, "Annie".to_string(), Some(31), None),
        (
            3,
            "Cy".to_string(),
            Some(5),
            Some("cy@example.com".to_string()),
        ),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rows(&pg).await != want {
        assert!(
            std::time::Instant::now() < deadline,
            "table: {:?}",
            rows(&pg).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The table was created with the key as primary key.
    let c = pg.client().await;
    let pk: String = c
        .query_one(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = 'customers'::regclass AND i.indisprimary",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pk, "id");
    drop(c);

    // PostgreSQL goes away while records arrive; the sink retries until it is back.
    pg.stop();
    for id in 10..20 {
        send(&p, id, Some(value(&format!("n{id}"), id, None))).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ids: Vec<i32> = rows(&pg).await.into_iter().map(|r| r.0).collect();
        if ids == [1, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ids after the restart: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, status) = api.get("/connectors/pg-sink/status").await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");

    // A record whose schema declares a Decimal scale of 4,000,000,000 (the scale was
    // used as a formatting width and aborted the whole worker): the task fails with a
    // message naming the record and the scale; the worker and its REST API go on.
    let bad = json!({"schema": {"type": "struct", "name": "customer", "optional": false, "fields": [
            {"field": "name", "type": "string", "optional": false},
            {"field": "price", "type": "bytes", "optional": true,
             "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
             "parameters": {"scale": "4000000000"}}]},
        "payload": {"name": "bad", "price": "AQ=="}});
    send(&p, 99, Some(bad.to_string())).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let (_, status) = api.get("/connectors/pg-sink/status").await;
        if status["tasks"][0]["state"] == "FAILED" {
            break status["tasks"][0]["trace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        trace.contains("customers-0 offset")
            && trace.contains("Decimal scale 4000000000 is outside"),
        "{trace}"
    );
    assert!(!rows(&pg).await.iter().any(|r| r.0 == 99));
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
