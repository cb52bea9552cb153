//! Typed broker and topic configs with Apache Kafka's names and defaults.
//!
//! The broker reads a `server.properties` file; every topic config has a broker-level
//! default (`log.retention.ms` for `retention.ms`, ...) that a topic may override.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Parses Java `.properties` text (`server.properties`) as Kafka does.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    runnel_properties::parse(text).into_iter().collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Long,
    Int,
    Double,
    Bool,
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
    /// A comma-separated list of words from a fixed list.
    List(&'static [&'static str]),
}

/// One topic config: its name, the broker key that sets its default, Kafka's default.
struct TopicKey {
    name: &'static str,
    broker_key: &'static str,
    default: &'static str,
    kind: Kind,
    /// The smallest value allowed, as Kafka's `ConfigDef.Range.atLeast`.
    min: Option<i64>,
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

const TOPIC_KEYS: &[TopicKey] = &[
    TopicKey {
        name: "cleanup.policy",
        broker_key: "log.cleanup.policy",
        default: "delete",
        kind: Kind::List(&["delete", "compact"]),
        min: None,
    },
    TopicKey {
        name: "compression.type",
        broker_key: "compression.type",
        default: "producer",
        kind: Kind::Choice(COMPRESSION),
        min: None,
    },
    TopicKey {
        name: "delete.retention.ms",
        broker_key: "log.cleaner.delete.retention.ms",
        default: "86400000",
        kind: Kind::Long,
        min: Some(0),
    },
    TopicKey {
        name: "file.delete.delay.ms",
        broker_key: "log.segment.delete.delay.ms",
        default: "60000",
        kind: Kind::Long,
        min: Some(0),
    },
    TopicKey {
        name: "flush.messages",
        broker_key: "log.flush.interval.messages",
        default: LONG_MAX,
        kind: Kind::Long,
        min: Some(1),
    },
    TopicKey {
        name: "flush.ms",
        broker_key: "log.flush.interval.ms",
        default: LONG_MAX,
        kind: Kind::Long,
        min: Some(0),
    },
    TopicKey {
        name: "index.interval.bytes",
        broker_key: "log.index.interval.bytes",
        default: "4096",
        kind: Kind::Int,
        min: Some(0),
    },
    TopicKey {
        name: "max.compaction.lag.ms",
        broker_key: "log.cleaner.max.compaction.lag.ms",
        default: LONG_MAX,
        kind: Kind::Long,
        min: Some(1),
    },
    TopicKey {
        name: "max.message.bytes",
        broker_key: "message.max.bytes",
        default: "1048588",
        kind: Kind::Int,
        min: Some(0),
    },
    TopicKey {
        name: "message.timestamp.type",
        broker_key: "log.message.timestamp.type",
        default: "CreateTime",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
        min: None,
    },
    TopicKey {
        name: "min.cleanable.dirty.ratio",
        broker_key: "log.cleaner.min.cleanable.ratio",
        default: "0.5",
        kind: Kind::Double,
        min: None,
    },
    TopicKey {
        name: "min.compaction.lag.ms",
        broker_key: "log.cleaner.min.compaction.lag.ms",
        default: "0",
        kind: Kind::Long,
        min: Some(0),
    },
    TopicKey {
        name: "min.insync.replicas",
        broker_key: "min.insync.replicas",
        default: "1",
        kind: Kind::Int,
        min: Some(1),
    },
    TopicKey {
        name: "preallocate",
        broker_key: "log.preallocate",
        default: "false",
        kind: Kind::Bool,
        min: None,
    },
    TopicKey {
        name: "retention.bytes",
        broker_key: "log.retention.bytes",
        default: "-1",
        kind: Kind::Long,
        min: None,
    },
    TopicKey {
        name: "retention.ms",
        broker_key: "log.retention.ms",
        default: "604800000",
        kind: Kind::Long,
        min: Some(-1),
    },
    TopicKey {
        name: "segment.bytes",
        broker_key: "log.segment.bytes",
        default: "1073741824",
        kind: Kind::Int,
        min: Some(14),
    },
    TopicKey {
        name: "segment.index.bytes",
        broker_key: "log.index.size.max.bytes",
        default: "10485760",
        kind: Kind::Int,
        min: Some(4),
    },
    TopicKey {
        name: "segment.jitter.ms",
        broker_key: "log.roll.jitter.ms",
        default: "0",
        kind: Kind::Long,
        min: Some(0),
    },
    TopicKey {
        name: "segment.ms",
        broker_key: "log.roll.ms",
        default: "604800000",
        kind: Kind::Long,
        min: Some(1),
    },
    TopicKey {
        name: "unclean.leader.election.enable",
        broker_key: "unclean.leader.election.enable",
        default: "false",
        kind: Kind::Bool,
        min: None,
    },
];

fn validate(key: &TopicKey, value: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidConfig {
        key: key.name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match key.kind {
        Kind::Long | Kind::Int => {
            let n = if key.kind == Kind::Int {
                value.parse::<i32>().map(i64::from).map_err(|_| {
                    bad("not a 32-bit integer (Kafka's INT type; at most 2147483647)")
                })?
            } else {
                value
                    .parse::<i64>()
                    .map_err(|_| bad("not a 64-bit integer"))?
            };
            match key.min {
                Some(min) if n < min => Err(bad(&format!("Value must be at least {min}"))),
                _ => Ok(()),
            }
        }
        Kind::Double => match value.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(()),
            Ok(_) => Err(bad("Value must be between 0 and 1")),
            Err(_) => Err(bad("not a number")),
        },
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("expected true or false")),
        },
        Kind::Choice(words) => {
            if words.contains(&value) {
                Ok(())
            } else {
                Err(bad(&format!("expected one of {}", words.join(", "))))
            }
        }
        Kind::List(words) => {
            if value.split(',').map(str::trim).all(|w| words.contains(&w)) {
                Ok(())
            } else {
                Err(bad(&format!("expected a list of {}", words.join(", "))))
            }
        }
    }
}

