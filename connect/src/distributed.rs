//! `runnel connect distributed worker.properties`: a worker of the group `group.id`,
//! with its REST API. Connectors are created through the REST API of any worker and
//! kept in the config topic; the group spreads them and their tasks over the workers.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::error::Result;
use crate::rest::RestServer;
use crate::runtime::group::DistributedHerder;
pub use crate::runtime::group::SHUTDOWN_TIMEOUT;
use crate::runtime::WorkerConfig;

/// A running distributed worker with its REST server.
pub struct Distributed {
    pub herder: Arc<DistributedHerder>,
    pub rest_addr: SocketAddr,
    server: RestServer,
}

impl Distributed {
    pub async fn start(config: WorkerConfig) -> Result<Distributed> {
        let (listener, config) = crate::rest::bind(config).await?;
        let rest_addr = config.listen;
        let herder = DistributedHerder::start(config).await?;
        let server = crate::rest::serve(listener, herder.clone());
        tracing::info!(%rest_addr, "distributed Connect worker started");
        Ok(Distributed {
            herder,
            rest_addr,
            server,
        })
    }

    /// Stops the REST server, stops this worker's tasks and leaves the group, so the
    /// other workers take the work over at once.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.herder.shutdown().await;
    }
}
