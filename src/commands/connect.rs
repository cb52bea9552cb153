//! `runnel connect standalone worker.properties connector.json ...`.

use std::path::PathBuf;

use anyhow::Context;
use runnel_connect::standalone::{self, Standalone};

#[derive(clap::Subcommand)]
pub enum ConnectCommand {
    /// One worker with its REST API, running the connectors in the given files
    /// (JSON with name and config, or .properties).
    Standalone {
        /// worker.properties (bootstrap.servers, listeners, offset.storage.file.filename, converters).
        worker: PathBuf,
        connectors: Vec<PathBuf>,
    },
}

pub async fn run(cmd: ConnectCommand) -> anyhow::Result<()> {
    match cmd {
        ConnectCommand::Standalone { worker, connectors } => {
            let config = standalone::load_worker_config(&worker)
                .with_context(|| format!("reading {}", worker.display()))?;
            let mut list = Vec::new();
            for c in &connectors {
                list.push(
                    standalone::load_connector(c)
                        .with_context(|| format!("reading {}", c.display()))?,
                );
            }
            let running = Standalone::start(config, list)
                .await
                .context("starting the Connect worker")?;
            println!("Connect worker: REST API on http://{}", running.rest_addr);
            super::broker::wait_for_signal().await?;
            running.shutdown().await;
            Ok(())
        }
    }
}
