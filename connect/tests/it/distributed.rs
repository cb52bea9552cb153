//! Distributed mode: two workers in one group share connectors and tasks through the
//! group protocol; configs, offsets and statuses live in the shared topics; when a worker
//! leaves, its tasks move to the other and resume from the committed offsets.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use runnel_connect::distributed::Distributed;
use runnel_connect::WorkerConfig;
use serde_json::json;

use crate::common::*;

fn distributed_config(bootstrap: &str) -> WorkerConfig {
    WorkerConfig::from_props(config(&[
        ("bootstrap.servers", bootstrap),
        ("group.id", "connect-it"),
        ("listeners", "http://127.0.0.1:0"),
        ("config.storage.topic", "it-configs"),
        ("offset.storage.topic", "it-offsets"),
        ("offset.storage.partitions", "3"),
        ("status.storage.topic", "it-status"),
        ("offset.flush.interval.ms", "300"),
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
        writeln!(f, "line {i} — é").unwrap();
    }
}

/// worker ids of every task of every connector, when all are RUNNING.
async fn running_on(api: &Api, names: &[&str]) -> Option<BTreeSet<String>> {
    let mut workers = BTreeSet::new();
    for n in names {
        let (code, s) = api.get(&format!("/connectors/{n}/status")).await;
        let tasks = s["tasks"].as_array()?;
        if code != 200 || tasks.is_empty() || s["connector"]["state"] != "RUNNING" {
            return None;
        }
        for t in tasks {
            if t["state"] != "RUNNING" {
                return None;
            }
            workers.insert(t["worker_id"].as_str()?.to_string());
        }
    }
    Some(workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_share_connectors_and_take_over_when_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["lines"]).await;
    let a = Distributed::start(distributed_config(&bs)).await.unwrap();
    let b = Distributed::start(distributed_config(&bs)).await.unwrap();
    let (api_a, api_b) = (Api::new(a.rest_addr), Api::new(b.rest_addr));
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    append(&input, 0, 1000);

    // Created through A...
    let (code, created) = api_a
        .post(
            "/connectors",
            Some(json!({"name": "src", "config": {
                "connector.class": "FileStreamSource", "file": input.display().to_string(),
                "topic": "lines"}})),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    let (code, _) = api_a
        .post(
            "/connectors",
            Some(json!({"name": "sink", "config": {
                "connector.class": "FileStreamSink", "file": output.display().to_string(),
                "topics": "lines"}})),
        )
        .await;
    assert_eq!(code, 201);
    let (code, dup) = api_b
        .post(
            "/connectors",
            Some(
                json!({"name": "src", "config": {"connector.class": "FileStreamSource",
                "topic": "x"}}),
            ),
        )
        .await;
    assert_eq!(code, 409, "a name taken through A is taken for B: {dup}");

    // ...seen by B, and the two tasks run one on each worker.
    let (_, names) = api_b.get("/connectors").await;
    assert_eq!(names, json!(["sink", "src"]));
    let both: BTreeSet<String> = [a.rest_addr.to_string(), b.rest_addr.to_string()].into();
    eventually_async("one task on each worker", 30, || async {
        running_on(&api_b, &["src", "sink"]).await.as_ref() == Some(&both)
    })
    .await;
    let (_, tasks) = api_b.get("/connectors/src/tasks").await;
    assert_eq!(tasks[0]["id"], json!({"connector": "src", "task": 0}));
    eventually("the first 1000 lines in the sink file", 30, || {
        lines(&output).len() >= 1000
    })
    .await;

    // A leaves: B runs everything, resuming from the offsets A committed.
    a.shutdown().await;
    let only_b: BTreeSet<String> = [b.rest_addr.to_string()].into();
    eventually_async("both tasks on B", 30, || async {
        running_on(&api_b, &["src", "sink"]).await.as_ref() == Some(&only_b)
    })
    .await;
    append(&input, 1000, 2000);
    eventually("2000 lines in the sink file", 30, || {
        lines(&output).len() >= 2000
    })
    .await;
    let idle = std::time::Duration::from_millis(500);
    settle_async("the sink file", 60, idle, || lines(&output).len()).await;
    assert_eq!(
        lines(&output),
        lines(&input),
        "every line once, in order, across the move"
    );
    let size = std::fs::metadata(&input).unwrap().len();
    let (_, offsets) = api_b.get("/connectors/src/offsets").await;
    assert_eq!(
        offsets["offsets"][0]["offset"]["position"],
        json!(size),
        "{offsets}"
    );

    // Target states and deletes go through the config topic too.
    assert_eq!(api_b.put("/connectors/src/pause", None).await.0, 202);
    eventually_async("src paused", 30, || async {
        let (_, s) = api_b.get("/connectors/src/status").await;
        s["tasks"][0]["state"] == "PAUSED" && s["connector"]["state"] == "PAUSED"
    })
    .await;
    assert_eq!(
        api_b
            .call(reqwest::Method::DELETE, "/connectors/sink", None)
            .await
            .0,
        204
    );
    assert_eq!(api_b.get("/connectors/sink").await.0, 404);
    let (_, names) = api_b.get("/connectors").await;
    assert_eq!(names, json!(["src"]));

    // A task that fails is FAILED for every worker; a restart request, sent through the
    // config topic to whichever worker runs it, brings it back.
    let missing_dir = dir.path().join("not-yet");
    let (code, _) = api_b
        .post(
            "/connectors",
            Some(json!({"name": "broken", "config": {
                "connector.class": "FileStreamSink",
                "file": missing_dir.join("out.txt").display().to_string(),
                "topics": "lines"}})),
        )
        .await;
    assert_eq!(code, 201);
    eventually_async("the broken sink FAILED", 30, || async {
        let (_, s) = api_b.get("/connectors/broken/status").await;
        s["tasks"][0]["state"] == "FAILED"
    })
    .await;
    std::fs::create_dir(&missing_dir).unwrap();
    let (code, _) = api_b.post("/connectors/broken/tasks/0/restart", None).await;
    assert_eq!(code, 204);
    eventually_async("the restarted sink RUNNING", 30, || async {
        let (_, s) = api_b.get("/connectors/broken/status").await;
        s["tasks"][0]["state"] == "RUNNING"
    })
    .await;
    eventually("the restarted sink copying", 30, || {
        lines(&missing_dir.join("out.txt")).len() >= 2000
    })
    .await;

    b.shutdown().await;
    broker.shutdown().await.unwrap();
}

/// A worker asked to stop after its cluster went away stops anyway, within Kafka's
/// bound (`DistributedHerder.stop` waits `worker.sync.timeout.ms` +
/// `task.shutdown.graceful.timeout.ms` + the connector's graceful shutdown, then gives
/// up): its final status and offset writes cannot reach a broker, and used to hang
/// SIGTERM forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stops_within_its_bound_when_the_cluster_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    create_topics(&bs, &["lines"]).await;
    let w = Distributed::start(distributed_config(&bs)).await.unwrap();
    let api = Api::new(w.rest_addr);
    let input = dir.path().join("in.txt");
    append(&input, 0, 100);
    let (code, _) = api
        .post(
            "/connectors",
            Some(json!({"name": "src", "config": {
                "connector.class": "FileStreamSource", "file": input.display().to_string(),
                "topic": "lines"}})),
        )
        .await;
    assert_eq!(code, 201);
    eventually_async("src running", 30, || async {
        running_on(&api, &["src"]).await.is_some()
    })
    .await;
    broker.shutdown().await.unwrap();
    append(&input, 100, 200);
    let bound = runnel_connect::distributed::SHUTDOWN_TIMEOUT + Duration::from_secs(10);
    let started = std::time::Instant::now();
    assert!(
        tokio::time::timeout(bound, w.shutdown()).await.is_ok(),
        "the worker was still stopping after {bound:?}"
    );
    eprintln!("stopped in {:?} without a broker", started.elapsed());
}
