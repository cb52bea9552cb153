//! Exactly-once source support (KIP-618): the worker's `exactly.once.source.support`,
//! a connector's `exactly.once.support` and `transaction.boundary` with Kafka's
//! preflight checks, the source tasks' transactional ids, and zombie fencing.
//!
//! With support enabled, each source task produces through a transactional producer
//! whose id is `<group.id>-<connector>-<task>`, and writes its records and their source
//! offsets in one transaction ([`super::source_transactional`]). Before a new set of task
//! configs runs, the connector's owner fences every transactional id of the previous set
//! (an InitProducerId bumps its epoch and aborts what it left open) and records the new
//! task count in the config topic; tasks start only after that record.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use super::connector_config;
use crate::api::config_def::{key, ConfigDef, ConfigKey, ConfigValue, Type, Validator, Values};
use crate::api::{Config, ExactlyOnceSupport, SourceConnector};
use crate::error::{Error, Result};

/// The worker setting `exactly.once.source.support` (distributed mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceSupport {
    /// Source tasks deliver at least once (Kafka's default).
    #[default]
    Disabled,
    /// The rolling-upgrade step: the worker fences zombies and records task counts, but
    /// its tasks are not transactional yet.
    Preparing,
    /// Source tasks write records and offsets in transactions.
    Enabled,
}

pub const SOURCE_SUPPORT: &str = "exactly.once.source.support";
pub const SUPPORT_LEVEL: &str = "exactly.once.support";
pub const TRANSACTION_BOUNDARY: &str = "transaction.boundary";
pub const TRANSACTION_BOUNDARY_INTERVAL: &str = "transaction.boundary.interval.ms";

/// The worker key `exactly.once.source.support`.
pub fn source_support_key() -> ConfigKey {
    key(
        SOURCE_SUPPORT,
        Type::String,
        "Distributed mode: whether source tasks write records and offsets in transactions (enabled), only fence zombies (preparing, the rolling-upgrade step) or neither (disabled).",
    )
    .default("disabled")
    .validator(Validator::OneOf(&["disabled", "enabled", "preparing"]))
    .high()
}

/// These exactly-once keys of a source connector config.
fn connector_values(config: &Config, names: &[&str]) -> Result<Values> {
    ConfigDef::new()
        .define(
            connector_config::exactly_once_keys()
                .into_iter()
                .filter(|k| names.contains(&k.name)),
        )
        .parse(config)
}

impl SourceSupport {
    pub fn from_props(props: &Config) -> Result<SourceSupport> {
        let v = ConfigDef::new()
            .define([source_support_key()])
            .parse(props)?;
        Ok(match v.lowercase(SOURCE_SUPPORT).as_deref() {
            Some("preparing") => SourceSupport::Preparing,
            Some("enabled") => SourceSupport::Enabled,
            _ => SourceSupport::Disabled,
        })
    }

    /// Whether this worker fences zombies and writes task-count records.
    pub fn fences(self) -> bool {
        self != SourceSupport::Disabled
    }
}

/// A connector's `exactly.once.support`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupportLevel {
    /// Run exactly once where the worker can; no preflight check (the default).
    Requested,
    /// Refuse the connector unless the worker and the connector both support it.
    Required,
}

impl SupportLevel {
    pub fn from_config(config: &Config) -> Result<SupportLevel> {
        Ok(
            match connector_values(config, &[SUPPORT_LEVEL])?
                .lowercase(SUPPORT_LEVEL)
                .as_deref()
            {
                Some("required") => SupportLevel::Required,
                _ => SupportLevel::Requested,
            },
        )
    }
}

/// A connector's `transaction.boundary`: when a task commits its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBoundary {
    /// After the records of each poll (the default).
    Poll,
    /// Every `transaction.boundary.interval.ms` (default: the worker's
    /// `offset.flush.interval.ms`).
    Interval(Duration),
    /// Where the connector says; no built-in connector defines boundaries.
    Connector,
}

impl TransactionBoundary {
    pub fn from_config(config: &Config, offset_flush_interval_ms: u64) -> Result<Self> {
        let v = connector_values(
            config,
            &[TRANSACTION_BOUNDARY, TRANSACTION_BOUNDARY_INTERVAL],
        )?;
        let interval = match v.get(TRANSACTION_BOUNDARY_INTERVAL) {
            ConfigValue::Null => offset_flush_interval_ms,
            _ => v.number(TRANSACTION_BOUNDARY_INTERVAL)?,
        };
        Ok(match v.lowercase(TRANSACTION_BOUNDARY).as_deref() {
            Some("interval") => TransactionBoundary::Interval(Duration::from_millis(interval)),
            Some("connector") => TransactionBoundary::Connector,
            _ => TransactionBoundary::Poll,
        })
    }
}

