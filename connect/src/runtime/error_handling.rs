//! Error handling per connector: `errors.tolerance`, `errors.log.enable`,
//! `errors.log.include.messages`, the sink dead letter queue
//! (`errors.deadletterqueue.topic.name`, with `__connect.errors.*` context headers),
//! and retries of retriable failures (`errors.retry.timeout`,
//! `errors.retry.delay.max.ms`).

use std::time::Duration;

use tokio::time::Instant;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::connector_config;
use crate::api::config_def::ConfigDef;
use crate::api::Config;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct ErrorPolicy {
    pub tolerate_all: bool,
    pub log: bool,
    pub include_messages: bool,
    pub dlq_topic: Option<String>,
    pub dlq_context_headers: bool,
    /// How long a retriable failure is retried: `None` forever (-1), zero not at all.
    pub retry_timeout: Option<Duration>,
    pub retry_delay_max: Duration,
}

/// The first pause between retries; it doubles up to `errors.retry.delay.max.ms`.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(300);

/// One operation's retries.
pub struct Retries<'a> {
    policy: &'a ErrorPolicy,
    started: Instant,
    delay: Duration,
    attempts: u32,
}

impl Retries<'_> {
    /// After a retriable failure: waits before the next attempt, or gives up with an
    /// error naming the operation once `errors.retry.timeout` is spent.
    pub async fn wait(&mut self, what: &str, reason: &str) -> Result<()> {
        self.attempts += 1;
        let spent = self.started.elapsed();
        let left = match self.policy.retry_timeout {
            None => Duration::MAX,
            Some(t) => t.saturating_sub(spent),
        };
        if left.is_zero() {
            return Err(Error::Task(format!(
                "{what} failed after {} attempt(s) over {} ms (errors.retry.timeout): {reason}",
                self.attempts,
                spent.as_millis()
            )));
        }
        tracing::warn!(attempt = self.attempts, "{what} failed, retrying: {reason}");
        let pause = self.delay.min(left);
        tokio::time::sleep(pause).await;
        self.delay = (self.delay * 2).min(self.policy.retry_delay_max);
        Ok(())
    }
}

impl ErrorPolicy {
    /// The policy a connector's config asks for; a value Kafka Connect would refuse
    /// (`errors.tolerance` other than none/all, a flag that is not true/false, a
    /// retry setting that is not a number) is an error naming the key.
    pub fn from_config(c: &Config) -> Result<ErrorPolicy> {
        let v = ConfigDef::new()
            .define(connector_config::error_handling_keys())
            .parse(c)?;
        let retry_timeout_ms: i64 = v.number("errors.retry.timeout")?;
        Ok(ErrorPolicy {
            tolerate_all: v.lowercase("errors.tolerance").as_deref() == Some("all"),
            log: v.boolean("errors.log.enable"),
            include_messages: v.boolean("errors.log.include.messages"),
            dlq_topic: v
                .non_empty("errors.deadletterqueue.topic.name")
                .map(str::to_string),
            dlq_context_headers: v.boolean("errors.deadletterqueue.context.headers.enable"),
            // -1: retry forever (Kafka's errors.retry.timeout).
            retry_timeout: u64::try_from(retry_timeout_ms)
                .ok()
                .map(Duration::from_millis),
            retry_delay_max: Duration::from_millis(v.number("errors.retry.delay.max.ms")?),
        })
    }

    pub fn retries(&self) -> Retries<'_> {
        Retries {
            policy: self,
            started: Instant::now(),
            delay: FIRST_RETRY_DELAY.min(self.retry_delay_max),
            attempts: 0,
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

impl<'a> Failure<'a> {
    /// A source record its converter refused: it has no partition or offset yet.
    pub fn source_conversion(
        connector: &'a str,
        task: usize,
        topic: &'a str,
        error: &'a Error,
    ) -> Failure<'a> {
        Failure {
            connector,
            task,
            stage: "VALUE_CONVERTER",
            topic,
            partition: -1,
            offset: -1,
            key: None,
            value: None,
            error,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> ErrorPolicy {
        ErrorPolicy::from_config(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .expect("a valid policy")
    }

    #[test]
    fn values_kafka_would_refuse_are_errors_naming_the_key() {
        for (key, value) in [
            ("errors.tolerance", "some"),
            ("errors.retry.timeout", "soon"),
            ("errors.retry.delay.max.ms", "-5"),
            ("errors.log.enable", "yes"),
        ] {
            let config = [(key.to_string(), value.to_string())].into_iter().collect();
            let e = ErrorPolicy::from_config(&config).expect_err(key);
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        let forever = policy(&[("errors.retry.timeout", "-1"), ("errors.tolerance", "all")]);
        assert!(forever.tolerate_all && forever.retry_timeout.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_until_the_timeout() {
        let p = policy(&[
            ("errors.retry.timeout", "2000"),
            ("errors.retry.delay.max.ms", "500"),
        ]);
        let mut r = p.retries();
        let start = tokio::time::Instant::now();
        let mut waits = 0;
        let err = loop {
            match r.wait("put", "connection refused").await {
                Ok(()) => waits += 1,
                Err(e) => break e,
            }
        };
        // 300, then 500 (capped), 500, 500, and the last 200 ms left: then it gives up.
        assert_eq!(waits, 5);
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
        let msg = err.to_string();
        assert!(
            msg.contains("put failed after 6 attempt(s)") && msg.contains("connection refused"),
            "{msg}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_retries_by_default() {
        let p = policy(&[]);
        assert!(p.retries().wait("poll", "x").await.is_err());
        let forever = policy(&[("errors.retry.timeout", "-1")]);
        let mut r = forever.retries();
        for _ in 0..50 {
            r.wait("poll", "x").await.unwrap();
        }
    }
}
