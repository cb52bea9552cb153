//! `StreamsConfig`: Kafka Streams' settings, names and defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingGuarantee {
    /// Outputs and changelogs are acknowledged before input offsets are committed; a
    /// crash may repeat what came after the last commit.
    AtLeastOnce,
    /// KIP-447: one transactional producer per stream thread; outputs, changelog
    /// writes and input offsets are committed in one transaction per commit.
    ExactlyOnceV2,
}

#[derive(Debug, Clone)]
pub struct StreamsConfig {
    pub application_id: String,
    pub bootstrap_servers: String,
    pub num_stream_threads: usize,
    /// `commit.interval.ms`: 30 s, or 100 ms under exactly-once (Kafka's defaults).
    pub commit_interval: Duration,
    pub processing_guarantee: ProcessingGuarantee,
    /// `max.task.idle.ms`: how long a task waits for an input that is behind before
    /// it processes the others' records out of time order.
    pub max_task_idle: Duration,
    pub state_dir: PathBuf,
    /// `default.deserialization.exception.handler`: LogAndContinue skips bad records,
    /// LogAndFail (the default) stops.
    pub skip_bad_records: bool,
    /// Internal topics' replication factor (`replication.factor`, -1 = broker default).
    pub replication_factor: i32,
    /// `statestore.cache.max.bytes` (formerly `cache.max.bytes.buffering`): the record
    /// cache's size per task, 10 MiB by default; 0 turns caching off.
    pub cache_max_bytes: usize,
    /// Every property as given: `consumer.`/`producer.` prefixed ones reach the clients.
    pub props: BTreeMap<String, String>,
}

/// Kafka's default record cache: 10 MiB.
const DEFAULT_CACHE_BYTES: usize = 10 * 1024 * 1024;

fn parse<T: std::str::FromStr>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Error::config(key, format!("{v} is not a valid number"))),
    }
}

impl StreamsConfig {
    pub fn new(application_id: &str, bootstrap_servers: &str) -> Result<StreamsConfig> {
        let mut props = BTreeMap::new();
        props.insert("application.id".to_string(), application_id.to_string());
        props.insert(
            "bootstrap.servers".to_string(),
            bootstrap_servers.to_string(),
        );
        StreamsConfig::from_props(props)
    }

    /// Sets a property by its Kafka Streams name.
    pub fn with(self, key: &str, value: &str) -> Result<StreamsConfig> {
        let mut props = self.props;
        props.insert(key.to_string(), value.to_string());
        StreamsConfig::from_props(props)
    }

    pub fn from_props(props: BTreeMap<String, String>) -> Result<StreamsConfig> {
        let application_id = props
            .get("application.id")
            .filter(|a| !a.trim().is_empty())
            .cloned()
            .ok_or_else(|| Error::config("application.id", "is required"))?;
        if !application_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(Error::config(
                "application.id",
                format!(
                    "{application_id} may only contain ASCII letters, digits, '.', '_' and '-'"
                ),
            ));
        }
        let processing_guarantee = match props.get("processing.guarantee").map(String::as_str) {
            None | Some("at_least_once") => ProcessingGuarantee::AtLeastOnce,
            // exactly_once_beta is Kafka 2.6-2.8's name of the same protocol.
            Some("exactly_once_v2") | Some("exactly_once_beta") => {
                ProcessingGuarantee::ExactlyOnceV2
            }
            Some(other) => {
                return Err(Error::config(
                    "processing.guarantee",
                    format!(
                        "{other} is not one of at_least_once, exactly_once_v2 (exactly_once, a producer per task, was removed in Kafka 4.0)"
                    ),
                ))
            }
        };
        let default_commit_ms = match processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => 30_000u64,
            ProcessingGuarantee::ExactlyOnceV2 => 100,
        };
        let skip_bad_records = match props
            .get("default.deserialization.exception.handler")
            .map(String::as_str)
        {
            None => false,
            Some(h) if h.ends_with("LogAndFailExceptionHandler") || h == "LogAndFail" => false,
            Some(h) if h.ends_with("LogAndContinueExceptionHandler") || h == "LogAndContinue" => {
                true
            }
            Some(h) => {
                return Err(Error::config(
                    "default.deserialization.exception.handler",
                    format!(
                    "{h} is neither LogAndFailExceptionHandler nor LogAndContinueExceptionHandler"
                ),
                ))
            }
        };
        let threads: usize = parse(&props, "num.stream.threads", 1)?;
        if threads == 0 {
            return Err(Error::config("num.stream.threads", "must be at least 1"));
        }
        Ok(StreamsConfig {
            bootstrap_servers: props
                .get("bootstrap.servers")
                .cloned()
                .unwrap_or_else(|| "localhost:9092".into()),
            num_stream_threads: threads,
            commit_interval: Duration::from_millis(parse(
                &props,
                "commit.interval.ms",
                default_commit_ms,
            )?),
            processing_guarantee,
            max_task_idle: Duration::from_millis(parse(&props, "max.task.idle.ms", 500u64)?),
            state_dir: PathBuf::from(props.get("state.dir").cloned().unwrap_or_else(|| {
                std::env::temp_dir()
                    .join("kafka-streams")
                    .display()
                    .to_string()
            })),
            skip_bad_records,
            replication_factor: parse(&props, "replication.factor", -1)?,
            cache_max_bytes: match props.get("statestore.cache.max.bytes") {
                Some(_) => parse(&props, "statestore.cache.max.bytes", 0usize)?,
                None => parse(&props, "cache.max.bytes.buffering", DEFAULT_CACHE_BYTES)?,
            },
            application_id,
            props,
        })
    }

    /// A consumer that only reads assigned partitions (restore, global tables): its own
    /// group id, which librdkafka wants even so, and nothing committed.
    pub fn assign_only_consumer(&self, kind: &str) -> rdkafka::ClientConfig {
        let mut c = self.client(kind);
        c.set(
            "group.id",
            format!("{}-{}", self.application_id, kind.replace('.', "-")),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "10");
        c
    }

    pub fn exactly_once(&self) -> bool {
        self.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }

    /// The client settings for `kind` ("consumer", "producer", "admin"): bootstrap servers
    /// and the `<kind>.`-prefixed properties.
    pub fn client(&self, kind: &str) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        let prefix = format!("{kind}.");
        for (k, v) in &self.props {
            if let Some(rest) = k.strip_prefix(&prefix) {
                c.set(rest, v);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = StreamsConfig::new("wc", "localhost:9092").unwrap();
        assert_eq!(c.commit_interval, Duration::from_secs(30));
        assert_eq!(c.num_stream_threads, 1);
        let e = c
            .clone()
            .with("num.stream.threads", "two")
            .unwrap_err()
            .to_string();
        assert!(e.contains("num.stream.threads"), "{e}");
        let eos = c
            .clone()
            .with("processing.guarantee", "exactly_once_v2")
            .unwrap();
        assert_eq!(eos.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);
        assert_eq!(eos.commit_interval, Duration::from_millis(100));
        let e = c
            .clone()
            .with("processing.guarantee", "exactly_once")
            .unwrap_err()
            .to_string();
        assert!(e.contains("processing.guarantee"), "{e}");
        let e = StreamsConfig::new("bad id!", "x").unwrap_err().to_string();
        assert!(e.contains("application.id"), "{e}");
    }
}
