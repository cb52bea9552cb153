//! PostgresCdcSource against a real PostgreSQL: a snapshot, then inserts, updates and
//! deletes over several transactions, one 100,000-row transaction, and a worker restart
//! in the middle — every change appears once, in commit order.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::common::*;
use crate::pg::PgServer;

/// (op, id) of every change event, and the number of tombstones, once `count` events
/// arrived (or the deadline passed).
async fn events(bootstrap: &str, count: usize) -> (Vec<(String, i64)>, usize, Value) {
    let bs = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", "cdc-reader")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("dbserver.public.customers", 0, Offset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let (mut out, mut tombstones, mut last) = (Vec::new(), 0, Value::Null);
        let deadline = Instant::now() + Duration::from_secs(120);
        while out.len() < count && Instant::now() < deadline {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                match m.payload() {
                    None => tombstones += 1,
                    Some(p) => {
                        let v: Value = serde_json::from_slice(p).unwrap();
                        let row = if v["op"] == "d" {
                            &v["before"]
                        } else {
                            &v["after"]
                        };
                        out.push((
                            v["op"].as_str().unwrap_or("?").to_string(),
                            row["id"].as_i64().unwrap_or(-1),
                        ));
                        last = v;
                    }
                }
            }
        }
        // Anything beyond the expected count would be a duplicate: give it a moment.
        let quiet = Instant::now() + Duration::from_secs(2);
        while Instant::now() < quiet {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                if m.payload().is_some() {
                    out.push(("extra".into(), -1));
                }
            }
        }
        (out, tombstones, last)
    })
    .await
    .unwrap()
}

