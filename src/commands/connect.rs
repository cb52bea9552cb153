//! `runnel connect standalone worker.properties connector.json ...` and
//! `runnel connect distributed worker.properties`.

use std::path::PathBuf;

use anyhow::Context;
use runnel_connect::distributed::Distributed;
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
    /// A worker of the group `group.id`: connectors are created through the REST API of
    /// any worker and shared by all of them.
    Distributed {
        /// worker.properties (bootstrap.servers, group.id, listeners, config.storage.topic,
        /// offset.storage.topic, status.storage.topic, converters).
        worker: PathBuf,
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
        ConnectCommand::Distributed { worker } => {
            let config = standalone::load_worker_config(&worker)
                .with_context(|| format!("reading {}", worker.display()))?;
            let running = Distributed::start(config)
                .await
                .context("starting the Connect worker")?;
            println!(
                "Connect worker {}: REST API on http://{}",
                running.herder.worker_id(),
                running.rest_addr
            );
            super::broker::wait_for_signal().await?;
            running.shutdown().await;
            Ok(())
        }
    }
}
