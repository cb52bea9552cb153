//! An in-process broker on its own runtime and a KSQL engine over it.

use std::sync::Arc;

use runnel_ksql::engine::{Engine, EngineConfig};
use runnel_testkit::TestBroker;
use serde_json::Value;

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

/// Waits until `topic`'s latest value for `key` is `want`.
pub fn wait_for(stack: &Stack, topic: &str, key: &str, want: Value) {
    let what = format!("{topic}[{key}] to become {want}");
    runnel_testkit::wait_until(
        &what,
        30,
        || latest(stack, topic),
        |got| got.get(key) == Some(&want),
    );
}

/// A record as produced: key and value, either absent.
pub type Raw = (Option<Vec<u8>>, Option<Vec<u8>>);

pub fn some(b: &[u8]) -> Option<Vec<u8>> {
    Some(b.to_vec())
}

/// Produces records as given (a missing value is a tombstone), in order.
pub fn produce(bootstrap: &str, topic: &str, records: &[Raw]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let p: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (k, v) in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = k {
            r = r.key(k.as_slice());
        }
        if let Some(v) = v {
            r = r.payload(v.as_slice());
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
    }
    p.flush(std::time::Duration::from_secs(30)).unwrap();
}
