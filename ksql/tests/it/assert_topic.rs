//! `ASSERT [NOT EXISTS] TOPIC` as ksqlDB 0.27+ runs it (AssertTopicExecutor): it waits
//! up to its timeout for the topic to exist (or not) with the partitions and replicas
//! asked for, then answers an `assert_topic` entity or fails naming the difference.
//! And the server refuses RUN SCRIPT, a command of the CLI.

use runnel_ksql::entity::Entity;
use std::time::{Duration, Instant};

use crate::common::Stack;

#[test]
fn assert_topic_waits_for_the_topic_and_checks_its_shape() {
    let stack = Stack::start().unwrap();
    let run = |sql: &str| stack.rt.block_on(stack.engine.execute(sql));
    let err = |sql: &str| run(sql).unwrap_err().to_string();

    let started = Instant::now();
    let e = err("ASSERT TOPIC 'orders' TIMEOUT 300 MILLISECONDS;");
    assert!(e.contains("Topic orders does not exist."), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let ok = run("ASSERT NOT EXISTS TOPIC 'orders';").unwrap();
    assert!(
        matches!(&ok[0], Entity::AssertTopic { exists: false, .. }),
        "{ok:?}"
    );

    // A topic created while the assertion waits satisfies it.
    let kafka = stack.engine.kafka();
    let creator = {
        let bootstrap = stack.broker.bootstrap.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let rt = tokio::runtime::Runtime::new().unwrap();
            let k = runnel_ksql::kafka::Kafka::new(&bootstrap, 1).unwrap();
            rt.block_on(k.create_topic("orders", 2, &[])).unwrap();
        })
    };
    let ok =
        run("ASSERT TOPIC 'orders' WITH (PARTITIONS=2, REPLICAS=1) TIMEOUT 30 SECONDS;").unwrap();
    creator.join().unwrap();
    assert!(
        matches!(&ok[0], Entity::AssertTopic { topic_name, exists: true, .. } if topic_name == "orders"),
        "{ok:?}"
    );
    assert!(stack.rt.block_on(kafka.partitions("orders")).unwrap() == Some(2));

    let e = err("ASSERT TOPIC 'orders' WITH (PARTITIONS=3);");
    assert!(
        e.contains(
            "Mismatched configuration for topic orders: For config partitions, expected 3 got 2"
        ),
        "{e}"
    );
    let e = err("ASSERT NOT EXISTS TOPIC 'orders';");
    assert!(e.contains("Topic orders exists."), "{e}");
    let e = err("ASSERT TOPIC 'orders' WITH (CLEANUP_POLICY='compact');");
    assert!(
        e.contains("Cannot assert unknown topic property: CLEANUP_POLICY"),
        "{e}"
    );

    let e = err("RUN SCRIPT '/etc/passwd';");
    assert!(e.starts_with("line 1:1: Syntax Error"), "{e}");
}