/// Kafka's preflight checks of a source connector's exactly-once settings
/// (DistributedHerder.validateSourceConnectorExactlyOnceSupport and
/// validateSourceConnectorTransactionBoundary), with Kafka's messages.
pub fn validate(
    config: &Config,
    connector: &dyn SourceConnector,
    worker: SourceSupport,
) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut push = |key: &str, message: &str| errors.push((key.to_string(), message.to_string()));
    match SupportLevel::from_config(config) {
        Err(e) => {
            let (field, message) = e.field_message();
            push(&field, &message)
        }
        Ok(SupportLevel::Requested) => {}
        Ok(SupportLevel::Required) => {
            if worker != SourceSupport::Enabled {
                push(
                    SUPPORT_LEVEL,
                    "This worker does not have exactly-once source support enabled.",
                );
            }
            match connector.exactly_once_support(config) {
                Some(ExactlyOnceSupport::Supported) => {}
                Some(ExactlyOnceSupport::Unsupported) => push(
                    SUPPORT_LEVEL,
                    "The connector does not support exactly-once semantics with the provided configuration.",
                ),
                None => push(
                    SUPPORT_LEVEL,
                    "The connector does not implement the API required for preflight validation of exactly-once source support. \
                     Please consult the documentation for the connector to determine whether it supports exactly-once semantics, \
                     and then consider reconfiguring the connector to use the value \"requested\" for this property \
                     (which will disable this preflight check and allow the connector to be created).",
                ),
            }
        }
    }
    match TransactionBoundary::from_config(config, 0) {
        Err(e) => {
            let (field, message) = e.field_message();
            push(&field, &message)
        }
        Ok(TransactionBoundary::Connector) => push(
            TRANSACTION_BOUNDARY,
            "The connector does not support connector-defined transaction boundaries with the given configuration. \
             Please reconfigure it to use a different transaction boundary definition.",
        ),
        Ok(_) => {}
    }
    errors
}

/// The transactional id of a source task (Kafka's `taskTransactionalId`).
pub fn transactional_id(group_id: &str, connector: &str, task: usize) -> String {
    format!("{group_id}-{connector}-{task}")
}

/// How long fencing one transactional id may take.
const FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Fences the producers of these transactional ids (Kafka's `Admin.fenceProducers`): an
/// InitProducerId for each bumps its epoch, so a zombie still holding the old epoch can
/// neither write nor commit, and aborts whatever transaction it left open.
pub async fn fence_producers(client: rdkafka::ClientConfig, ids: Vec<String>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || -> Result<()> {
        for id in ids {
            let producer: BaseProducer = client
                .clone()
                .set("transactional.id", &id)
                .set("enable.idempotence", "true")
                .create()?;
            producer.init_transactions(FENCE_TIMEOUT).map_err(|e| {
                Error::Task(format!(
                    "fencing out the producer with transactional id {id} failed: {e}"
                ))
            })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::file::FileStreamSourceConnector;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_parse_case_insensitively_with_kafkas_defaults() {
        assert_eq!(
            SourceSupport::from_props(&cfg(&[])).unwrap(),
            SourceSupport::Disabled
        );
        assert_eq!(
            SourceSupport::from_props(&cfg(&[(SOURCE_SUPPORT, "ENABLED")])).unwrap(),
            SourceSupport::Enabled
        );
        let e = SourceSupport::from_props(&cfg(&[(SOURCE_SUPPORT, "on")])).unwrap_err();
        assert!(e.to_string().contains("Invalid value on"), "{e}");
        assert_eq!(
            TransactionBoundary::from_config(&cfg(&[]), 60_000).unwrap(),
            TransactionBoundary::Poll
        );
        assert_eq!(
            TransactionBoundary::from_config(&cfg(&[(TRANSACTION_BOUNDARY, "Interval")]), 7)
                .unwrap(),
            TransactionBoundary::Interval(Duration::from_millis(7))
        );
        assert_eq!(
            TransactionBoundary::from_config(
                &cfg(&[
                    (TRANSACTION_BOUNDARY, "interval"),
                    (TRANSACTION_BOUNDARY_INTERVAL, "250")
                ]),
                7
            )
            .unwrap(),
            TransactionBoundary::Interval(Duration::from_millis(250))
        );
    }

    #[test]
    fn preflight_checks_use_kafkas_messages() {
        let file = FileStreamSourceConnector;
        let required = cfg(&[(SUPPORT_LEVEL, "required"), ("topic", "t")]);
        assert!(validate(&required, &file, SourceSupport::Enabled).is_empty());
        let errors = validate(&required, &file, SourceSupport::Disabled);
        assert_eq!(
            errors,
            vec![(
                SUPPORT_LEVEL.to_string(),
                "This worker does not have exactly-once source support enabled.".to_string()
            )]
        );
        let errors = validate(
            &cfg(&[(TRANSACTION_BOUNDARY, "connector")]),
            &file,
            SourceSupport::Enabled,
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.starts_with(
            "The connector does not support connector-defined transaction boundaries"
        ));
        let errors = validate(
            &cfg(&[
                (SUPPORT_LEVEL, "always"),
                (TRANSACTION_BOUNDARY_INTERVAL, "-1"),
            ]),
            &file,
            SourceSupport::Enabled,
        );
        let keys: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec![SUPPORT_LEVEL, TRANSACTION_BOUNDARY_INTERVAL]);
    }

    #[test]
    fn transactional_ids_follow_kafka() {
        assert_eq!(
            transactional_id("connect-cluster", "my-source", 3),
            "connect-cluster-my-source-3"
        );
    }
}
