//! The REST API over HTTP, as ksqlDB's clients use it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Stack;

async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, String) {
    let r = client.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[test]
fn statements_push_pull_and_errors_over_http() {
    let stack = Stack::start().unwrap();
    let engine = stack.engine.clone();
    stack.rt.block_on(async move {
        let (addr, _server) = runnel_ksql::server::serve(engine, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{addr}");
        let c = reqwest::Client::new();

        let (s, body) = post(&c, &format!("{base}/ksql"), json!({"ksql":
            "CREATE STREAM pageviews (view_id STRING KEY, user_id STRING, page STRING) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', PARTITIONS=1);"})).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["@type"], "currentStatus");
        assert_eq!(v[0]["commandStatus"]["message"], "Stream created");

        let inserts = "INSERT INTO pageviews (view_id, user_id, page) VALUES ('v1', 'u1', '/home');
                       INSERT INTO pageviews (view_id, user_id, page) VALUES ('v2', 'u2', '/docs');
                       INSERT INTO pageviews (view_id, user_id, page) VALUES ('v3', 'u1', '/docs');";
        let (s, body) = post(&c, &format!("{base}/ksql"), json!({"ksql": inserts})).await;
        assert_eq!(s, 200, "{body}");

        let (s, body) = post(&c, &format!("{base}/ksql"), json!({"ksql":
            "CREATE TABLE views_per_user AS SELECT user_id, COUNT(*) AS views FROM pageviews GROUP BY user_id;",
            "streamsProperties": {}})).await;
        assert_eq!(s, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let query_id = v[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
        assert!(query_id.starts_with("CTAS_VIEWS_PER_USER_"), "{query_id}");

        // A push query from the earliest offset ends after LIMIT rows.
        let (s, body) = post(&c, &format!("{base}/query-stream"), json!({
            "sql": "SELECT view_id, UCASE(page) AS page FROM pageviews WHERE user_id = 'u1' EMIT CHANGES LIMIT 2;",
            "properties": {"auto.offset.reset": "earliest"}})).await;
        assert_eq!(s, 200, "{body}");
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["columnNames"], json!(["VIEW_ID", "PAGE"]));
        assert_eq!(&lines[1..], &[json!(["v1", "/HOME"]), json!(["v3", "/DOCS"])]);

        // A pull query on the table the persistent query maintains.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (s, body) = post(&c, &format!("{base}/query"), json!({
                "ksql": "SELECT user_id, views FROM views_per_user WHERE user_id = 'u1';"})).await;
            assert_eq!(s, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v[0]["header"]["schema"], "`USER_ID` STRING, `VIEWS` BIGINT");
            if v[1]["row"]["columns"] == json!(["u1", 2]) {
                break;
            }
            assert!(Instant::now() < deadline, "the table never reached 2 views for u1: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // A scan of the stream's history with DataFusion: GROUP BY and ORDER BY.
        let (s, body) = post(&c, &format!("{base}/query-stream"), json!({
            "sql": "SELECT page, COUNT(*) AS n FROM pageviews GROUP BY page ORDER BY page;"})).await;
        assert_eq!(s, 200, "{body}");
        let lines: Vec<Value> = body.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines, vec![json!(["/docs", 2]), json!(["/home", 1])]);

        // Errors: a syntax error names line and column, a semantic one the column.
        let (s, body) = post(&c, &format!("{base}/ksql"), json!({"ksql": "CREATE STREAM x (a INT) WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON')\nEXTRA;"})).await;
        assert_eq!(s, 400);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error_code"], 40001);
        assert!(v["message"].as_str().unwrap().starts_with("line 2:1"), "{body}");
        let (s, body) = post(&c, &format!("{base}/query-stream"), json!({"sql": "SELECT nope FROM pageviews EMIT CHANGES;"})).await;
        assert_eq!(s, 400);
        assert!(body.contains("NOPE") && body.contains("cannot be resolved"), "{body}");

        let (_, body) = post(&c, &format!("{base}/ksql"), json!({"ksql": "SHOW QUERIES; DESCRIBE views_per_user; SHOW STREAMS;"})).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["queries"][0]["id"], query_id);
        assert_eq!(v[1]["sourceDescription"]["fields"][1]["type"], "PRIMARY_KEY");
        assert_eq!(v[2]["streams"][0]["name"], "PAGEVIEWS");

        let info: Value = c.get(format!("{base}/info")).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING");
        let health = c.get(format!("{base}/healthcheck")).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);

        let (s, body) = post(&c, &format!("{base}/ksql"), json!({"ksql": format!("TERMINATE {query_id}; DROP TABLE views_per_user DELETE TOPIC;")})).await;
        assert_eq!(s, 200, "{body}");
    });
}
