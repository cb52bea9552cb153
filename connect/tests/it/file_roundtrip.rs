//! file -> topic -> file: 100,000 lines with multi-byte UTF-8 and CRLF endings, lines
//! appended while running, a stop and start in the middle: nothing lost or repeated.

use std::io::Write;

use crate::common::*;

fn line(i: usize) -> String {
    match i % 4 {
        0 => format!("line {i}: plain ascii"),
        1 => format!("línea {i}: ñandú, Grüße, 日本語, emoji 🚀"),
        2 => format!("строка {i}: {}", "ж".repeat(i % 50)),
        _ => format!("{i}"),
    }
}

fn append(path: &std::path::Path, range: std::ops::Range<usize>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for i in range {
        // Every seventh line ends in CRLF: the \r is not part of the record.
        buf.push_str(&line(i));
        buf.push_str(if i % 7 == 0 { "\r\n" } else { "\n" });
    }
    f.write_all(buf.as_bytes()).unwrap();
}

fn connectors(
    input: &std::path::Path,
    output: &std::path::Path,
) -> Vec<(String, runnel_connect::api::Config)> {
    vec![
        (
            "file-in".into(),
            config(&[
                ("connector.class", "FileStreamSource"),
                ("file", &input.display().to_string()),
                ("topic", "lines"),
            ]),
        ),
        (
            "file-out".into(),
            config(&[
                (
                    "connector.class",
                    "org.apache.kafka.connect.file.FileStreamSinkConnector",
                ),
                ("file", &output.display().to_string()),
                ("topics", "lines"),
            ]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_topic_to_file_resumes_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    append(&input, 0..40_000);
    // The last line is unterminated: it must wait for its newline.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all("partial ".as_bytes())
        .unwrap();

    create_topics(&bs, &["lines"]).await;
    let worker = standalone(&bs, dir.path(), connectors(&input, &output)).await;
    eventually("the first 40,000 lines", 120, || {
        lines(&output).len() >= 40_000
    })
    .await;
    // Finish the partial line, then append more while running.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap()
        .write_all("line completed\n".as_bytes())
        .unwrap();
    append(&input, 40_000..60_000);
    // Stop in the middle, while lines are still flowing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    worker.shutdown().await;
    let at_stop = lines(&output).len();
    append(&input, 60_000..100_000);

    let worker = standalone(&bs, dir.path(), connectors(&input, &output)).await;
    eventually("all 100,001 lines", 180, || lines(&output).len() >= 100_001).await;
    // No more come (a duplicate would).
    let idle = std::time::Duration::from_millis(500);
    settle_async("the sink file", 60, idle, || lines(&output).len()).await;
    worker.shutdown().await;

    let mut expected: Vec<String> = (0..40_000).map(line).collect();
    expected.push("partial line completed".into());
    expected.extend((40_000..100_000).map(line));
    let got = lines(&output);
    assert_eq!(
        got.len(),
        expected.len(),
        "line count (stopped at {at_stop})"
    );
    let first_diff = got.iter().zip(&expected).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first difference at line {first_diff:?}");
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_follows_truncation_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(&dir.path().join("broker")).await;
    let bs = broker.bootstrap();
    let (input, output) = (dir.path().join("app.log"), dir.path().join("out.txt"));
    std::fs::write(&input, "a1\na2\n").unwrap();
    create_topics(&bs, &["lines"]).await;
    let worker = standalone(&bs, dir.path(), connectors(&input, &output)).await;
    eventually("a1, a2", 30, || lines(&output).len() == 2).await;
    // Rotation: the file moves away and a new one takes its name.
    std::fs::rename(&input, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&input, "b1\n").unwrap();
    eventually("b1 after rotation", 30, || lines(&output).len() == 3).await;
    // Truncation: the same file starts over.
    std::fs::write(&input, "c1\n").unwrap();
    eventually("c1 after truncation", 30, || lines(&output).len() == 4).await;
    worker.shutdown().await;
    assert_eq!(lines(&output), vec!["a1", "a2", "b1", "c1"]);
    broker.shutdown().await.unwrap();
}
