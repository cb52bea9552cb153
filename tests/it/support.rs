//! Running `runnel broker` as a child process on a free loopback port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn runnel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct ChildBroker {
    pub child: Child,
    pub bootstrap: String,
}

impl ChildBroker {
    pub fn start(data_dir: &Path, port: u16, extra: &[&str]) -> ChildBroker {
        let log = std::fs::File::create(data_dir.with_extension("broker.log")).unwrap();
        let child = runnel()
            .args(["broker", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn runnel broker");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&bootstrap).is_err() {
            assert!(
                Instant::now() < deadline,
                "runnel broker did not start listening on {bootstrap}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ChildBroker { child, bootstrap }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for ChildBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
