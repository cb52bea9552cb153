//! The keys every connector config shares, as Kafka Connect's `ConnectorConfig`,
//! `SinkConnectorConfig` and `SourceConnectorConfig` define them, and the enriched
//! definition the validate endpoint shows: these, the connector's own, and each
//! configured transform's and predicate's keys under `Transforms: <alias>` /
//! `Predicates: <alias>` (Kafka's `ConnectorConfig.enrich`).

use crate::api::config_def::{key, ConfigDef, ConfigKey, Type, Validator};
use crate::api::Config;
use crate::connectors::Connector;
use crate::transforms;

pub const COMMON_GROUP: &str = "Common";
pub const TRANSFORMS_GROUP: &str = "Transforms";
pub const PREDICATES_GROUP: &str = "Predicates";
pub const ERROR_GROUP: &str = "Error Handling";

fn converter(name: &'static str, what: &'static str) -> ConfigKey {
    key(name, Type::Class, what).low()
}

/// `ConnectorConfig`'s "Common" keys.
pub fn common_keys() -> Vec<ConfigKey> {
    vec![
        // Kafka requires it; the REST API takes it from the request path when absent.
        key("name", Type::String, "Globally unique name to use for this connector.")
            .validator(Validator::NonEmpty)
            .high(),
        key(
            "connector.class",
            Type::String,
            "Name or alias of the class for this connector (FileStreamSource, io.confluent.connect.jdbc.JdbcSinkConnector, ...).",
        )
        .required()
        .high(),
        key("tasks.max", Type::Int, "Maximum number of tasks to use for this connector.")
            .default("1")
            .validator(Validator::AtLeast(1))
            .high(),
        converter(
            "key.converter",
            "Converter class for record keys; unset: the worker's key.converter.",
        ),
        converter(
            "value.converter",
            "Converter class for record values; unset: the worker's value.converter.",
        ),
        converter(
            "header.converter",
            "Converter class for record headers; unset: the worker's header.converter.",
        ),
        key(
            "config.action.reload",
            Type::String,
            "What to do when an externalized config value changes: none or restart.",
        )
        .default("restart")
        .validator(Validator::OneOf(&["none", "restart"]))
        .low(),
    ]
}

/// `ConnectorConfig`'s "Error Handling" keys, with the sink's dead letter queue.
pub fn error_handling_keys() -> Vec<ConfigKey> {
    vec![
        key(
            "errors.retry.timeout",
            Type::Long,
            "How long to retry a failed operation, in milliseconds: 0 never, -1 forever.",
        )
        .default("0"),
        key(
            "errors.retry.delay.max.ms",
            Type::Long,
            "The longest pause between retries, in milliseconds.",
        )
        .default("60000")
        .validator(Validator::AtLeast(0)),
        key(
            "errors.tolerance",
            Type::String,
            "none: an error fails the task; all: the failed record is skipped (and logged or sent to the dead letter queue).",
        )
        .default("none")
        .validator(Validator::OneOf(&["none", "all"])),
        key(
            "errors.log.enable",
            Type::Boolean,
            "Whether to log each tolerated error.",
        )
        .default("false"),
        key(
            "errors.log.include.messages",
            Type::Boolean,
            "Whether the log line includes the failed record.",
        )
        .default("false"),
        key(
            "errors.deadletterqueue.topic.name",
            Type::String,
            "Sinks: the topic that receives records that failed; empty: none.",
        )
        .default(""),
        key(
            "errors.deadletterqueue.topic.replication.factor",
            Type::Int,
            "Sinks: the replication factor of the dead letter queue topic when it is created.",
        )
        .default("3"),
        key(
            "errors.deadletterqueue.context.headers.enable",
            Type::Boolean,
            "Sinks: whether dead letter records carry __connect.errors.* headers saying what failed.",
        )
        .default("false"),
    ]
}

/// `SinkConnectorConfig`'s topic keys.
pub fn sink_topic_keys() -> Vec<ConfigKey> {
    vec![
        key(
            "topics",
            Type::List,
            "The topics to consume; excludes topics.regex.",
        )
        .default("")
        .high(),
        key(
            "topics.regex",
            Type::String,
            "A regular expression of the topics to consume; excludes topics.",
        )
        .default("")
        .high(),
    ]
}