/// Where a config value came from, with DescribeConfigs' source numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicConfig = 1,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

/// One row of DescribeConfigs.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub sensitive: bool,
}

/// A topic's effective configs: the broker's defaults with the topic's overrides on top.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub compact: bool,
    pub delete: bool,
    pub delete_retention_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    pub log_append_time: bool,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: u64,
    pub segment_ms: i64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        // Kafka's defaults are valid by construction.
        TopicConfig::resolve(&BTreeMap::new(), &BTreeMap::new()).expect("Kafka defaults parse")
    }
}

impl TopicConfig {
    /// Checks topic overrides: known keys, values of the right type.
    pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<()> {
        for (k, v) in overrides {
            let key = TOPIC_KEYS
                .iter()
                .find(|t| t.name == k)
                .ok_or_else(|| Error::UnknownConfig(k.clone()))?;
            validate(key, v)?;
        }
        Ok(())
    }

    /// Every topic config with its value and where it came from.
    pub fn describe(
        broker: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<ConfigEntry> {
        TOPIC_KEYS
            .iter()
            .map(|k| {
                let (value, source) = if let Some(v) = overrides.get(k.name) {
                    (v.clone(), ConfigSource::TopicConfig)
                } else if let Some(v) = broker_value(broker, k) {
                    (v, ConfigSource::StaticBrokerConfig)
                } else {
                    (k.default.to_string(), ConfigSource::DefaultConfig)
                };
                ConfigEntry {
                    name: k.name.to_string(),
                    value,
                    source,
                    sensitive: false,
                }
            })
            .collect()
    }

    /// Resolves the effective config from broker properties and topic overrides.
    pub fn resolve(
        broker: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig> {
        let entries = Self::describe(broker, overrides);
        let get = |name: &str| -> &str {
            entries
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.value.as_str())
                .unwrap_or("")
        };
        for e in &entries {
            if let Some(k) = TOPIC_KEYS.iter().find(|k| k.name == e.name) {
                validate(k, &e.value)?;
            }
        }
        // Validated above, so these parses succeed; default to 0 rather than panic.
        let long = |n: &str| get(n).parse::<i64>().unwrap_or(0);
        let policy = get("cleanup.policy");
        Ok(TopicConfig {
            compact: policy.contains("compact"),
            delete: policy.contains("delete"),
            delete_retention_ms: long("delete.retention.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: long("index.interval.bytes").max(1) as u64,
            max_message_bytes: long("max.message.bytes").max(0) as usize,
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").parse().unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes").max(HEADER_MIN) as u64,
            segment_ms: long("segment.ms"),
        })
    }
}

const HEADER_MIN: i64 = 14;

/// The broker-level value for a topic key, including Kafka's hour/minute variants.
fn broker_value(broker: &BTreeMap<String, String>, k: &TopicKey) -> Option<String> {
    if let Some(v) = broker.get(k.broker_key) {
        return Some(v.clone());
    }
    let scaled = |key: &str, factor: i64| {
        broker
            .get(key)
            .and_then(|v| v.parse::<i64>().ok())
            .map(|v| (v * factor).to_string())
    };
    match k.name {
        "retention.ms" => scaled("log.retention.minutes", 60_000)
            .or_else(|| scaled("log.retention.hours", 3_600_000)),
        "segment.ms" => scaled("log.roll.hours", 3_600_000),
        _ => None,
    }
}

/// The broker's own config (`server.properties`).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to; defaults to the bound address.
    pub advertised: Option<(String, u16)>,
    pub data_dir: PathBuf,
    pub cluster_id: String,
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub socket_request_max_bytes: usize,
    /// Bytes of requests being read or handled across all connections
    /// (`queued.max.request.bytes`; Kafka's default -1 means unbounded, Runnel's default
    /// is twice `socket.request.max.bytes` so many connections cannot take all memory).
    pub queued_max_request_bytes: Option<usize>,
    /// `max.connections`: above it new connections wait to be accepted.
    pub max_connections: usize,
    /// `max.connections.per.ip`: above it a new connection from that address is closed.
    pub max_connections_per_ip: usize,
    pub retention_check_interval_ms: u64,
    pub offsets_topic_partitions: i32,
    /// `transaction.state.log.num.partitions`
    pub transaction_state_partitions: i32,
    /// `transaction.max.timeout.ms`: the longest timeout a transactional producer may ask.
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    pub transaction_abort_interval_ms: u64,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// Every property as given, for topic defaults.
    pub properties: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        // An empty property set takes every default, which parses.
        BrokerConfig::from_properties(BTreeMap::new()).expect("defaults parse")
    }
}

