//! Standalone mode: one worker, its REST API, connectors from files (JSON with `name`
//! and `config`, a flat JSON object, or `.properties`), offsets in a local file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::api::Config;
use crate::error::{Error, Result};
use crate::rest::RestServer;
use crate::runtime::{Worker, WorkerConfig};

/// Parses Java `.properties` text (a worker's or a connector's file) as Kafka does.
pub fn parse_properties(text: &str) -> Config {
    runnel_properties::parse(text).into_iter().collect()
}

pub fn load_worker_config(path: &Path) -> Result<WorkerConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
    WorkerConfig::from_props(parse_properties(&text))
}

/// A connector file: returns its name and config.
pub fn load_connector(path: &Path) -> Result<(String, Config)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
    let config: Config = if path.extension().is_some_and(|e| e == "json") {
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::config("file", format!("{} is not valid JSON: {e}", path.display()))
        })?;
        let obj = doc.get("config").unwrap_or(&doc);
        let mut c = Config::new();
        for (k, v) in obj.as_object().ok_or_else(|| {
            Error::config(
                "file",
                format!("{}: expected a JSON object", path.display()),
            )
        })? {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            c.insert(k.clone(), v);
        }
        if let Some(n) = doc.get("name").and_then(|n| n.as_str()) {
            c.insert("name".into(), n.to_string());
        }
        c
    } else {
        parse_properties(&text)
    };
    let name = config
        .get("name")
        .cloned()
        .ok_or_else(|| Error::MissingConfig(format!("name (in {})", path.display())))?;
    Ok((name, config))
}

/// A running standalone worker with its REST server.
pub struct Standalone {
    pub worker: Arc<Worker>,
    pub rest_addr: SocketAddr,
    server: RestServer,
}

impl Standalone {
    pub async fn start(
        config: WorkerConfig,
        connectors: Vec<(String, Config)>,
    ) -> Result<Standalone> {
        let (listener, config) = crate::rest::bind(config).await?;
        let rest_addr = config.listen;
        use crate::runtime::exactly_once::{SourceSupport, SOURCE_SUPPORT};
        if SourceSupport::from_props(&config.props)? != SourceSupport::Disabled {
            // As in Kafka Connect: a distributed worker's setting.
            tracing::warn!("{SOURCE_SUPPORT} applies to distributed workers only; standalone source tasks deliver at least once");
        }
        let worker = Worker::new(config)?;
        for (name, c) in connectors {
            worker.create(&name, c).await?;
        }
        let server = crate::rest::serve(listener, worker.clone());
        tracing::info!(%rest_addr, "Connect worker started");
        Ok(Standalone {
            worker,
            rest_addr,
            server,
        })
    }

    /// Stops the REST server and every connector; sinks flush and commit, sources commit.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.worker.shutdown().await;
    }
}
