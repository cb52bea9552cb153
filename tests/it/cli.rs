//! The client commands against `runnel broker`, as a user would type them.

use std::collections::BTreeSet;
use std::process::Output;

use crate::support::{free_port, runnel, ChildBroker};

fn run(bootstrap: &str, args: &[&str]) -> Output {
    let out = runnel()
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .output()
        .unwrap();
    out
}

fn ok(bootstrap: &str, args: &[&str]) -> String {
    let out = run(bootstrap, args);
    assert!(
        out.status.success(),
        "runnel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn topics_produce_consume_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let bs = broker.bootstrap.as_str();

    ok(
        bs,
        &[
            "topics",
            "create",
            "clitest",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
    );
    assert!(ok(bs, &["topics", "list"]).lines().any(|l| l == "clitest"));
    let described = ok(bs, &["topics", "describe", "clitest"]);
    assert!(
        described.contains("Partitions: 3") && described.contains("retention.ms=3600000"),
        "{described}"
    );
    ok(
        bs,
        &[
            "topics",
            "alter",
            "clitest",
            "--partitions",
            "4",
            "--config",
            "segment.bytes=1000000",
        ],
    );
    let described = ok(bs, &["topics", "describe", "clitest"]);
    assert!(described.contains("Partitions: 4"), "{described}");
    assert!(
        described.contains("retention.ms=3600000") && described.contains("segment.bytes=1000000"),
        "{described}"
    );

    let input = dir.path().join("lines.txt");
    let lines: Vec<String> = (0..1000).map(|i| format!("k{}:v{i}", i % 10)).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    ok(
        bs,
        &[
            "produce",
            "--topic",
            "clitest",
            "--key-separator",
            ":",
            "--file",
            input.to_str().unwrap(),
        ],
    );
    let consumed = ok(
        bs,
        &[
            "consume",
            "--topic",
            "clitest",
            "--from-beginning",
            "--group",
            "cg",
            "--max-messages",
            "1000",
            "--format",
            "key-value",
        ],
    );
    let got: BTreeSet<String> = consumed.lines().map(|l| l.replace('\t', ":")).collect();
    let want: BTreeSet<String> = lines.into_iter().collect();
    assert_eq!(got, want);

    assert!(ok(bs, &["groups", "list"]).contains("cg"));
    let described = ok(bs, &["groups", "describe", "cg"]);
    let lags: Vec<i64> = described
        .lines()
        .filter(|l| l.starts_with("clitest\t"))
        .map(|l| l.rsplit('\t').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(lags.len(), 4, "{described}");
    assert!(lags.iter().all(|l| *l == 0), "{described}");
    ok(
        bs,
        &[
            "groups",
            "reset-offsets",
            "cg",
            "--topic",
            "clitest",
            "--to-earliest",
            "--execute",
        ],
    );
    let described = ok(bs, &["groups", "describe", "cg"]);
    let total_lag: i64 = described
        .lines()
        .filter(|l| l.starts_with("clitest\t"))
        .map(|l| l.rsplit('\t').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total_lag, 1000, "{described}");

    ok(bs, &["topics", "delete", "clitest"]);
    assert!(!ok(bs, &["topics", "list"]).lines().any(|l| l == "clitest"));

    let bad = run(bs, &["topics", "create", "bad/name"]);
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("bad/name"), "the error names the topic: {msg}");
}

#[test]
fn up_starts_the_embedded_broker_and_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (port, rest_port) = (free_port(), free_port());
    let mut child = runnel()
        .current_dir(dir.path())
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--connect-listen",
            &format!("127.0.0.1:{rest_port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    while !banner.contains("Stop with Ctrl-C") {
        assert!(
            out.read_line(&mut banner).unwrap() > 0,
            "runnel up exited early: {banner}"
        );
    }
    let bs = format!("127.0.0.1:{port}");
    assert!(
        banner.contains(&bs),
        "the banner says where the broker runs: {banner}"
    );
    assert!(
        banner.contains(&format!("http://127.0.0.1:{rest_port}")),
        "the banner names the Connect API: {banner}"
    );
    // The Connect worker answers over HTTP.
    let mut http = std::net::TcpStream::connect(("127.0.0.1", rest_port)).unwrap();
    use std::io::{Read, Write};
    http.write_all(b"GET /connector-plugins HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.contains("FileStreamSourceConnector"),
        "{reply}"
    );
    ok(&bs, &["topics", "create", "upcheck"]);
    assert!(ok(&bs, &["topics", "list"]).contains("upcheck"));
    // SIGTERM: a clean shutdown leaves the marker in ./runnel-data.
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(dir
        .path()
        .join("runnel-data/.runnel_cleanshutdown")
        .exists());
    assert!(dir.path().join("runnel-data/upcheck-0").is_dir());
}

#[test]
fn connect_standalone_runs_the_example_connectors() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let rest = free_port();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/connect");
    // The example worker config, pointed at this test's broker and port.
    let worker = std::fs::read_to_string(examples.join("worker.properties"))
        .unwrap()
        .replace("127.0.0.1:9092", &broker.bootstrap)
        .replace("127.0.0.1:8083", &format!("127.0.0.1:{rest}"))
        .replace(
            "offset.flush.interval.ms=10000",
            "offset.flush.interval.ms=200",
        );
    std::fs::write(dir.path().join("worker.properties"), worker).unwrap();
    std::fs::File::create(dir.path().join("input.txt"))
        .unwrap()
        .write_all("first\nsecond\n".as_bytes())
        .unwrap();
    let mut child = runnel()
        .current_dir(dir.path())
        .args(["connect", "standalone", "worker.properties"])
        .arg(examples.join("file-source.json"))
        .arg(examples.join("file-sink.json"))
        .arg(examples.join("file-source.properties"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let output = dir.path().join("output.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&output)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the example pipeline did not copy input.txt"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "first\nsecond\n");
    // The .properties connector's RegexRouter renamed its topic.
    let routed = ok(
        &broker.bootstrap,
        &[
            "consume",
            "--topic",
            "routed-lines-props",
            "--from-beginning",
            "--max-messages",
            "2",
        ],
    );
    assert_eq!(routed, "first\nsecond\n");
    std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    // Source offsets were committed to the file the worker config names.
    let offsets = std::fs::read_to_string(dir.path().join("runnel-data/connect.offsets")).unwrap();
    assert!(offsets.contains("\"position\": 13"), "{offsets}");
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_reads_stdin_and_writes_stdout_when_no_file_is_set() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let worker = format!(
        "bootstrap.servers={}\nlisteners=http://127.0.0.1:{}\nkey.converter=org.apache.kafka.connect.storage.StringConverter\nvalue.converter=org.apache.kafka.connect.storage.StringConverter\noffset.flush.interval.ms=200\n",
        broker.bootstrap,
        free_port()
    );
    std::fs::write(dir.path().join("worker.properties"), worker).unwrap();
    std::fs::write(
        dir.path().join("in.properties"),
        "name=stdin-in\nconnector.class=FileStreamSource\ntopic=piped\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("out.properties"),
        "name=stdout-out\nconnector.class=FileStreamSink\ntopics=piped\n",
    )
    .unwrap();
    let mut child = KillOnDrop(
        runnel()
            .current_dir(dir.path())
            .args([
                "connect",
                "standalone",
                "worker.properties",
                "in.properties",
                "out.properties",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.0.stdin.take().unwrap();
    stdin
        .write_all("piped one\npiped twö\n".as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while seen.len() < 2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("piped") => seen.push(line),
            Ok(_) => {}
            Err(e) => panic!("stdin lines did not come out ({e}): {seen:?}"),
        }
    }
    assert_eq!(seen, vec!["piped one", "piped twö"]);
    drop(stdin);
}

#[test]
fn perf_references_loopback_and_sink() {
    // `runnel perf loopback` reports MB/s; `runnel perf sink` speaks enough Kafka for
    // librdkafka to produce into it (the reference of scripts/bench-produce.sh).
    let dir = tempfile::tempdir().unwrap();
    let out = runnel()
        .args(["perf", "loopback", "--bytes", "10000000", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("10000000 bytes"),
        "{text}"
    );
    let port = free_port();
    let mut sink = runnel()
        .args([
            "perf",
            "sink",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--dir",
        ])
        .arg(dir.path())
        .spawn()
        .unwrap();
    crate::support::wait_for("the sink to listen", 10, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let bs = format!("127.0.0.1:{port}");
    let out = run(
        &bs,
        &[
            "perf",
            "produce",
            "--topic",
            "s",
            "--num-records",
            "5000",
            "--record-size",
            "100",
        ],
    );
    let _ = sink.kill();
    let _ = sink.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("5000 records sent") && text.contains(" 0 errors"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(written > 5000 * 100, "the sink wrote {written} bytes");
}