/// Strips `PLAINTEXT://` and picks the first listener of a comma-separated list.
fn listener_host_port(value: &str) -> Option<(String, u16)> {
    let first = value.split(',').next()?.trim();
    let addr = first.rsplit_once("://").map(|(_, a)| a).unwrap_or(first);
    let (host, port) = addr.rsplit_once(':')?;
    Some((
        host.trim_matches(['[', ']']).to_string(),
        port.parse().ok()?,
    ))
}

impl BrokerConfig {
    /// Reads a `server.properties` file.
    pub fn load(path: &Path) -> Result<BrokerConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
        Self::from_properties(parse_properties(&text))
    }

    pub fn from_properties(props: BTreeMap<String, String>) -> Result<BrokerConfig> {
        fn num<T: std::str::FromStr>(
            props: &BTreeMap<String, String>,
            key: &str,
            default: T,
        ) -> Result<T> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| Error::InvalidConfig {
                    key: key.to_string(),
                    value: v.clone(),
                    reason: "not a number".into(),
                }),
            }
        }
        /// A count with Kafka's default Int.MAX (unbounded) that must be at least 1.
        fn positive(props: &BTreeMap<String, String>, key: &str) -> Result<usize> {
            let n: i32 = num(props, key, i32::MAX)?;
            if n < 1 {
                return Err(Error::InvalidConfig {
                    key: key.to_string(),
                    value: n.to_string(),
                    reason: "Value must be at least 1".into(),
                });
            }
            Ok(n as usize)
        }
        let listen = match props.get("listeners") {
            None => SocketAddr::from(([127, 0, 0, 1], 9092)),
            Some(v) => {
                let (host, port) = listener_host_port(v).ok_or_else(|| Error::InvalidConfig {
                    key: "listeners".into(),
                    value: v.clone(),
                    reason: "expected PLAINTEXT://host:port".into(),
                })?;
                let host = if host.is_empty() {
                    "0.0.0.0".to_string()
                } else {
                    host
                };
                format!("{host}:{port}").parse().or_else(|_| {
                    std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| Error::InvalidConfig {
                            key: "listeners".into(),
                            value: v.clone(),
                            reason: "host does not resolve".into(),
                        })
                })?
            }
        };
        let advertised = props
            .get("advertised.listeners")
            .and_then(|v| listener_host_port(v));
        let data_dir = props
            .get("log.dirs")
            .or_else(|| props.get("log.dir"))
            .map(|v| PathBuf::from(v.split(',').next().unwrap_or(v).trim()))
            .unwrap_or_else(|| PathBuf::from("/tmp/runnel-logs"));
        let bool_of =
            |key: &str, default: bool| props.get(key).map(|v| v == "true").unwrap_or(default);
        let node_id = match props.get("node.id") {
            Some(_) => num(&props, "node.id", 1)?,
            None => num(&props, "broker.id", 1)?,
        };
        let config = BrokerConfig {
            node_id,
            listen,
            advertised,
            data_dir,
            cluster_id: props.get("cluster.id").cloned().unwrap_or_default(),
            auto_create_topics: bool_of("auto.create.topics.enable", true),
            num_partitions: num(&props, "num.partitions", 1)?,
            socket_request_max_bytes: num(&props, "socket.request.max.bytes", 104_857_600)?,
            queued_max_request_bytes: None,
            max_connections: positive(&props, "max.connections")?,
            max_connections_per_ip: positive(&props, "max.connections.per.ip")?,
            retention_check_interval_ms: num(&props, "log.retention.check.interval.ms", 300_000)?,
            offsets_topic_partitions: num(&props, "offsets.topic.num.partitions", 50)?,
            transaction_state_partitions: num(&props, "transaction.state.log.num.partitions", 50)?,
            transaction_max_timeout_ms: num(&props, "transaction.max.timeout.ms", 900_000)?,
            transaction_abort_interval_ms: num(
                &props,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            )?,
            group_initial_rebalance_delay_ms: num(
                &props,
                "group.initial.rebalance.delay.ms",
                3000,
            )?,
            group_min_session_timeout_ms: num(&props, "group.min.session.timeout.ms", 6000)?,
            group_max_session_timeout_ms: num(&props, "group.max.session.timeout.ms", 1_800_000)?,
            properties: props,
        };
        let mut config = config;
        let queued: i64 = num(
            &config.properties,
            "queued.max.request.bytes",
            2 * config.socket_request_max_bytes as i64,
        )?;
        config.queued_max_request_bytes = match queued {
            -1 => None,
            q if q >= config.socket_request_max_bytes as i64 => Some(q as usize),
            q => {
                return Err(Error::InvalidConfig {
                    key: "queued.max.request.bytes".into(),
                    value: q.to_string(),
                    reason: format!(
                        "must be -1 or at least socket.request.max.bytes ({})",
                        config.socket_request_max_bytes
                    ),
                })
            }
        };
        // Topic defaults given at broker level must be valid too.
        TopicConfig::resolve(&config.properties, &BTreeMap::new())?;
        Ok(config)
    }

    /// Sets one property (as a command-line override would) and re-derives the config.
    pub fn with_property(self, key: &str, value: impl Into<String>) -> Result<BrokerConfig> {
        let mut props = self.properties;
        props.insert(key.to_string(), value.into());
        Self::from_properties(props)
    }

    pub fn topic_config(&self, overrides: &BTreeMap<String, String>) -> Result<TopicConfig> {
        TopicConfig::resolve(&self.properties, overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_defaults() {
        let props = parse_properties(
            "# comment\nlisteners=PLAINTEXT://127.0.0.1:19092\nlog.dirs=/tmp/x\nlog.retention.hours=1\nnum.partitions: 3\n",
        );
        let c = BrokerConfig::from_properties(props).unwrap();
        assert_eq!(c.listen.port(), 19092);
        assert_eq!(c.num_partitions, 3);
        let t = c.topic_config(&BTreeMap::new()).unwrap();
        assert_eq!(t.retention_ms, 3_600_000);
        assert_eq!(t.max_message_bytes, 1_048_588);
        assert_eq!(t.segment_bytes, 1 << 30);
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "soon".to_string());
        let err = TopicConfig::validate_overrides(&o).unwrap_err().to_string();
        assert!(err.contains("retention.ms=soon"), "{err}");
        o.clear();
        o.insert("no.such.key".to_string(), "1".to_string());
        assert!(TopicConfig::validate_overrides(&o).is_err());
        o.clear();
        o.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        TopicConfig::validate_overrides(&o).unwrap();
    }

    #[test]
    fn describe_marks_sources() {
        let mut broker = BTreeMap::new();
        broker.insert("log.segment.bytes".to_string(), "1000000".to_string());
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "5".to_string());
        let d = TopicConfig::describe(&broker, &o);
        let find = |n: &str| d.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(find("retention.ms").source, ConfigSource::TopicConfig);
        assert_eq!(
            find("segment.bytes").source,
            ConfigSource::StaticBrokerConfig
        );
        assert_eq!(find("cleanup.policy").source, ConfigSource::DefaultConfig);
    }

    #[test]
    fn segment_bytes_is_bounded_as_kafka_bounds_it() {
        // Kafka: segment.bytes is an INT, atLeast(LegacyRecord.RECORD_OVERHEAD_V0 = 14);
        // above 2^31-1 the u32 positions of the offset index would wrap.
        let set = |v: &str| {
            let mut o = BTreeMap::new();
            o.insert("segment.bytes".to_string(), v.to_string());
            TopicConfig::validate_overrides(&o)
        };
        for bad in ["3000000000", "2147483648", "-1", "13"] {
            let e = set(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidConfig { .. }), "{bad}: {e}");
        }
        assert!(set("13").unwrap_err().to_string().contains("at least 14"));
        set("14").unwrap();
        set("2147483647").unwrap();
        let broker = BrokerConfig::default().with_property("log.segment.bytes", "4294967296");
        assert!(broker.is_err(), "the broker-level default is checked too");
        let mut o = BTreeMap::new();
        o.insert("min.cleanable.dirty.ratio".to_string(), "1.5".to_string());
        assert!(TopicConfig::validate_overrides(&o).is_err());
    }
}
