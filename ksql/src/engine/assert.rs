//! `ASSERT [NOT EXISTS] TOPIC` (ksqlDB 0.27+): lets a migration script wait for a topic
//! another system creates, or check one is gone, before its next statement.

use std::time::{Duration, Instant};

use super::Engine;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::parser::ast::{PropValue, Props};

/// `ksql.assert.topic.default.timeout.ms`: how long an ASSERT without TIMEOUT waits.
const DEFAULT_TIMEOUT_MS: i64 = 1_000;
const POLL: Duration = Duration::from_millis(100);

impl Engine {
    pub(super) async fn assert_topic(
        &self,
        text: &str,
        topic: &str,
        exists: bool,
        props: &Props,
        timeout_ms: Option<i64>,
    ) -> Result<Entity> {
        let mut wanted = Vec::new();
        for (name, value) in props {
            let n = match (name.as_str(), value) {
                ("PARTITIONS" | "REPLICAS", PropValue::Num(n)) => n.parse::<i32>().ok(),
                _ => None,
            };
            match n {
                Some(n) => wanted.push((name.to_ascii_lowercase(), n)),
                None => {
                    return Err(Error::semantic(format!(
                        "Cannot assert unknown topic property: {name}"
                    )))
                }
            }
        }
        let timeout = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(0) as u64;
        let deadline = Instant::now() + Duration::from_millis(timeout);
        loop {
            let shape = self.kafka().shape(topic).await?;
            let failure = match (exists, shape) {
                (true, None) => Some(format!("Topic {topic} does not exist.")),
                (true, Some((partitions, replicas))) => {
                    let mismatched: Vec<String> = wanted
                        .iter()
                        .filter_map(|(name, want)| {
                            let got = if name == "partitions" {
                                partitions
                            } else {
                                replicas
                            };
                            (got != *want)
                                .then(|| format!("For config {name}, expected {want} got {got}"))
                        })
                        .collect();
                    (!mismatched.is_empty()).then(|| {
                        format!(
                            "Mismatched configuration for topic {topic}: {}",
                            mismatched.join(", ")
                        )
                    })
                }
                (false, Some(_)) => Some(format!("Topic {topic} exists.")),
                (false, None) => None,
            };
            match failure {
                None => {
                    return Ok(Entity::AssertTopic {
                        statement_text: text.to_string(),
                        topic_name: topic.to_string(),
                        exists,
                        warnings: Vec::new(),
                    })
                }
                Some(f) if Instant::now() >= deadline => return Err(Error::semantic(f)),
                Some(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}
