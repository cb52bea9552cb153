//! Exactly-once source support (KIP-618) on distributed workers with
//! `exactly.once.source.support=enabled`: records and offsets in one transaction per
//! poll, Kafka's preflight checks, a restarted task fencing its predecessor, and the
//! owner fencing the tasks of a connector's previous generation.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use runnel_connect::distributed::Distributed;
use runnel_connect::WorkerConfig;
use serde_json::json;

use crate::common::*;
use crate::pg::PgServer;

const GROUP: &str = "eos-it";

fn eos_worker(bootstrap: &str, support: &str) -> WorkerConfig {
    WorkerConfig::from_props(config(&[
        ("bootstrap.servers", bootstrap),
        ("group.id", GROUP),
        ("listeners", "http://127.0.0.1:0"),
        ("config.storage.topic", "eos-configs"),
        ("offset.storage.topic", "eos-offsets"),
        ("offset.storage.partitions", "3"),
        ("status.storage.topic", "eos-status"),
        ("exactly.once.source.support", support),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "500"),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
    ]))
    .unwrap()
}

fn append(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        writeln!(f, "line {i}").unwrap();
    }
}

/// The values a read_committed consumer reads from the topic: until `expected` came and
/// then nothing more for a second (so a duplicate would be seen too).
fn committed_values(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eos-reader")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut idle_since = Instant::now();
    while Instant::now() < deadline
        && (out.len() < expected || idle_since.elapsed() < Duration::from_secs(1))
    {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            idle_since = Instant::now();
        }
    }
    out
}

async fn committed(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || committed_values(&bs, &t, expected))
        .await
        .unwrap()
}

/// The topic's log end offset (records plus transaction markers).
fn end_offset(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
        .1
}

/// A transactional producer standing in for a zombie task: it holds an open
/// transaction with one record in it.
fn zombie(
    bootstrap: &str,
    transactional_id: &str,
    topic: &str,
) -> ThreadedProducer<DefaultProducerContext> {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", transactional_id)
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).unwrap();
    p.begin_transaction().unwrap();
    p.send(BaseRecord::<str, str>::to(topic).payload("zombie"))
        .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    p
}

/// Waits for the config topic to hold the task-count record (KafkaConfigBackingStore's
/// `tasks-fencing-<connector>`) that ends a fencing round.
fn wait_for_task_count(bootstrap: &str, connector: &str, tasks: u64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "eos-config-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("eos-configs", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let key = format!("tasks-fencing-{connector}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value: Option<serde_json::Value> =
                m.payload().and_then(|v| serde_json::from_slice(v).ok());
            if m.key() == Some(key.as_bytes())
                && value.is_some_and(|v| v["task-count"] == json!(tasks))
            {
                return;
            }
        }
    }
    panic!("no {key} record with task-count {tasks}");
}

