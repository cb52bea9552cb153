//! The broker as a whole: shared state, start-up (recovery, loading offsets), the
//! background tasks (retention, compaction, flush, group deadlines, transaction
//! timeouts) and shutdown.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{parse_properties, BrokerConfig};
use crate::durable;
use crate::error::{Error, Result};
use crate::group::{GroupCoordinator, GroupTimeouts, OffsetStore};
use crate::log::now_ms;
use crate::protocol::server;
use crate::topics::TopicRegistry;
use crate::txn::{TxnCoordinator, TxnLimits};

/// Marker left by a clean shutdown, as Kafka's `.kafka_cleanshutdown`.
const CLEAN_SHUTDOWN: &str = ".runnel_cleanshutdown";
/// Producer ids are reserved in blocks so a restart never reuses one.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Hands out producer ids, persisting the end of the reserved block.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicI64,
    block_end: Mutex<i64>,
    path: std::path::PathBuf,
}

impl ProducerIds {
    fn open(dir: &Path, at_least: i64) -> Result<ProducerIds> {
        let path = dir.join("producer-id-block");
        let stored = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let next = stored.max(at_least).max(0);
        Ok(ProducerIds {
            next: AtomicI64::new(next),
            block_end: Mutex::new(next),
            path,
        })
    }

    pub(crate) fn allocate(&self) -> Result<i64> {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let mut end = crate::sync::lock(&self.block_end);
        if id >= *end {
            let new_end = id + PRODUCER_ID_BLOCK;
            durable::write_atomic(&self.path, new_end.to_string().as_bytes())?;
            *end = new_end;
        }
        Ok(id)
    }
}

/// Everything the protocol handlers share.
#[derive(Debug)]
pub(crate) struct BrokerState {
    pub config: Arc<BrokerConfig>,
    pub topics: Arc<TopicRegistry>,
    pub groups: Arc<GroupCoordinator>,
    pub offsets: Arc<OffsetStore>,
    pub txns: Arc<TxnCoordinator>,
    pub producer_ids: ProducerIds,
    /// Woken on every append, for fetches waiting on min_bytes.
    pub appended: Notify,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub cluster_id: String,
}

/// A running broker. Dropping it does not stop it; call [`BrokerHandle::shutdown`].
pub struct BrokerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    state: Arc<BrokerState>,
}

/// Entry point for embedded use and `runnel broker`.
pub struct Broker;

fn load_cluster_id(config: &BrokerConfig) -> Result<String> {
    let path = config.data_dir.join("meta.properties");
    if let Ok(text) = fs::read_to_string(&path) {
        if let Some(id) = parse_properties(&text).get("cluster.id") {
            return Ok(id.clone());
        }
    }
    let id = if config.cluster_id.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()[..22].to_string()
    } else {
        config.cluster_id.clone()
    };
    let text = format!("version=1\ncluster.id={id}\nnode.id={}\n", config.node_id);
    durable::write_atomic(&path, text.as_bytes())?;
    Ok(id)
}

