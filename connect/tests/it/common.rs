//! An in-process broker and a standalone worker on free ports.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use runnel_broker::BrokerHandle;
use runnel_connect::api::Config;
use runnel_connect::standalone::Standalone;
use runnel_connect::WorkerConfig;
use serde_json::Value;

pub async fn broker(dir: &Path) -> BrokerHandle {
    runnel_testkit::start_broker(dir, &[]).await
}

pub fn config(pairs: &[(&str, &str)]) -> Config {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn worker_config(bootstrap: &str, dir: &Path) -> WorkerConfig {
    WorkerConfig::from_props(config(&[
        ("bootstrap.servers", bootstrap),
        ("listeners", "http://127.0.0.1:0"),
        (
            "offset.storage.file.filename",
            &dir.join("connect.offsets").display().to_string(),
        ),
        ("offset.flush.interval.ms", "300"),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
    ]))
    .unwrap()
}

pub async fn standalone(
    bootstrap: &str,
    dir: &Path,
    connectors: Vec<(String, Config)>,
) -> Standalone {
    Standalone::start(worker_config(bootstrap, dir), connectors)
        .await
        .unwrap()
}

/// A standalone worker whose converters are JsonConverter with schemas (Kafka's
/// defaults), as the PostgreSQL sink needs.
pub async fn json_worker(bootstrap: &str, dir: &Path) -> Standalone {
    let mut wc = worker_config(bootstrap, dir);
    for conv in ["key.converter", "value.converter"] {
        wc.props.insert(
            conv.into(),
            "org.apache.kafka.connect.json.JsonConverter".into(),
        );
    }
    Standalone::start(wc, vec![]).await.unwrap()
}

pub use runnel_testkit::{eventually, eventually_async, settle_async};

pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(String::from).collect())
        .unwrap_or_default()
}

/// (key, value, headers) of a record.
pub type Row = (Option<String>, Option<String>, Vec<(String, String)>);

/// Every record in a topic, read from the beginning (off the async workers: it blocks).
pub async fn read_topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<Row> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic_blocking(&bs, &t, expected))
        .await
        .unwrap()
}

fn read_topic_blocking(bootstrap: &str, topic: &str, expected: usize) -> Vec<Row> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader")
        .create()
        .unwrap();
    // The topic may not exist yet: wait for it to appear.
    let md = runnel_testkit::wait_until(
        &format!("topic {topic} to exist"),
        30,
        || {
            consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .expect("metadata")
        },
        |md| !md.topics()[0].partitions().is_empty(),
    );
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < expected && Instant::now() < deadline {
        let polled = consumer.poll(Duration::from_millis(200));
        if let Some(Err(e)) = &polled {
            eprintln!("poll error: {e}");
        }
        if let Some(Ok(m)) = polled {
            let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), s(h.value).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((s(m.key()), s(m.payload()), headers));
        }
    }
    out
}

/// Creates topics up front, as a user would before pointing a sink at them.
pub async fn create_topics(bootstrap: &str, names: &[&str]) {
    for name in names {
        runnel_testkit::create_topic_async(bootstrap, name, 1, &[]).await;
    }
}

/// A client of a worker's REST API.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, body).await
    }
    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, body).await
    }
    pub async fn task_state(&self, name: &str) -> String {
        self.get(&format!("/connectors/{name}/status")).await.1["tasks"][0]["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}
