//! Transform chains and predicates on real records.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smt_chain_reshapes_and_routes_source_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let input = dir.path().join("events.txt");
    std::fs::write(&input, "alpha\nbeta\n").unwrap();
    let source = config(&[
        ("connector.class", "FileStreamSource"),
        ("file", &input.display().to_string()),
        ("topic", "raw-events"),
        (
            "value.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("value.converter.schemas.enable", "false"),
        ("transforms", "hoist,origin,route,hdr"),
        (
            "transforms.hoist.type",
            "org.apache.kafka.connect.transforms.HoistField$Value",
        ),
        ("transforms.hoist.field", "line"),
        (
            "transforms.origin.type",
            "org.apache.kafka.connect.transforms.InsertField$Value",
        ),
        ("transforms.origin.static.field", "origin"),
        ("transforms.origin.static.value", "file"),
        (
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        ),
        ("transforms.route.regex", "raw-(.*)"),
        ("transforms.route.replacement", "clean-$1"),
        (
            "transforms.hdr.type",
            "org.apache.kafka.connect.transforms.InsertHeader",
        ),
        ("transforms.hdr.header", "source"),
        ("transforms.hdr.value.literal", "runnel"),
    ]);
    let worker = standalone(&bs, dir.path(), vec![("events".into(), source)]).await;
    let got = read_topic(&bs, "clean-events", 2).await;
    let values: Vec<String> = got.iter().map(|r| r.1.clone().unwrap()).collect();
    assert_eq!(
        values,
        vec![
            r#"{"line":"alpha","origin":"file"}"#,
            r#"{"line":"beta","origin":"file"}"#
        ]
    );
    assert_eq!(got[0].2, vec![("source".to_string(), "runnel".to_string())]);
    worker.shutdown().await;
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_with_a_predicate_drops_matching_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let (keep, drop_in) = (dir.path().join("keep.txt"), dir.path().join("drop.txt"));
    std::fs::write(&keep, "k1\nk2\n").unwrap();
    std::fs::write(&drop_in, "d1\nd2\n").unwrap();
    let out = dir.path().join("out.txt");
    let connectors = vec![
        (
            "keep".into(),
            config(&[
                ("connector.class", "FileStreamSource"),
                ("file", &keep.display().to_string()),
                ("topic", "keep-me"),
            ]),
        ),
        (
            "drop".into(),
            config(&[
                ("connector.class", "FileStreamSource"),
                ("file", &drop_in.display().to_string()),
                ("topic", "drop-me"),
            ]),
        ),
        (
            "sink".into(),
            config(&[
                ("connector.class", "FileStreamSink"),
                ("topics", "keep-me,drop-me"),
                ("file", &out.display().to_string()),
                ("transforms", "skip,upper"),
                (
                    "transforms.skip.type",
                    "org.apache.kafka.connect.transforms.Filter",
                ),
                ("transforms.skip.predicate", "isDrop"),
                (
                    "transforms.upper.type",
                    "org.apache.kafka.connect.transforms.HoistField$Value",
                ),
                ("transforms.upper.field", "line"),
                ("transforms.upper.predicate", "isDrop"),
                ("transforms.upper.negate", "true"),
                ("predicates", "isDrop"),
                (
                    "predicates.isDrop.type",
                    "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
                ),
                ("predicates.isDrop.pattern", "drop-.*"),
            ]),
        ),
    ];
    create_topics(&bs, &["keep-me", "drop-me"]).await;
    let worker = standalone(&bs, dir.path(), connectors).await;
    // Both source topics are full before the sink's output is checked.
    assert_eq!(read_topic(&bs, "drop-me", 2).await.len(), 2);
    eventually("the kept lines", 60, || lines(&out).len() >= 2).await;
    let idle = std::time::Duration::from_millis(800);
    settle_async("the sink file", 60, idle, || lines(&out).len()).await;
    worker.shutdown().await;
    let mut got = lines(&out);
    got.sort();
    // Filter dropped drop-me; the negated predicate hoisted only keep-me's values.
    assert_eq!(got, vec!["Struct{line=k1}", "Struct{line=k2}"]);
    broker.shutdown().await.unwrap();
}