impl Broker {
    /// Opens the data directory (recovering after an unclean shutdown), binds the
    /// listener and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<BrokerHandle> {
        let config = Arc::new(config);
        durable::create_dir_all(&config.data_dir)?;
        let marker = config.data_dir.join(CLEAN_SHUTDOWN);
        let recover = !marker.exists();
        if recover {
            tracing::info!(dir = %config.data_dir.display(), "no clean-shutdown marker: checking active segments");
        }
        // Removed durably: a crash after start-up must not find a stale marker.
        durable::remove_file(&marker)?;
        let cluster_id = load_cluster_id(&config)?;
        let cfg = config.clone();
        let (topics, offsets, txns) = tokio::task::spawn_blocking(move || -> Result<_> {
            let topics = Arc::new(TopicRegistry::open(cfg.clone(), recover)?);
            let offsets = Arc::new(OffsetStore::open(
                topics.clone(),
                cfg.offsets_topic_partitions,
            )?);
            let limits = TxnLimits {
                partitions: cfg.transaction_state_partitions,
                max_timeout_ms: cfg.transaction_max_timeout_ms,
            };
            let txns = Arc::new(TxnCoordinator::open(
                topics.clone(),
                offsets.clone(),
                limits,
            )?);
            Ok((topics, offsets, txns))
        })
        .await
        .map_err(|e| Error::io("start-up", std::io::Error::other(e)))??;
        let max_pid = topics
            .all_partitions()
            .iter()
            .map(|p| p.max_producer_id())
            .max()
            .unwrap_or(-1);
        let producer_ids = ProducerIds::open(&config.data_dir.join("__meta"), max_pid + 1)?;
        let groups = GroupCoordinator::new(
            GroupTimeouts {
                initial_rebalance_delay: Duration::from_millis(
                    config.group_initial_rebalance_delay_ms,
                ),
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
            },
            Some(offsets.clone()),
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::io(config.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io(config.listen, e))?;
        let (advertised_host, advertised_port) = match &config.advertised {
            Some((h, p)) => (h.clone(), if *p == 0 { addr.port() } else { *p }),
            None if addr.ip().is_unspecified() => ("localhost".to_string(), addr.port()),
            None => (addr.ip().to_string(), addr.port()),
        };
        let state = Arc::new(BrokerState {
            config: config.clone(),
            topics,
            groups,
            offsets,
            txns,
            producer_ids,
            appended: Notify::new(),
            advertised_host,
            advertised_port: advertised_port as i32,
            cluster_id,
        });
        // Finish what a crash left between a transaction's Prepare and Complete records
        // (and abort what timed out) before any client can read the partitions.
        state.txns.expire(now_ms()).await;
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::accept_loop(
                listener,
                state.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(housekeeping(state.clone(), stop_rx.clone())),
            tokio::spawn(log_cleaner(state.clone(), stop_rx)),
        ];
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "broker started");
        Ok(BrokerHandle {
            addr,
            stop,
            tasks,
            state,
        })
    }
}

/// Periodic work: group deadlines and flush.ms every 100 ms, transaction timeouts every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`. Retention and
/// compaction run in their own task ([`log_cleaner`]) so a long pass never delays these.
async fn housekeeping(state: Arc<BrokerState>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let txn_every = state.config.transaction_abort_interval_ms as i64;
    let mut last_txn_check = now_ms();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        state.groups.tick();
        let now = now_ms();
        if now - last_txn_check >= txn_every {
            last_txn_check = now;
            if state.txns.expire(now).await > 0 {
                state.appended.notify_waiters();
            }
        }
        for log in state.topics.all_partitions() {
            if let Err(e) = log.flush_if_due(now).await {
                tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "flush failed");
            }
        }
    }
}

/// Retention and compaction every `log.retention.check.interval.ms`, on a blocking
/// thread (compaction reads and rewrites whole segments).
async fn log_cleaner(state: Arc<BrokerState>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(state.config.retention_check_interval_ms.max(100));
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let logs = state.topics.all_partitions();
        let result = tokio::task::spawn_blocking(move || {
            let now = now_ms();
            for log in logs {
                if let Err(e) = log.apply_retention(now) {
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "retention failed");
                }
                if let Err(e) = log.compact(now, false) {
                    tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "compaction failed");
                }
            }
        })
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "log cleaner task failed");
        }
    }
}

impl BrokerHandle {
    #[cfg(test)]
    pub(crate) fn state(&self) -> Arc<BrokerState> {
        self.state.clone()
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` for clients' `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!(
            "{}:{}",
            self.state.advertised_host, self.state.advertised_port
        )
    }

    /// Stops accepting, ends background tasks, flushes every log and leaves the
    /// clean-shutdown marker.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            for log in state.topics.all_partitions() {
                log.flush_now()?;
            }
            let marker = state.config.data_dir.join(CLEAN_SHUTDOWN);
            durable::write_atomic(&marker, b"")
        })
        .await
        .map_err(|e| Error::io("shutdown", std::io::Error::other(e)))??;
        tracing::info!("broker stopped cleanly");
        Ok(())
    }
}