fn lines(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line {i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_and_offsets_commit_together_and_a_restarted_task_fences_its_zombie() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["eos-lines"]).await;
    let input = dir.path().join("in.txt");
    append(&input, 0, 300);
    let worker = Distributed::start(eos_worker(&bs, "enabled"))
        .await
        .unwrap();
    let api = Api::new(worker.rest_addr);

    // Kafka's preflight checks (DistributedHerder.validateSourceConnectorConfig).
    let (code, resp) = api
        .post(
            "/connectors",
            Some(json!({"name": "bad", "config": {
                "connector.class": "FileStreamSource", "file": input.display().to_string(),
                "topic": "eos-lines", "transaction.boundary": "connector"}})),
        )
        .await;
    assert_eq!(code, 400, "{resp}");
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("The connector does not support connector-defined transaction boundaries"),
        "{resp}"
    );
    let (code, resp) = api
        .post(
            "/connectors",
            Some(json!({"name": "cdc", "config": {
                "connector.class": "PostgresCdcSource", "database.hostname": "127.0.0.1",
                "database.user": "u", "database.dbname": "d", "topic.prefix": "p",
                "exactly.once.support": "required"}})),
        )
        .await;
    assert_eq!(code, 400, "{resp}");
    assert!(
        resp["message"].as_str().unwrap().contains(
            "The connector does not support exactly-once semantics with the provided configuration."
        ),
        "a CDC snapshot repeats itself when interrupted: {resp}"
    );

    let source = json!({"name": "src", "config": {
        "connector.class": "FileStreamSource", "file": input.display().to_string(),
        "topic": "eos-lines", "exactly.once.support": "required"}});
    let (code, resp) = api.post("/connectors", Some(source)).await;
    assert_eq!(code, 201, "{resp}");
    assert_eq!(committed(&bs, "eos-lines", 300).await, lines(0, 300));
    // Committed in transactions: their markers take offsets after the records.
    let end = end_offset(&bs, "eos-lines");
    assert!(end > 300, "log end {end}: no transaction markers");
    eventually_async("the committed offset at the file's end", 30, || async {
        let (_, o) = api.get("/connectors/src/offsets").await;
        o["offsets"][0]["offset"]["position"].as_u64()
            == Some(std::fs::metadata(&input).unwrap().len())
    })
    .await;

    // The worker goes; a zombie of task 0 (its transactional id) holds a transaction
    // open. The task's next instance fences it: its record is never committed.
    worker.shutdown().await;
    let zombie = zombie(&bs, &format!("{GROUP}-src-0"), "eos-lines");
    append(&input, 300, 400);
    let worker = Distributed::start(eos_worker(&bs, "enabled"))
        .await
        .unwrap();
    let expected = lines(0, 400);
    assert_eq!(committed(&bs, "eos-lines", 400).await, expected);
    let commit =
        tokio::task::spawn_blocking(move || zombie.commit_transaction(Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(commit.is_err(), "the zombie committed after being fenced");
    assert_eq!(committed(&bs, "eos-lines", 400).await, expected);
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_without_exactly_once_refuses_required() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let worker = Distributed::start(eos_worker(&bs, "disabled"))
        .await
        .unwrap();
    let api = Api::new(worker.rest_addr);
    let (code, resp) = api
        .put(
            "/connector-plugins/FileStreamSource/config/validate",
            Some(json!({"connector.class": "FileStreamSource", "topic": "t",
                        "exactly.once.support": "required"})),
        )
        .await;
    assert_eq!(code, 200, "{resp}");
    assert_eq!(resp["error_count"], 1, "{resp}");
    let field = resp["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "exactly.once.support")
        .unwrap();
    assert_eq!(
        field["value"]["errors"],
        json!(["This worker does not have exactly-once source support enabled."])
    );
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_fences_the_tasks_of_the_previous_generation() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let db = pg.client().await;
    db.batch_execute(
        "CREATE TABLE a (id SERIAL PRIMARY KEY, name TEXT); CREATE TABLE b (id SERIAL PRIMARY KEY, name TEXT);
         INSERT INTO a (name) VALUES ('a1'), ('a2'); INSERT INTO b (name) VALUES ('b1');",
    )
    .await
    .unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["pg-a", "pg-b"]).await;
    let worker = Distributed::start(eos_worker(&bs, "enabled"))
        .await
        .unwrap();
    let api = Api::new(worker.rest_addr);
    let config = |tasks: &str| {
        json!({"connector.class": "JdbcSourceConnector", "connection.url": pg.url(),
               "mode": "incrementing", "incrementing.column.name": "id", "topic.prefix": "pg-",
               "poll.interval.ms": "200", "tasks.max": tasks,
               "value.converter": "org.apache.kafka.connect.json.JsonConverter",
               "value.converter.schemas.enable": "false"})
    };
    let (code, resp) = api.put("/connectors/pg/config", Some(config("2"))).await;
    assert_eq!(code, 201, "{resp}");
    assert_eq!(committed(&bs, "pg-a", 2).await.len(), 2);
    assert_eq!(committed(&bs, "pg-b", 1).await.len(), 1);
    let (_, tasks) = api.get("/connectors/pg/tasks").await;
    assert_eq!(tasks.as_array().unwrap().len(), 2);

    // A zombie of task 1 (say, on a worker cut off from the group) with a transaction
    // open. Task 1 goes away when the connector shrinks to one task; only the owner's
    // fencing of the previous generation stops the zombie from committing.
    let zombie = zombie(&bs, &format!("{GROUP}-pg-1"), "pg-a");
    let (code, resp) = api.put("/connectors/pg/config", Some(config("1"))).await;
    assert_eq!(code, 200, "{resp}");
    let b2 = bs.clone();
    tokio::task::spawn_blocking(move || wait_for_task_count(&b2, "pg", 1))
        .await
        .unwrap();
    eventually_async("one task running", 30, || async {
        let (_, s) = api.get("/connectors/pg/status").await;
        s["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == 1 && t[0]["state"] == "RUNNING")
    })
    .await;
    db.batch_execute("INSERT INTO a (name) VALUES ('a3')")
        .await
        .unwrap();
    let values = committed(&bs, "pg-a", 3).await;
    let names: Vec<String> = values
        .iter()
        .map(|v| serde_json::from_str::<serde_json::Value>(v).unwrap()["name"].to_string())
        .collect();
    assert_eq!(names, vec!["\"a1\"", "\"a2\"", "\"a3\""]);
    let commit =
        tokio::task::spawn_blocking(move || zombie.commit_transaction(Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(commit.is_err(), "the zombie of task 1 was not fenced");
    assert_eq!(committed(&bs, "pg-a", 3).await.len(), 3);
    worker.shutdown().await;
}
