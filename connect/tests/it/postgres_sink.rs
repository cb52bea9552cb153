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
    let worker = json_worker(&bs, dir.path()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connect_type_lands_as_its_column_type() {
    // The rows travel in COPY's text format (escaped tabs, newlines, backslashes): each
    // Connect type, logical ones included, must arrive as the value it stands for, in the
    // column auto.create made for it (Confluent's PostgreSQL dialect), into a table that
    // also already holds a row (so the upsert path runs too).
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["typed"]).await;
    let worker = json_worker(&bs, dir.path()).await;
    let api = Api::new(worker.rest_addr);
    let (code, resp) = api
        .post(
            "/connectors",
            Some(json!({"name": "typed-sink", "config": {
                "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
                "connection.url": pg.url(), "topics": "typed",
                "insert.mode": "upsert", "pk.mode": "record_key", "pk.fields": "id",
                "auto.create": "true"}})),
        )
        .await;
    assert_eq!(code, 201, "{resp}");
    let field = |name: &str, ty: &str, logical: Option<&str>| {
        let mut f = json!({"field": name, "type": ty, "optional": true});
        if let Some(l) = logical {
            f["name"] = json!(l);
            if l.ends_with("Decimal") {
                f["parameters"] = json!({"scale": "2"});
            }
        }
        f
    };
    let schema = json!({"type": "struct", "name": "typed", "optional": false, "fields": [
        field("i8", "int8", None), field("i16", "int16", None), field("i64", "int64", None),
        field("f32", "float", None), field("f64", "double", None), field("b", "boolean", None),
        field("s", "string", None), field("raw", "bytes", None),
        field("price", "bytes", Some("org.apache.kafka.connect.data.Decimal")),
        field("day", "int32", Some("org.apache.kafka.connect.data.Date")),
        field("at", "int64", Some("org.apache.kafka.connect.data.Timestamp")),
        field("tod", "int32", Some("org.apache.kafka.connect.data.Time")),
        {"field": "tags", "type": "array", "optional": true, "items": {"type": "string", "optional": true}},
        {"field": "attrs", "type": "map", "optional": true, "keys": {"type": "string", "optional": false}, "values": {"type": "int32", "optional": true}},
    ]});
    let payload = |s: &str| {
        json!({
            "i8": -8, "i16": 1600, "i64": 9_007_199_254_740_993_i64, "f32": 1.5, "f64": -2.25,
            "b": true, "s": s, "raw": "AP8=", "price": "MDk=", "day": 19_782,
            "at": 1_709_210_096_789_i64, "tod": 45_296_007, "tags": ["x", null, "y\"z"],
            "attrs": {"k": 7}
        })
    };
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    for s in ["first", "it's \"quoted\"\t\r\n\\"] {
        let v = json!({"schema": schema, "payload": payload(s)}).to_string();
        let k = key(1);
        p.send(
            FutureRecord::<String, String>::to("typed")
                .key(&k)
                .payload(&v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let c = pg.client().await;
    let query = "SELECT i8::text, i16::text, i64::text, f32::text, f64::text, b::text, s, \
                 encode(raw, 'hex'), price::text, day::text, at::text, tod::text, tags::text, \
                 attrs::text, pg_typeof(price)::text, pg_typeof(at)::text FROM typed";
    let want: Vec<String> = [
        "-8",
        "1600",
        "9007199254740993",
        "1.5",
        "-2.25",
        "true",
        "it's \"quoted\"\t\r\n\\",
        "00ff",
        "123.45",
        "2024-02-29",
        "2024-02-29 12:34:56.789",
        "12:34:56.007",
        "{x,NULL,\"y\\\"z\"}",
        "{\"k\": 7}",
        "numeric",
        "timestamp without time zone",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<String> = match c.query(query, &[]).await {
            Ok(rows) if rows.len() == 1 && rows[0].get::<_, String>(6) == want[6] => {
                (0..16).map(|i| rows[0].get(i)).collect()
            }
            _ => Vec::new(),
        };
        if !got.is_empty() {
            assert_eq!(got, want);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the typed row never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
