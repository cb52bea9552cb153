//! An in-process broker with the defaults tests want: a free loopback port, no
//! initial rebalance delay, few internal-topic partitions.

use std::net::TcpListener;
use std::path::Path;

use runnel_broker::{Broker, BrokerConfig, BrokerHandle};

/// Logs on `RUST_LOG` to the test's output; a second call does nothing.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The broker configuration of a test: data in `dir`, an ephemeral port, no initial
/// rebalance delay, three partitions for the offsets and transaction topics; `extra`
/// overrides any of it.
pub fn broker_config(dir: &Path, extra: &[(&str, &str)]) -> BrokerConfig {
    let defaults = [
        ("log.dirs", dir.display().to_string()),
        ("listeners", "PLAINTEXT://127.0.0.1:0".to_string()),
        ("group.initial.rebalance.delay.ms", "0".to_string()),
        ("offsets.topic.num.partitions", "3".to_string()),
        ("transaction.state.log.num.partitions", "3".to_string()),
    ];
    let mut config = BrokerConfig::default();
    for (k, v) in defaults
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
    {
        config = config
            .with_property(k, v)
            .unwrap_or_else(|e| panic!("test broker property {k}={v}: {e}"));
    }
    config
}

/// Starts a broker on the caller's runtime.
pub async fn start_broker(dir: &Path, extra: &[(&str, &str)]) -> BrokerHandle {
    init_tracing();
    Broker::start(broker_config(dir, extra))
        .await
        .expect("the test broker starts")
}

/// A broker on a runtime of its own, for tests that block their thread; shut down
/// when dropped.
pub struct TestBroker {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<BrokerHandle>,
    pub bootstrap: String,
}

impl TestBroker {
    pub fn start(dir: &Path) -> TestBroker {
        TestBroker::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, extra: &[(&str, &str)]) -> TestBroker {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the test broker");
        let handle = rt.block_on(start_broker(dir, extra));
        let bootstrap = handle.bootstrap();
        TestBroker {
            rt,
            handle: Some(handle),
            bootstrap,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}
