//! The real-client conformance suite (../shared/conformance: kcat, kafka-python,
//! confluent-kafka) against `runnel broker`.

use std::path::PathBuf;
use std::process::Command;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::support::{free_port, ChildBroker};

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/run")
}

#[test]
fn real_clients_pass_the_conformance_suite() {
    let run = suite();
    assert!(
        run.exists(),
        "{} is missing: CI runs with shared/ beside the checkout",
        run.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let out = Command::new("bash")
        .arg(&run)
        .args(["--bootstrap", &broker.bootstrap])
        .output()
        .expect("run the conformance suite (set up with `run --setup`, as the README's test command does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    let passed = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        failures.is_empty(),
        "conformance failures:\n{}\n{}",
        failures.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(passed >= 13, "only {passed} checks passed:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_topic_requests_get_kafkas_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    let create = |name: &'static str, cfg: Option<(&'static str, &'static str)>| {
        let admin = &admin;
        async move {
            let mut t = NewTopic::new(name, 1, TopicReplication::Fixed(1));
            if let Some((k, v)) = cfg {
                t = t.set(k, v);
            }
            admin
                .create_topics([&t], &AdminOptions::new())
                .await
                .unwrap()
                .remove(0)
        }
    };
    let err = create("badcfg", Some(("retention.ms", "not-a-number")))
        .await
        .unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::InvalidConfig);
    let err = create("bad/name", None).await.unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::InvalidTopic);
    create("dup", None).await.unwrap();
    let err = create("dup", None).await.unwrap_err();
    assert_eq!(err.1, RDKafkaErrorCode::TopicAlreadyExists);
}
