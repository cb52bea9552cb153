//! `runnel ksql-server` and the `runnel ksql` shell, run as a user runs them: a script
//! with --file, statements on a pipe, and an interactive session on a pseudo-terminal.

use std::io::Write;
use std::process::{Child, Stdio};

use crate::support::{free_port, http, runnel, wait_for, ChildBroker};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bootstrap: &str, state: &std::path::Path) -> Server {
    let port = free_port();
    let log = std::fs::File::create(state.with_extension("ksql.log")).unwrap();
    let child = runnel()
        .args(["ksql-server", "--bootstrap-server", bootstrap, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for("the KSQL server", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/info", None).0 == 200
    });
    Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn shell(url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = runnel()
        .arg("ksql")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text a terminal shows, without its control sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for n in chars.by_ref() {
                if ('@'..='~').contains(&n) {
                    break;
                }
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[test]
fn shell_runs_scripts_pipes_and_an_interactive_session() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ChildBroker::start(&dir.path().join("data"), free_port(), &[]);
    let server = start_server(&broker.bootstrap, &dir.path().join("ksql"));

    let script = dir.path().join("setup.sql");
    std::fs::write(
        &script,
        "-- a stream, three rows and a table over them
         CREATE STREAM readings (sensor STRING KEY, temp DOUBLE)
           WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=1);
         INSERT INTO readings (sensor, temp) VALUES ('s1', 20.5);
         INSERT INTO readings (sensor, temp) VALUES ('s2', 31.0);
         INSERT INTO readings (sensor, temp) VALUES ('s1', 22.5);
         CREATE TABLE max_temp AS SELECT sensor, MAX(temp) AS hottest FROM readings GROUP BY sensor;
         SET 'auto.offset.reset'='earliest';
         SELECT sensor, temp FROM readings WHERE temp > 21 EMIT CHANGES LIMIT 2;
         SHOW STREAMS;",
    )
    .unwrap();
    let (ok, out, err) = shell(&server.url, &["--file", script.to_str().unwrap()], "");
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("Stream created") && out.contains("Created query with ID CTAS_MAX_TEMP_"),
        "{out}"
    );
    assert!(out.contains("|SENSOR      |TEMP        |"), "{out}");
    assert!(
        out.contains("|s2          |31.0        |") && out.contains("|s1          |22.5        |"),
        "{out}"
    );
    assert!(out.contains("2 rows in set"), "{out}");
    assert!(
        out.contains(" READINGS    | readings    | KAFKA      | JSON"),
        "{out}"
    );

    // Statements on a pipe; a syntax error names its line and column and fails the run.
    wait_for("the table to hold s1's maximum", 30, || {
        let (_, out, _) = shell(
            &server.url,
            &[],
            "SELECT * FROM max_temp WHERE sensor = 's1';",
        );
        out.contains("|s1          |22.5        |")
    });
    let (ok, _, err) = shell(&server.url, &[], "SHOW TABLES;\nSELEC * FROM readings;");
    assert!(!ok);
    assert!(err.contains("line 2:1") && err.contains("SELEC"), "{err}");

    // An interactive session on a pseudo-terminal: a statement over two lines.
    let mut child = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "{} ksql {}",
            env!("CARGO_BIN_EXE_runnel"),
            server.url
        ))
        .arg("/dev/null")
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(b"SHOW\r").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stdin.write_all(b"  TABLES;\r").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(b"exit\r").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    assert!(
        text.contains("ksql> SHOW") && text.contains("   >   TABLES;"),
        "{text}"
    );
    assert!(
        text.contains(" MAX_TEMP   | MAX_TEMP    | KAFKA      | JSON"),
        "{text}"
    );
    assert!(dir.path().join(".runnel_ksql_history").exists());
}