fn cdc_connector(pg: &PgServer) -> Value {
    json!({"name": "cdc", "config": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1", "database.port": pg.port.to_string(),
        "database.user": "postgres", "database.dbname": "postgres",
        "topic.prefix": "dbserver", "table.include.list": "public.customers",
        "plugin.name": "pgoutput", "slot.name": "runnel", "publication.name": "runnel_pub",
        "publication.autocreate.mode": "filtered", "snapshot.mode": "initial", "poll.interval.ms": "100",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"}})
}

/// A broker, the CDC topic, a standalone worker, and `connector` created through REST.
async fn run_connector(
    dir: &std::path::Path,
    connector: Value,
) -> (
    runnel_broker::BrokerHandle,
    runnel_connect::standalone::Standalone,
    Api,
) {
    let broker = broker(&dir.join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["dbserver.public.customers"]).await;
    let worker = standalone(&bs, dir, vec![]).await;
    let api = Api::new(worker.rest_addr);
    let (code, resp) = api.post("/connectors", Some(connector)).await;
    assert_eq!(code, 201, "{resp}");
    (broker, worker, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_then_stream_with_a_restart_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute("CREATE TABLE customers (id INT PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'ann'), (2, 'bo');")
        .await
        .unwrap();
    let (broker, worker, _api) = run_connector(dir.path(), cdc_connector(&pg)).await;
    let bs = broker.bootstrap();
    let (first, _, last) = events(&bs, 2).await;
    assert_eq!(first, vec![("r".to_string(), 1), ("r".to_string(), 2)]);
    assert_eq!(last["source"]["snapshot"], "last", "{last}");
    db.batch_execute("INSERT INTO customers VALUES (3, 'cy')")
        .await
        .unwrap();
    db.batch_execute("BEGIN; UPDATE customers SET name = 'anne' WHERE id = 1; DELETE FROM customers WHERE id = 2; COMMIT;")
        .await
        .unwrap();
    db.batch_execute("INSERT INTO customers SELECT g, 'bulk' FROM generate_series(1000, 100999) g")
        .await
        .unwrap();
    // Restart once the big transaction is on its way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while events(&bs, 6).await.0.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "the streamed changes did not arrive"
        );
    }
    worker.shutdown().await;
    db.batch_execute(
        "UPDATE customers SET name = 'cyd' WHERE id = 3; INSERT INTO customers VALUES (4, 'di');",
    )
    .await
    .unwrap();
    // A new column is picked up from the next change on.
    db.batch_execute("ALTER TABLE customers ADD COLUMN email TEXT; INSERT INTO customers VALUES (5, 'ed', 'ed@example.com');")
        .await
        .unwrap();
    let worker = standalone(&bs, dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);
    let (code, resp) = api.post("/connectors", Some(cdc_connector(&pg))).await;
    assert_eq!(code, 201, "{resp}");
    let total = 2 + 3 + 100_000 + 3;
    let (got, tombstones, last) = events(&bs, total).await;
    let mut want: Vec<(String, i64)> = vec![
        ("r".into(), 1),
        ("r".into(), 2),
        ("c".into(), 3),
        ("u".into(), 1),
        ("d".into(), 2),
    ];
    want.extend((1000..101_000).map(|i| ("c".to_string(), i)));
    want.push(("u".into(), 3));
    want.push(("c".into(), 4));
    want.push(("c".into(), 5));
    assert_eq!(
        got.len(),
        want.len(),
        "events: {:?}...",
        &got[..got.len().min(12)]
    );
    assert!(
        got == want,
        "first difference at {:?}",
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(tombstones, 1, "one tombstone after the delete");
    assert_eq!(last["after"]["email"], "ed@example.com", "{last}");
    assert_eq!(last["source"]["table"], "customers");
    assert_eq!(last["source"]["snapshot"], "false");
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}

/// Debezium's usual wiring: a CDC topic, unwrapped by ExtractNewRecordState, feeds the
/// JDBC-style sink, which keeps a copy table in step — deletes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cdc_topic_feeds_the_sink_through_extract_new_record_state() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute("CREATE TABLE customers (id INT PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'ann'), (2, 'bo');")
        .await
        .unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["dbserver.public.customers"]).await;
    let worker = json_worker(&bs, dir.path()).await;
    let api = Api::new(worker.rest_addr);
    let mut cdc = cdc_connector(&pg);
    for k in [
        "key.converter",
        "key.converter.schemas.enable",
        "value.converter",
        "value.converter.schemas.enable",
    ] {
        cdc["config"].as_object_mut().unwrap().remove(k);
    }
    assert_eq!(api.post("/connectors", Some(cdc)).await.0, 201);
    let sink = json!({"name": "copy", "config": {
        "connector.class": "PostgresSink", "topics": "dbserver.public.customers",
        "connection.url": pg.url(), "table.name.format": "customers_copy",
        "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true", "auto.create": "true",
        "transforms": "unwrap", "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.drop.tombstones": "false"}});
    let (code, resp) = api.post("/connectors", Some(sink)).await;
    assert_eq!(code, 201, "{resp}");
    db.batch_execute("INSERT INTO customers VALUES (3, 'cy'); UPDATE customers SET name = 'anne' WHERE id = 1; DELETE FROM customers WHERE id = 2;")
        .await
        .unwrap();
    let want = vec![(1, "anne".to_string()), (3, "cy".to_string())];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<(i32, String)> = match db
            .query("SELECT id, name FROM customers_copy ORDER BY id", &[])
            .await
        {
            Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            Err(_) => Vec::new(),
        };
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "copy table: {got:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_cut_off_by_a_lost_connection_is_read_again() {
    // The snapshot used to be marked done before it ran: when its connection was lost
    // (a retriable failure, polled again), the retry skipped it and its rows were
    // never sent. It is also read in chunks (snapshot.fetch.size) here: every row
    // once, in order, the last one marked.
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute(
        "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT); \
         INSERT INTO customers SELECT g, 'n' FROM generate_series(1, 50) g; \
         CREATE PUBLICATION runnel_pub FOR TABLE customers;",
    )
    .await
    .unwrap();
    // The slot first (its creation waits for open transactions, like the one below).
    db.batch_execute("SELECT pg_create_logical_replication_slot('runnel', 'pgoutput')")
        .await
        .unwrap();
    // Another session holds the table, so the snapshot's read waits on the lock.
    let locker = pg.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut connector = cdc_connector(&pg);
    connector["config"]["errors.retry.timeout"] = json!("60000");
    // Fetched 7 rows at a time and handed out 5 records a poll (one cursor, one
    // transaction, several polls).
    connector["config"]["snapshot.fetch.size"] = json!("7");
    connector["config"]["max.batch.size"] = json!("5");
    let (broker, worker, api) = run_connector(dir.path(), connector).await;
    let bs = broker.bootstrap();
    let waiting =
        "FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) {waiting}"), &[])
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot never reached the table"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its connection is cut (57P01, retriable), then the table is free again.
    db.batch_execute(&format!("SELECT pg_terminate_backend(pid) {waiting}"))
        .await
        .unwrap();
    locker.batch_execute("COMMIT").await.unwrap();
    let (got, _, last) = events(&bs, 50).await;
    let want: Vec<(String, i64)> = (1..=50).map(|i| ("r".to_string(), i)).collect();
    assert_eq!(got, want);
    assert_eq!(last["source"]["snapshot"], "last", "{last}");
    let (_, status) = api.get("/connectors/cdc/status").await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}

