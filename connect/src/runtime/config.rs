//! The worker's config (`worker.properties`) and the keys every connector config shares,
//! with Kafka Connect's names and defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::exactly_once::SourceSupport;
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

impl WorkerConfig {
    pub fn from_props(props: Config) -> Result<WorkerConfig> {
        let bootstrap_servers = props
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_else(|| "localhost:9092".into());
        let listen = listener(
            props
                .get("listeners")
                .map(String::as_str)
                .unwrap_or("http://127.0.0.1:8083"),
        )?;
        let offset_flush_interval_ms = match props.get("offset.flush.interval.ms") {
            None => 60_000,
            Some(v) => v.trim().parse().map_err(|_| {
                Error::config("offset.flush.interval.ms", format!("{v} is not a number"))
            })?,
        };
        Ok(WorkerConfig {
            bootstrap_servers,
            listen,
            offset_storage_file: props.get("offset.storage.file.filename").map(PathBuf::from),
            offset_flush_interval_ms,
            props,
        })
    }

    /// `host:port` of the REST listener, which names this worker in statuses.
    pub fn worker_id(&self) -> String {
        self.listen.to_string()
    }
}

/// Keys every connector may set, besides its own.
const COMMON_KEYS: &[&str] = &[
    "name",
    "connector.class",
    "tasks.max",
    "key.converter",
    "value.converter",
    "header.converter",
    "transforms",
    "predicates",
    "config.action.reload",
    "errors.retry.timeout",
    "errors.retry.delay.max.ms",
    "errors.tolerance",
    "errors.log.enable",
    "errors.log.include.messages",
    "errors.deadletterqueue.topic.name",
    "errors.deadletterqueue.topic.replication.factor",
    "errors.deadletterqueue.context.headers.enable",
    "topics",
    "topics.regex",
    "exactly.once.support",
    "transaction.boundary",
    "transaction.boundary.interval.ms",
    "topic.creation.groups",
];
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
pub fn validate(config: &Config, exactly_once: SourceSupport) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let class = config
        .get("connector.class")
        .map(String::as_str)
        .unwrap_or("");
    if class.is_empty() {
        errors.push((
            "connector.class".to_string(),
            "Missing required configuration \"connector.class\" which has no default value."
                .to_string(),
        ));
        return errors;
    }
    let plugin = match connectors::find(class) {
        Ok(p) => p,
        Err(e) => {
            errors.push(("connector.class".to_string(), e.to_string()));
            return errors;
        }
    };
    for k in config.keys() {
        let known = COMMON_KEYS.contains(&k.as_str())
            || COMMON_PREFIXES.iter().any(|p| k.starts_with(p))
            || plugin.keys.contains(&k.as_str());
        if !known {
            errors.push((
                k.clone(),
                format!("unknown configuration key \"{k}\" for {}", plugin.class),
            ));
        }
    }
    if let Some(v) = config.get("tasks.max") {
        if v.trim().parse::<usize>().ok().filter(|n| *n > 0).is_none() {
            errors.push((
                "tasks.max".into(),
                format!(
                    "Invalid value {v} for configuration tasks.max: must be a positive integer"
                ),
            ));
        }
    }
    // The error handling keys are checked by the parser the tasks use.
    if let Err(e) = super::error_handling::ErrorPolicy::from_config(config) {
        errors.push(field_error(e));
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
    let connector = plugin.instantiate();
    if let connectors::Connector::Source(c) = &connector {
        errors.extend(super::exactly_once::validate(
            config,
            c.as_ref(),
            exactly_once,
        ));
    }
    let own = match &connector {
        connectors::Connector::Source(c) => c.validate(config),
        connectors::Connector::Sink(c) => c.validate(config),
    };
    if let Err(e) = own {
        errors.push(field_error(e));
    }
    for prefix in ["key.converter", "value.converter"] {
        if config.contains_key(prefix) {
            if let Err(e) = crate::converters::for_prefix(prefix, config, &Config::new()) {
                errors.push((prefix.into(), e.to_string()));
            }
        }
    }
    if let Err(e) = crate::transforms::Chain::from_config(config) {
        errors.push(("transforms".into(), e.to_string()));
    }
    errors
}

/// A config error as the field it concerns and Kafka Connect's message for it.
fn field_error(e: Error) -> (String, String) {
    match e {
        Error::Config { field, reason } => {
            let message = format!("Invalid value for configuration {field}: {reason}");
            (field, message)
        }
        Error::MissingConfig(field) => {
            let message =
                format!("Missing required configuration \"{field}\" which has no default value.");
            (field, message)
        }
        e => ("connector.class".into(), e.to_string()),
    }
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
