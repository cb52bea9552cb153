//! Error handling per connector: `errors.tolerance`, `errors.log.enable`,
//! `errors.log.include.messages` and the sink dead letter queue
//! (`errors.deadletterqueue.topic.name`, with `__connect.errors.*` context headers).

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::api::Config;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    pub log: bool,
    pub include_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_context_headers: bool,
}

impl ErrorPolicy {
    pub fn from_config(c: &Config) -> ErrorPolicy {
        let flag = |k: &str| c.get(k).is_some_and(|v| v == "true");
        ErrorPolicy {
            tolerate_all: c.get("errors.tolerance").is_some_and(|v| v == "all"),
            log: flag("errors.log.enable"),
            include_messages: flag("errors.log.include.messages"),
            dlq_topic: c
                .get("errors.deadletterqueue.topic.name")
                .filter(|t| !t.trim().is_empty())
                .cloned(),
            dlq_context_headers: flag("errors.deadletterqueue.context.headers.enable"),
        }
    }
}

/// Where a failed record came from, for the log line and the DLQ headers.
pub struct Failure<'a> {
    pub connector: &'a str,
    pub task: usize,
    pub stage: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub error: &'a Error,
}

impl ErrorPolicy {
    /// Handles a failed record: `Ok` to skip it, `Err` to fail the task.
    pub async fn handle(&self, f: Failure<'_>, dlq: Option<&FutureProducer>) -> Result<()> {
        if !self.tolerate_all {
            return Err(Error::Task(format!(
                "Tolerance exceeded in error handler: {} failed for {}-{} offset {}: {}",
                f.stage, f.topic, f.partition, f.offset, f.error
            )));
        }
        if self.log {
            if self.include_messages {
                tracing::error!(connector = f.connector, task = f.task, stage = f.stage, topic = f.topic, partition = f.partition,
                    offset = f.offset, value = %String::from_utf8_lossy(f.value.unwrap_or_default()), error = %f.error, "record failed; skipped");
            } else {
                tracing::error!(connector = f.connector, task = f.task, stage = f.stage, topic = f.topic, partition = f.partition,
                    offset = f.offset, error = %f.error, "record failed; skipped");
            }
        }
        if let (Some(topic), Some(producer)) = (&self.dlq_topic, dlq) {
            let mut headers = OwnedHeaders::new();
            if self.dlq_context_headers {
                let (p, o, t) = (
                    f.partition.to_string(),
                    f.offset.to_string(),
                    f.task.to_string(),
                );
                let class = match f.error {
                    Error::Conversion(_) => "org.apache.kafka.connect.errors.DataException",
                    _ => "org.apache.kafka.connect.errors.ConnectException",
                };
                let message = f.error.to_string();
                for (k, v) in [
                    ("__connect.errors.topic", f.topic),
                    ("__connect.errors.partition", p.as_str()),
                    ("__connect.errors.offset", o.as_str()),
                    ("__connect.errors.connector.name", f.connector),
                    ("__connect.errors.task.id", t.as_str()),
                    ("__connect.errors.stage", f.stage),
                    ("__connect.errors.class.name", class),
                    ("__connect.errors.exception.class.name", class),
                    ("__connect.errors.exception.message", message.as_str()),
                ] {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
            }
            let mut record = FutureRecord::to(topic).headers(headers);
            if let Some(k) = f.key {
                record = record.key(k);
            }
            if let Some(v) = f.value {
                record = record.payload(v);
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| {
                    Error::Task(format!("writing to the dead letter queue {topic}: {e}"))
                })?;
        }
        Ok(())
    }
}