/// The slot's `confirmed_flush_lsn` as an integer.
async fn confirmed_flush(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 FROM pg_replication_slots WHERE slot_name = 'runnel'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_slot_is_confirmed_only_after_the_broker_acknowledged() {
    // Debezium's rule (and issue 16's): the standby status update reports a position as
    // flushed only once the broker acknowledged every record before it and their
    // offsets were committed — otherwise PostgreSQL may drop WAL that a crash would
    // still need. The broker here does not create topics: transaction B writes to a
    // table whose topic does not exist yet, so its record cannot be acknowledged, while
    // A before it and C after it are acknowledged (and offsets are committed every
    // 300 ms). The slot must stay at A's end until B is acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute(
        "CREATE TABLE customers (id INT PRIMARY KEY, name TEXT); \
         CREATE TABLE orders (id INT PRIMARY KEY, item TEXT);",
    )
    .await
    .unwrap();
    let config = runnel_broker::BrokerConfig::default()
        .with_property("log.dirs", dir.path().join("broker").display().to_string())
        .and_then(|c| c.with_property("listeners", "PLAINTEXT://127.0.0.1:0"))
        .and_then(|c| c.with_property("auto.create.topics.enable", "false"))
        .unwrap();
    let broker = runnel_broker::Broker::start(config).await.unwrap();
    let bs = broker.bootstrap();
    create_topics(&bs, &["dbserver.public.customers"]).await;
    let worker = standalone(&bs, dir.path(), vec![]).await;
    let api = Api::new(worker.rest_addr);
    let mut connector = cdc_connector(&pg);
    connector["config"]["snapshot.mode"] = json!("never");
    connector["config"]["status.update.interval.ms"] = json!("100");
    connector["config"]["table.include.list"] = json!("public.customers,public.orders");
    let (code, resp) = api.post("/connectors", Some(connector)).await;
    assert_eq!(code, 201, "{resp}");
    eventually_async("the slot is created and streaming", 30, || async {
        db.query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'runnel' AND active",
            &[],
        )
        .await
        .unwrap()
        .is_some()
    })
    .await;
    let wal = || async {
        db.query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let before_a = wal().await;
    db.batch_execute("INSERT INTO customers VALUES (1, 'a')")
        .await
        .unwrap();
    eventually_async("A is confirmed once acknowledged", 30, || async {
        confirmed_flush(&db).await > before_a
    })
    .await;
    let before_b = wal().await;
    db.batch_execute("INSERT INTO orders VALUES (1, 'b')")
        .await
        .unwrap();
    db.batch_execute("INSERT INTO customers VALUES (2, 'c')")
        .await
        .unwrap();
    let (got, _, _) = events(&bs, 2).await;
    assert_eq!(got, vec![("c".to_string(), 1), ("c".to_string(), 2)]);
    // C is acknowledged and offsets were committed since, but B before it is not.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = confirmed_flush(&db).await;
    assert!(
        held <= before_b,
        "confirmed {held}, past B (which starts at {before_b}) before the broker acknowledged it"
    );
    let after_c = wal().await;
    create_topics(&bs, &["dbserver.public.orders"]).await;
    eventually_async(
        "B and C are confirmed once B is acknowledged",
        30,
        || async { confirmed_flush(&db).await >= after_c },
    )
    .await;
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
