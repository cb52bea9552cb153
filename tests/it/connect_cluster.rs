//! Two `runnel connect distributed` processes in one group: one is killed with -9 and
//! the other takes its tasks over after the session timeout; no line is lost.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};

use crate::support::*;

struct Worker {
    child: Child,
    port: u16,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_worker(dir: &Path, bootstrap: &str, n: usize) -> Worker {
    let port = free_port();
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/connect/worker-distributed.properties");
    let props = std::fs::read_to_string(example)
        .unwrap()
        .replace("127.0.0.1:9092", bootstrap)
        .replace("127.0.0.1:8083", &format!("127.0.0.1:{port}"))
        // The dead worker's sink consumer leaves its group after 6 s, not librdkafka's 45 s.
        + "session.timeout.ms=6000\nheartbeat.interval.ms=500\noffset.flush.interval.ms=200\n\
           consumer.session.timeout.ms=6000\n";
    let file = dir.join(format!("worker-{n}.properties"));
    std::fs::write(&file, props).unwrap();
    let log = std::fs::File::create(dir.join(format!("worker-{n}.log"))).unwrap();
    let child = runnel()
        .args(["connect", "distributed"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for("the worker's REST API", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Worker { child, port }
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

/// The workers running the connectors' tasks, when every task is RUNNING.
fn task_workers(port: u16) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for name in ["src", "sink"] {
        let (code, s) = http(port, "GET", &format!("/connectors/{name}/status"), None);
        let tasks = s["tasks"].as_array()?;
        if code != 200 || tasks.is_empty() {
            return None;
        }
        for t in tasks {
            if t["state"] != "RUNNING" {
                return None;
            }
            out.insert(t["worker_id"].as_str()?.to_string());
        }
    }
    Some(out)
}

fn distinct_lines(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_killed_workers_tasks_move_to_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let a = start_worker(dir.path(), &broker.bootstrap, 1);
    let b = start_worker(dir.path(), &broker.bootstrap, 2);
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    append(&input, 0, 500);
    let connector = |name: &str, config: String| {
        let body = format!("{{\"name\": \"{name}\", \"config\": {config}}}");
        let (code, resp) = http(a.port, "POST", "/connectors", Some(&body));
        assert_eq!(code, 201, "{resp}");
    };
    connector(
        "src",
        format!(
            "{{\"connector.class\": \"FileStreamSource\", \"file\": \"{}\", \"topic\": \"lines\"}}",
            input.display()
        ),
    );
    connector(
        "sink",
        format!(
            "{{\"connector.class\": \"FileStreamSink\", \"file\": \"{}\", \"topics\": \"lines\"}}",
            output.display()
        ),
    );
    let ids = |w: &[&Worker]| -> BTreeSet<String> {
        w.iter().map(|w| format!("127.0.0.1:{}", w.port)).collect()
    };
    let both = ids(&[&a, &b]);
    wait_for("a task on each worker", 60, || {
        task_workers(b.port).as_ref() == Some(&both)
    });
    wait_for("the first 500 lines copied", 60, || {
        distinct_lines(&output).len() >= 500
    });

    let survivor = ids(&[&b]);
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL: no LeaveGroup, no final commit.
    a.child.wait().unwrap();
    append(&input, 500, 1000);
    wait_for("both tasks on the survivor", 90, || {
        task_workers(b.port).as_ref() == Some(&survivor)
    });
    let expected = distinct_lines(&input);
    wait_for("all 1000 lines copied", 60, || {
        distinct_lines(&output) == expected
    });
    // At least once: a line the dead worker wrote but did not commit may appear twice,
    // but in order of first appearance nothing is missing or reordered.
    let mut seen = BTreeSet::new();
    let firsts: Vec<String> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .filter(|l| seen.insert(l.to_string()))
        .map(String::from)
        .collect();
    let inputs: Vec<String> = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(firsts, inputs);
}
