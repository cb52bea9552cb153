//! An in-process broker on its own runtime and a KSQL engine over it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runnel_broker::{Broker, BrokerConfig, BrokerHandle};
use runnel_ksql::engine::{Engine, EngineConfig};
use serde_json::Value;

pub struct TestBroker {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<BrokerHandle>,
    pub bootstrap: String,
}

impl TestBroker {
    pub fn start(dir: &Path) -> TestBroker {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = BrokerConfig::default()
            .with_property("log.dirs", dir.display().to_string())
            .and_then(|c| c.with_property("listeners", "PLAINTEXT://127.0.0.1:0"))
            .and_then(|c| c.with_property("group.initial.rebalance.delay.ms", "0"))
            .and_then(|c| c.with_property("offsets.topic.num.partitions", "3"))
            .unwrap();
        let handle = rt.block_on(Broker::start(config)).unwrap();
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

/// A broker and an engine over it, each in its own temp dir.
pub struct Stack {
    pub engine: Arc<Engine>,
    pub rt: tokio::runtime::Runtime,
    pub broker: TestBroker,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub fn start() -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let broker = TestBroker::start(&dir.path().join("broker"));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let config = EngineConfig::new(&broker.bootstrap, dir.path().join("ksql"));
        let engine = rt.block_on(Engine::start(config))?;
        Ok(Stack {
            engine,
            rt,
            broker,
            dir,
        })
    }

    /// Another engine over the same broker and state dir (a restarted server).
    pub fn restart_engine(&mut self) -> anyhow::Result<()> {
        self.rt.block_on(self.engine.shutdown());
        let config = EngineConfig::new(&self.broker.bootstrap, self.dir.path().join("ksql"));
        self.engine = self.rt.block_on(Engine::start(config))?;
        Ok(())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.rt.block_on(self.engine.shutdown());
    }
}

/// The latest value per key of a JSON-valued topic.
pub fn latest(stack: &Stack, topic: &str) -> std::collections::BTreeMap<String, Value> {
    let records = stack
        .rt
        .block_on(stack.engine.kafka().read_all(topic))
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for r in records {
        let k = String::from_utf8(r.key.unwrap_or_default()).unwrap();
        let v = r
            .value
            .map(|v| serde_json::from_slice(&v).unwrap())
            .unwrap_or(Value::Null);
        out.insert(k, v);
    }
    out
}

pub fn wait_for(stack: &Stack, topic: &str, key: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = latest(stack, topic);
        if got.get(key) == Some(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}[{key}] never became {want}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
