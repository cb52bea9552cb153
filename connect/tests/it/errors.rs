//! A record the converter rejects: to the dead letter queue with context headers when
//! errors.tolerance=all; the task stops with a clear error when none.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::common::*;

async fn produce(bs: &str, topic: &str, values: &[&str]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .create()
        .unwrap();
    for v in values {
        p.send(
            FutureRecord::<(), _>::to(topic).payload(*v),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dlq_or_fail_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    produce(
        &bs,
        "mixed",
        &[
            r#"{"n":1}"#,
            "not json",
            r#"{"n":2}"#,
            "{broken",
            r#"{"n":3}"#,
        ],
    )
    .await;
    let (tolerant_out, strict_out) = (
        dir.path().join("tolerant.txt"),
        dir.path().join("strict.txt"),
    );
    let tolerant = config(&[
        ("connector.class", "FileStreamSink"),
        ("topics", "mixed"),
        ("file", &tolerant_out.display().to_string()),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
        ("errors.tolerance", "all"),
        ("errors.log.enable", "true"),
        ("errors.deadletterqueue.topic.name", "mixed-dlq"),
        ("errors.deadletterqueue.context.headers.enable", "true"),
    ]);
    let strict = config(&[
        ("connector.class", "FileStreamSink"),
        ("topics", "mixed"),
        ("file", &strict_out.display().to_string()),
        ("value.converter", "JsonConverter"),
        ("value.converter.schemas.enable", "false"),
    ]);
    let worker = standalone(
        &bs,
        dir.path(),
        vec![("tolerant".into(), tolerant), ("strict".into(), strict)],
    )
    .await;
    eventually("three good records", 60, || lines(&tolerant_out).len() == 3).await;
    assert_eq!(lines(&tolerant_out), vec!["{n=1}", "{n=2}", "{n=3}"]);
    let dlq = read_topic(&bs, "mixed-dlq", 2).await;
    let values: Vec<_> = dlq.iter().map(|r| r.1.clone().unwrap()).collect();
    assert_eq!(values, vec!["not json", "{broken"]);
    let h = &dlq[0].2;
    let header = |k: &str| h.iter().find(|(hk, _)| hk == k).map(|(_, v)| v.clone());
    assert_eq!(header("__connect.errors.topic").as_deref(), Some("mixed"));
    assert_eq!(header("__connect.errors.offset").as_deref(), Some("1"));
    assert_eq!(
        header("__connect.errors.connector.name").as_deref(),
        Some("tolerant")
    );
    assert!(header("__connect.errors.exception.message")
        .unwrap()
        .contains("mixed"));

    // Without tolerance the task fails with the reason in its trace, having written
    // only what came before the bad record.
    let failed =
        || async { worker.worker.status("strict").await.unwrap().tasks[0].state == "FAILED" };
    eventually_async("the strict task FAILED", 30, failed).await;
    let status = worker.worker.status("strict").await.unwrap();
    let trace = status.tasks[0].trace.clone().unwrap();
    assert!(
        trace.contains("Tolerance exceeded") && trace.contains("mixed-0 offset 1"),
        "{trace}"
    );
    assert!(lines(&strict_out).len() <= 1);
    // A restart resumes from the committed offset and fails on the same record again.
    worker.worker.restart("strict", true, true).await.unwrap();
    eventually_async("the restarted task FAILED again", 30, failed).await;
    worker.worker.restart_task("strict", 0).await.unwrap();
    let state = worker.worker.status("strict").await.unwrap().tasks[0]
        .state
        .clone();
    assert_eq!(state, "RUNNING", "a fresh task");
    // And the same record fails it again.
    eventually_async("the fresh task FAILED on the same record", 30, failed).await;
    assert!(worker.worker.restart_task("strict", 3).await.is_err());
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}
