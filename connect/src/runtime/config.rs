//! The worker's config (`worker.properties`) and the keys every connector config shares,
//! with Kafka Connect's names and defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::connector_config;
use super::exactly_once::SourceSupport;
use crate::api::config_def::{key, ConfigDef, Type, Validator};
use crate::api::Config;
use crate::connectors;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap_servers: String,
    pub listen: SocketAddr,
    pub offset_storage_file: Option<PathBuf>,
    pub offset_flush_interval_ms: u64,
    /// Every property as given (converters, producer./consumer. settings).
    pub props: Config,
}

/// Parses `listeners=http://host:port`.
fn listener(value: &str) -> Result<SocketAddr> {
    let first = value.split(',').next().unwrap_or(value).trim();
    let addr = first.strip_prefix("http://").unwrap_or(first);
    let addr = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::config("listeners", format!("{value} is not http://host:port")))
}

/// The worker keys both modes read (Kafka's `WorkerConfig`).
pub fn worker_definition() -> ConfigDef {
    ConfigDef::new().group(
        "Worker",
        [
            key(
                "bootstrap.servers",
                Type::List,
                "The Kafka cluster's brokers, host:port, comma separated.",
            )
            .default("localhost:9092")
            .high(),
            key(
                "listeners",
                Type::List,
                "Where the REST API listens, http://host:port; the first is used.",
            )
            .default("http://127.0.0.1:8083")
            .low(),
            key(
                "offset.storage.file.filename",
                Type::String,
                "Standalone mode: the file that keeps source offsets; unset: offsets live in memory.",
            )
            .default(""),
            key(
                "offset.flush.interval.ms",
                Type::Long,
                "How often tasks' offsets are committed, in milliseconds.",
            )
            .default("60000")
            .validator(Validator::AtLeast(0))
            .low(),
            key(
                "key.converter",
                Type::Class,
                "Converter class for record keys of connectors that do not set one.",
            )
            .default("org.apache.kafka.connect.json.JsonConverter")
            .high(),
            key(
                "value.converter",
                Type::Class,
                "Converter class for record values of connectors that do not set one.",
            )
            .default("org.apache.kafka.connect.json.JsonConverter")
            .high(),
        ],
    )
}

impl WorkerConfig {
    pub fn from_props(props: Config) -> Result<WorkerConfig> {
        let values = worker_definition().parse(&props)?;
        let listeners = values.list("listeners").join(",");
        Ok(WorkerConfig {
            bootstrap_servers: values.list("bootstrap.servers").join(","),
            listen: listener(&listeners)?,
            offset_storage_file: values
                .non_empty("offset.storage.file.filename")
                .map(PathBuf::from),
            offset_flush_interval_ms: values.number("offset.flush.interval.ms")?,
            props,
        })
    }

    /// `host:port` of the REST listener, which names this worker in statuses.
    pub fn worker_id(&self) -> String {
        self.listen.to_string()
    }
}

/// Prefixes under which any key is accepted: the converters' and transforms' own
/// keys (checked by their definitions) and client overrides.
const COMMON_PREFIXES: &[&str] = &[
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "transforms.",
    "predicates.",
    "producer.override.",
    "consumer.override.",
    "admin.override.",
    "topic.creation.",
];

/// Per-field problems with a connector config; empty when it is valid. `exactly_once`
/// is the worker's `exactly.once.source.support` (always disabled in standalone mode).
/// Each key is checked by its definition (the shared connector keys and the
/// connector's own), then the checks across keys run; an error found twice is listed
/// once.
pub fn validate(config: &Config, exactly_once: SourceSupport) -> Vec<(String, String)> {
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    if class.is_empty() {
        return vec![Error::MissingConfig("connector.class".into()).field_message()];
    }
    let plugin = match connectors::find(class) {
        Ok(p) => p,
        Err(e) => return vec![("connector.class".to_string(), e.to_string())],
    };
    let connector = plugin.instantiate();
    let own = connector.config_def();
    let def = connector_config::definition(plugin.kind).with(own.clone());
    let mut errors = Vec::new();
    // A source key on a sink (or the reverse) is not an error: Kafka ignores it.
    let shared = connector_config::definition("source").with(connector_config::definition("sink"));
    for k in config.keys() {
        let known = shared.find(k).is_some()
            || own.find(k).is_some()
            || COMMON_PREFIXES.iter().any(|p| k.starts_with(p));
        if !known {
            errors.push((
                k.clone(),
                format!("unknown configuration key \"{k}\" for {}", plugin.class),
            ));
        }
    }
    errors.extend(def.validate(config));
    if let Err(e) = super::error_handling::ErrorPolicy::from_config(config) {
        errors.push(e.field_message());
    }
    if plugin.kind == "sink" {
        let topics = config.get("topics").filter(|t| !t.trim().is_empty());
        let regex = config.get("topics.regex").filter(|t| !t.trim().is_empty());
        match (topics, regex) {
            (None, None) => errors.push((
                "topics".into(),
                "Must configure one of topics or topics.regex".into(),
            )),
            (Some(_), Some(_)) => errors.push((
                "topics".into(),
                "topics and topics.regex are mutually exclusive".into(),
            )),
            (None, Some(r)) => {
                if let Err(e) = regex::Regex::new(r) {
                    errors.push((
                        "topics.regex".into(),
                        format!("not a valid regular expression: {e}"),
                    ));
                }
            }
            _ => {}
        }
    }
    if config.contains_key("offsets.storage.topic") {
        errors.push((
            "offsets.storage.topic".into(),
            "Invalid value for configuration offsets.storage.topic: a connector-specific offsets topic is not supported; \
             source offsets are kept in the worker's offset.storage.topic"
                .into(),
        ));
    }
    if let connectors::Connector::Source(c) = &connector {
        errors.extend(super::exactly_once::validate(
            config,
            c.as_ref(),
            exactly_once,
        ));
    }
    let checked = match &connector {
        connectors::Connector::Source(c) => c.validate(config),
        connectors::Connector::Sink(c) => c.validate(config),
    };
    if let Err(e) = checked {
        errors.push(e.field_message());
    }
    for prefix in ["key.converter", "value.converter"] {
        if config.contains_key(prefix) {
            if let Err(e) = crate::converters::for_prefix(prefix, config, &Config::new()) {
                errors.push(match e {
                    Error::Config { ref field, .. } if field == prefix => {
                        (prefix.into(), e.to_string())
                    }
                    e => e.field_message(),
                });
            }
        }
    }
    if let Err(e) = crate::transforms::Chain::from_config(config) {
        errors.push(match e {
            Error::Config { .. } | Error::MissingConfig(_) | Error::InvalidValue { .. } => {
                e.field_message()
            }
            e => ("transforms".into(), e.to_string()),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    errors
}

/// `tasks.max`, default 1.
pub fn tasks_max(config: &Config) -> usize {
    config
        .get("tasks.max")
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Properties under `prefix`, with the prefix removed.
pub fn with_prefix(config: &Config, prefix: &str) -> Config {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}