/// `SourceConnectorConfig`'s exactly-once keys (KIP-618).
pub fn exactly_once_keys() -> Vec<ConfigKey> {
    vec![
        key(
            "exactly.once.support",
            Type::String,
            "requested: exactly once where the worker can; required: refuse the connector unless the worker and the connector support it.",
        )
        .default("requested")
        .validator(Validator::OneOf(&["requested", "required"])),
        key(
            "transaction.boundary",
            Type::String,
            "When a task commits its transaction: poll (after each poll), interval (every transaction.boundary.interval.ms) or connector.",
        )
        .default("poll")
        .validator(Validator::OneOf(&["poll", "interval", "connector"])),
        key(
            "transaction.boundary.interval.ms",
            Type::Long,
            "With transaction.boundary=interval: how often to commit; unset: the worker's offset.flush.interval.ms.",
        )
        .validator(Validator::AtLeast(0))
        .low(),
    ]
}

/// The keys every connector of this kind (`source` or `sink`) shares.
pub fn definition(kind: &str) -> ConfigDef {
    let lists = |name, what| key(name, Type::List, what).default("").low();
    let mut common = common_keys();
    common.push(lists(
        "transforms",
        "Aliases of the transformations to apply to records, in order.",
    ));
    common.push(lists(
        "predicates",
        "Aliases of the predicates transformations use.",
    ));
    if kind == "sink" {
        common.extend(sink_topic_keys());
    }
    let def = ConfigDef::new()
        .group(COMMON_GROUP, common)
        .group(ERROR_GROUP, error_handling_keys());
    if kind == "sink" {
        return def;
    }
    def.group(
        "Topic Creation",
        [key(
            "topic.creation.groups",
            Type::List,
            "Groups of settings for topics this connector creates.",
        )
        .default("")
        .low()],
    )
    .group("Exactly Once Support", exactly_once_keys())
    .group(
        "offsets.topic",
        [key(
            "offsets.storage.topic",
            Type::String,
            "Not supported: source offsets are kept in the worker's offset.storage.topic.",
        )
        .low()],
    )
}

/// Every key the validate endpoint shows for this config, by name: the shared keys,
/// the connector's own, and the keys of each transform and predicate the config
/// names (whose class is known).
pub fn enriched(config: &Config, connector: &Connector) -> Vec<(String, ConfigKey)> {
    let base = definition(connector.kind()).with(connector.config_def());
    let mut keys: Vec<(String, ConfigKey)> = base
        .keys()
        .iter()
        .map(|k| (k.name.to_string(), k.clone()))
        .collect();
    // Only the alias lists: the rest of the config may be invalid (that is what the
    // caller is showing), and a list cannot be.
    let lists = ConfigDef::new().define(
        base.keys()
            .iter()
            .filter(|k| k.name == "transforms" || k.name == "predicates")
            .cloned(),
    );
    let values = lists.parse(config).ok();
    let aliases = |list: &str| {
        values
            .as_ref()
            .map(|v| v.list(list).to_vec())
            .unwrap_or_default()
    };
    let plugins = [
        (
            "transforms",
            TRANSFORMS_GROUP,
            transforms::step_keys(),
            transforms::transform_definition as fn(&str) -> Option<ConfigDef>,
        ),
        (
            "predicates",
            PREDICATES_GROUP,
            transforms::predicate_keys(),
            transforms::predicate_definition,
        ),
    ];
    for (list, group, shared, own) in plugins {
        for alias in aliases(list) {
            let prefix = format!("{list}.{alias}.");
            let class = config.get(&format!("{prefix}type")).map(String::as_str);
            let own = class.and_then(own).unwrap_or_default();
            keys.extend(
                shared
                    .clone()
                    .with(own)
                    .prefixed(&prefix, &format!("{group}: {alias}")),
            );
        }
    }
    keys
}

/// A sink's `topics` as its definition reads them (a list and a string cannot be
/// invalid, so this cannot fail).
pub fn sink_topics(config: &Config) -> Vec<String> {
    ConfigDef::new()
        .define(sink_topic_keys())
        .parse(config)
        .map(|v| v.list("topics").to_vec())
        .unwrap_or_default()
}
