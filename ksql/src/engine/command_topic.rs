//! The command topic: every statement that changed the catalog, in order, with the
//! query id it was given. A starting engine replays it, so its streams, tables and
//! persistent queries come back (the queries resuming from their committed offsets).

use serde_json::json;

use super::{Engine, Inner, Origin};
use crate::error::{Error, Result};

#[derive(serde::Serialize, serde::Deserialize)]
struct Command {
    statement: String,
    #[serde(rename = "queryId", default, skip_serializing_if = "Option::is_none")]
    query_id: Option<String>,
    /// The Streams settings the query started with (`processing.guarantee`, ...), so it
    /// runs the same way after a restart.
    #[serde(
        rename = "streamsProperties",
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    streams_properties: std::collections::BTreeMap<String, String>,
}

impl Engine {
    pub(crate) async fn record(
        &self,
        inner: &mut Inner,
        s: &crate::parser::ast::ParsedStatement,
        query_id: Option<&str>,
        streams_properties: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        inner.sequence += 1;
        let cmd = Command {
            statement: s.text.clone(),
            query_id: query_id.map(str::to_string),
            streams_properties: streams_properties.clone(),
        };
        let value = serde_json::to_vec(&cmd).map_err(|e| Error::Engine(e.to_string()))?;
        let key = json!({"sequence": inner.sequence}).to_string();
        self.kafka
            .produce(
                &self.config.command_topic(),
                Some(key.as_bytes()),
                Some(&value),
                None,
                &[],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn replay(&self) -> Result<()> {
        let topic = self.config.command_topic();
        // One partition keeps the commands in order.
        self.kafka
            .create_topic(&topic, 1, &[("retention.ms", "-1")])
            .await?;
        let records = self.kafka.read_all(&topic).await?;
        let mut inner = self.inner.lock().await;
        for r in records {
            inner.sequence += 1;
            let Some(v) = r.value else { continue };
            let cmd: Command = match serde_json::from_slice(&v) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(
                        offset = r.offset,
                        "command topic: unreadable command skipped: {e}"
                    );
                    continue;
                }
            };
            let statements = match crate::parser::parse(&cmd.statement) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(offset = r.offset, "command topic: {e}");
                    continue;
                }
            };
            for s in statements {
                let origin = Origin {
                    query_id: cmd.query_id.clone(),
                    replay: true,
                    props: cmd.streams_properties.clone(),
                };
                if let Err(e) = self.execute_locked(&mut inner, &s, origin).await {
                    tracing::warn!(statement = %s.text, "command topic: replay failed: {e}");
                }
            }
        }
        Ok(())
    }
}
