//! The transaction coordinator (KIP-98, KIP-447): the state of every transactional id,
//! written to `__transaction_state` (fsynced before a client is answered) and read
//! back at start-up; the COMMIT/ABORT markers written to every partition of a
//! transaction (fsynced before the client hears the outcome); epoch bumps that fence
//! an older producer with the same transactional id; and the abort of transactions
//! older than their timeout.
//!
//! This broker is its own single coordinator, so EndTxn writes the markers itself and
//! answers once they are durable (Kafka answers after the PrepareCommit record and
//! writes markers asynchronously; a client cannot tell the difference except that it
//! never sees CONCURRENT_TRANSACTIONS here). A crash between the two is finished at
//! start-up from the Prepare record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::metadata::{decode_key, decode_value, encode_key, encode_value, TxnMetadata, TxnState};
use crate::error::{Error, ErrorCode, Result};
use crate::group::offsets::java_hash;
use crate::group::{OffsetStore, OFFSETS_TOPIC};
use crate::log::{batch, now_ms};
use crate::topics::TopicRegistry;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// A transactional producer id's current epoch and open transaction, as Produce
/// checks them.
#[derive(Debug, Clone)]
pub struct Producing {
    pub epoch: i16,
    /// A transaction is open (partitions may be written).
    pub open: bool,
    pub partitions: HashSet<(String, i32)>,
}

impl Producing {
    fn of(m: &TxnMetadata) -> Producing {
        let open = m.state == TxnState::Ongoing;
        Producing {
            epoch: m.producer_epoch,
            open,
            partitions: if open {
                m.partitions.iter().cloned().collect()
            } else {
                HashSet::new()
            },
        }
    }
}

/// One transactional id's slot: `None` until InitProducerId wrote it.
type Slot = Arc<tokio::sync::Mutex<Option<TxnMetadata>>>;

/// Limits from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct TxnLimits {
    /// `transaction.state.log.num.partitions`
    pub partitions: i32,
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
}

#[derive(Debug)]
pub struct TxnCoordinator {
    topics: Arc<TopicRegistry>,
    offsets: Arc<OffsetStore>,
    limits: TxnLimits,
    slots: Mutex<HashMap<String, Slot>>,
    /// Producer id -> its open transaction; Produce holds the read lock while it
    /// appends transactional batches, EndTxn the write lock to close it, so no batch
    /// of a transaction lands after its marker.
    producing: RwLock<HashMap<i64, Producing>>,
}

type TxnResult<T> = std::result::Result<T, ErrorCode>;

fn storage(what: &str, e: Error) -> ErrorCode {
    tracing::error!(error = %e, "transaction coordinator could not {what}");
    ErrorCode::CoordinatorNotAvailable
}

impl TxnCoordinator {
    /// Creates `__transaction_state` if needed and reads every transactional id's
    /// last state from it. Call [`TxnCoordinator::expire`] once before serving, to
    /// finish transactions a crash left between Prepare and Complete.
    pub fn open(
        topics: Arc<TopicRegistry>,
        offsets: Arc<OffsetStore>,
        limits: TxnLimits,
    ) -> Result<TxnCoordinator> {
        let topic = match topics.get(TRANSACTION_STATE_TOPIC) {
            Some(t) => t,
            None => {
                let mut o = BTreeMap::new();
                o.insert("cleanup.policy".to_string(), "compact".to_string());
                o.insert("segment.bytes".to_string(), "104857600".to_string());
                topics.create(TRANSACTION_STATE_TOPIC, limits.partitions, o, true)?
            }
        };
        let mut last: HashMap<String, Option<TxnMetadata>> = HashMap::new();
        for log in topic.partitions() {
            let mut next = log.log_start_offset();
            while next < log.log_end_offset() {
                let read = log.read(next, 1 << 20)?;
                if read.records.is_empty() {
                    break;
                }
                let sets = RecordBatchDecoder::decode_all(&mut read.records.clone())
                    .map_err(|e| Error::CorruptBatch(format!("{TRANSACTION_STATE_TOPIC}: {e}")))?;
                for r in sets.into_iter().flat_map(|s| s.records) {
                    next = r.offset + 1;
                    if let Some(id) = r.key.and_then(decode_key) {
                        last.insert(id, r.value.and_then(decode_value));
                    }
                }
            }
        }
        let mut slots = HashMap::new();
        let mut producing = HashMap::new();
        for (id, m) in last {
            let Some(m) = m else { continue };
            producing.insert(m.producer_id, Producing::of(&m));
            slots.insert(id, Arc::new(tokio::sync::Mutex::new(Some(m))));
        }
        let open = producing.values().filter(|p| p.open).count();
        tracing::info!(
            transactional_ids = slots.len(),
            open,
            "loaded transaction state"
        );
        Ok(TxnCoordinator {
            topics,
            offsets,
            limits,
            slots: Mutex::new(slots),
            producing: RwLock::new(producing),
        })
    }

    fn slot(&self, id: &str, create: bool) -> Option<Slot> {
        let mut slots = crate::sync::lock(&self.slots);
        match slots.get(id) {
            Some(s) => Some(s.clone()),
            None if create => {
                let s: Slot = Arc::default();
                slots.insert(id.to_string(), s.clone());
                Some(s)
            }
            None => None,
        }
    }

    /// The read side of the open-transaction table, for Produce.
    pub fn producing(&self) -> RwLockReadGuard<'_, HashMap<i64, Producing>> {
        crate::sync::read(&self.producing)
    }

    fn set_producing(&self, m: &TxnMetadata) {
        let mut map = crate::sync::write(&self.producing);
        map.insert(m.producer_id, Producing::of(m));
    }

    fn partition_for(&self, id: &str) -> i32 {
        (java_hash(id) & 0x7fff_ffff) % self.limits.partitions.max(1)
    }

    /// Writes the id's state to `__transaction_state`, fsynced when `sync`.
    async fn persist(&self, id: &str, m: &TxnMetadata, sync: bool) -> TxnResult<()> {
        let log = self
            .topics
            .partition(TRANSACTION_STATE_TOPIC, self.partition_for(id))
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let now = now_ms();
        let buf = batch::encode_plain(
            [(Some(encode_key(id)), Some(encode_value(m)), now)],
            Compression::None,
        )
        .map_err(|e| storage("encode its state", e))?;
        let r = log
            .append(&buf, now)
            .map_err(|e| storage("write its state", e))?;
        if sync {
            log.sync_to(r.last_offset + 1)
                .await
                .map_err(|e| storage("fsync its state", e))?;
        }
        Ok(())
    }

    /// Checks a request's producer id and epoch against the id's state.
    fn check_producer(m: &TxnMetadata, producer_id: i64, epoch: i16) -> TxnResult<()> {
        if m.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if m.producer_epoch != epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(())
    }

    /// InitProducerId with a transactional id: the first call allocates a producer id;
    /// later ones abort whatever the previous holder left open and bump the epoch,
    /// fencing it. `given` is the caller's current (id, epoch), when it has one
    /// (KIP-360).
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        given: Option<(i64, i16)>,
        allocate: impl Fn() -> Result<i64>,
    ) -> TxnResult<(i64, i16)> {
        if timeout_ms <= 0 || timeout_ms > self.limits.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let slot = self
            .slot(id, true)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let mut guard = slot.lock().await;
        let allocate = || allocate().map_err(|e| storage("allocate a producer id", e));
        let Some(m) = guard.as_mut() else {
            let m = TxnMetadata {
                producer_id: allocate()?,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: Default::default(),
                last_update_ms: now_ms(),
                start_ms: -1,
            };
            self.persist(id, &m, true).await?;
            self.set_producing(&m);
            let out = (m.producer_id, m.producer_epoch);
            *guard = Some(m);
            return Ok(out);
        };
        if let Some((pid, epoch)) = given {
            let known = pid == m.producer_id
                && (epoch == m.producer_epoch || epoch == m.last_producer_epoch);
            if !known {
                return Err(ErrorCode::ProducerFenced);
            }
        }
        match m.state {
            TxnState::Ongoing => self.fence_and_abort(id, m).await?,
            TxnState::PrepareCommit => self.finish(id, m, true).await?,
            TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                self.finish(id, m, false).await?
            }
            _ => {}
        }
        if m.producer_epoch >= i16::MAX - 1 {
            m.producer_id = allocate()?;
            m.producer_epoch = 0;
        } else {
            m.producer_epoch += 1;
        }
        m.last_producer_epoch = -1;
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.start_ms = -1;
        m.last_update_ms = now_ms();
        self.persist(id, m, true).await?;
        self.set_producing(m);
        Ok((m.producer_id, m.producer_epoch))
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn with the group's offsets partition).
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> TxnResult<()> {
        let slot = self
            .slot(id, false)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let mut guard = slot.lock().await;
        let m = guard.as_mut().ok_or(ErrorCode::InvalidProducerIdMapping)?;
        Self::check_producer(m, producer_id, epoch)?;
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(ErrorCode::ConcurrentTransactions)
            }
            TxnState::PrepareEpochFence | TxnState::Dead => return Err(ErrorCode::InvalidTxnState),
            TxnState::Ongoing if partitions.iter().all(|p| m.partitions.contains(p)) => {
                return Ok(())
            }
            TxnState::Ongoing => {}
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                m.partitions.clear();
                m.start_ms = now_ms();
            }
        }
        m.partitions.extend(partitions);
        m.state = TxnState::Ongoing;
        m.last_update_ms = now_ms();
        // If this fails nothing was written: the next attempt writes the whole set.
        self.persist(id, m, true).await?;
        self.set_producing(m);
        Ok(())
    }

    /// TxnOffsetCommit: the offsets are written as this producer's transactional
    /// records and take effect with its COMMIT.
    pub async fn commit_offsets(
        &self,
        id: &str,
        group: &str,
        producer_id: i64,
        epoch: i16,
        commits: Vec<(String, i32, crate::group::Committed)>,
    ) -> TxnResult<()> {
        let slot = self
            .slot(id, false)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let guard = slot.lock().await;
        let m = guard.as_ref().ok_or(ErrorCode::InvalidProducerIdMapping)?;
        Self::check_producer(m, producer_id, epoch).map_err(|e| match e {
            // The group coordinator's answer to a stale epoch (Kafka's TxnOffsetCommit).
            ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
            e => e,
        })?;
        let offsets_partition = (OFFSETS_TOPIC.to_string(), self.offsets.partition_for(group));
        if m.state != TxnState::Ongoing || !m.partitions.contains(&offsets_partition) {
            return Err(ErrorCode::InvalidTxnState);
        }
        self.offsets
            .stage_txn(group, producer_id, epoch, commits)
            .map_err(|e| match e.code() {
                ErrorCode::InvalidGroupId => ErrorCode::InvalidGroupId,
                _ => storage("write transactional offsets", e),
            })
    }

    /// EndTxn: commit or abort the open transaction. A retry of a finished one
    /// succeeds; the other outcome of a finished one is INVALID_TXN_STATE.
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> TxnResult<()> {
        let slot = self
            .slot(id, false)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        let mut guard = slot.lock().await;
        let m = guard.as_mut().ok_or(ErrorCode::InvalidProducerIdMapping)?;
        Self::check_producer(m, producer_id, epoch)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => self.end(id, m, commit).await,
            (TxnState::PrepareCommit, true) => self.finish(id, m, true).await,
            (TxnState::PrepareAbort, false) => self.finish(id, m, false).await,
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// Moves an open transaction to Prepare (durably), then finishes it.
    async fn end(&self, id: &str, m: &mut TxnMetadata, commit: bool) -> TxnResult<()> {
        m.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        m.last_update_ms = now_ms();
        // Closed to Produce before the decision is written.
        self.set_producing(m);
        self.persist(id, m, true).await?;
        self.finish(id, m, commit).await
    }

    /// Writes the markers of a prepared transaction (fsynced), applies its offsets and
    /// records it complete.
    async fn finish(&self, id: &str, m: &mut TxnMetadata, commit: bool) -> TxnResult<()> {
        let now = now_ms();
        let mut written = Vec::new();
        for (topic, p) in &m.partitions {
            let Some(log) = self.topics.partition(topic, *p) else {
                // Deleted since: nothing to mark.
                continue;
            };
            let offset = log
                .append_marker(m.producer_id, m.producer_epoch, commit, 0, now)
                .map_err(|e| storage("write a transaction marker", e))?;
            written.push((log, offset));
        }
        for (log, offset) in written {
            log.sync_to(offset + 1)
                .await
                .map_err(|e| storage("fsync a transaction marker", e))?;
        }
        if m.partitions.iter().any(|(t, _)| t == OFFSETS_TOPIC) {
            self.offsets.complete_txn(m.producer_id, commit);
        }
        m.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.partitions.clear();
        m.start_ms = -1;
        m.last_update_ms = now_ms();
        // The markers decide the outcome; a crash before this record only makes the
        // start-up write them again, which consumers ignore.
        self.persist(id, m, false).await
    }

    /// Aborts an open transaction with a bumped epoch, so its producer is fenced.
    async fn fence_and_abort(&self, id: &str, m: &mut TxnMetadata) -> TxnResult<()> {
        if m.producer_epoch < i16::MAX {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch += 1;
        }
        self.end(id, m, false).await
    }

    /// Aborts transactions open longer than their timeout (fencing their producers,
    /// as Kafka does) and finishes any a failure left prepared. Returns how many
    /// transactions it ended.
    pub async fn expire(&self, now: i64) -> usize {
        let slots: Vec<(String, Slot)> = crate::sync::lock(&self.slots)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut ended = 0;
        for (id, slot) in slots {
            // A slot in use is being worked on by a request.
            let Ok(mut guard) = slot.try_lock() else {
                continue;
            };
            let Some(m) = guard.as_mut() else { continue };
            let result = match m.state {
                TxnState::Ongoing if now - m.start_ms > m.timeout_ms as i64 => {
                    tracing::info!(transactional_id = %id, producer_id = m.producer_id,
                        epoch = m.producer_epoch, timeout_ms = m.timeout_ms,
                        "aborting a transaction that exceeded its timeout");
                    self.fence_and_abort(&id, m).await
                }
                TxnState::PrepareCommit => self.finish(&id, m, true).await,
                TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                    self.finish(&id, m, false).await
                }
                _ => continue,
            };
            match result {
                Ok(()) => ended += 1,
                Err(e) => {
                    tracing::warn!(transactional_id = %id, error = ?e, "could not end a transaction; will retry")
                }
            }
        }
        ended
    }

    /// The state of each id (DescribeTransactions); TRANSACTIONAL_ID_NOT_FOUND for
    /// unknown ones.
    pub async fn describe(&self, id: &str) -> TxnResult<TxnMetadata> {
        let slot = self
            .slot(id, false)
            .ok_or(ErrorCode::TransactionalIdNotFound)?;
        let guard = slot.lock().await;
        guard.clone().ok_or(ErrorCode::TransactionalIdNotFound)
    }

    /// Every id with its producer id and state (ListTransactions).
    pub async fn list(&self) -> Vec<(String, TxnMetadata)> {
        let slots: Vec<(String, Slot)> = crate::sync::lock(&self.slots)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (id, slot) in slots {
            if let Some(m) = slot.lock().await.clone() {
                out.push((id, m));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Isolation;
    use bytes::Bytes;

    fn open(dir: &std::path::Path) -> (Arc<TopicRegistry>, TxnCoordinator) {
        let config = crate::BrokerConfig::default()
            .with_property("log.dirs", dir.display().to_string())
            .unwrap();
        let topics = Arc::new(TopicRegistry::open(Arc::new(config), false).unwrap());
        if topics.get("t").is_none() {
            topics.create("t", 1, BTreeMap::new(), false).unwrap();
        }
        let offsets = Arc::new(OffsetStore::open(topics.clone(), 1).unwrap());
        let limits = TxnLimits {
            partitions: 1,
            max_timeout_ms: 60_000,
        };
        let coordinator = TxnCoordinator::open(topics.clone(), offsets, limits).unwrap();
        (topics, coordinator)
    }

    /// One transactional record from `pid`/`epoch` appended to t-0, as a producer would.
    fn produce(topics: &TopicRegistry, pid: i64, epoch: i16) {
        let mut r = batch::plain_record(0, None, Some(Bytes::from_static(b"v")), 1);
        (r.transactional, r.producer_id, r.producer_epoch, r.sequence) = (true, pid, epoch, 0);
        let b = batch::encode_records(&[r], Compression::None).unwrap();
        topics.partition("t", 0).unwrap().append(&b, 1).unwrap();
    }

    async fn state_of(c: &TxnCoordinator, id: &str) -> TxnState {
        c.describe(id).await.unwrap().state
    }

    #[tokio::test]
    async fn a_commit_a_crash_left_prepared_is_finished_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let (topics, c) = open(dir.path());
        let (pid, epoch) = c.init_producer_id("x", 1000, None, || Ok(7)).await.unwrap();
        c.add_partitions("x", pid, epoch, vec![("t".into(), 0)])
            .await
            .unwrap();
        produce(&topics, pid, epoch);
        let log = topics.partition("t", 0).unwrap();
        assert_eq!(log.last_stable_offset(), 0);
        // The crash: the PrepareCommit record is durable, no marker was written.
        {
            let slot = c.slot("x", false).unwrap();
            let mut guard = slot.lock().await;
            let m = guard.as_mut().unwrap();
            m.state = TxnState::PrepareCommit;
            c.persist("x", m, true).await.unwrap();
        }
        drop((c, log, topics));
        let (topics, c) = open(dir.path());
        assert_eq!(state_of(&c, "x").await, TxnState::PrepareCommit);
        let log = topics.partition("t", 0).unwrap();
        assert_eq!(log.last_stable_offset(), 0, "still open after the restart");
        assert_eq!(c.expire(now_ms()).await, 1);
        assert_eq!(state_of(&c, "x").await, TxnState::CompleteCommit);
        let read = log
            .read_isolated(0, 1 << 20, Isolation::ReadCommitted)
            .unwrap();
        assert_eq!((read.last_stable_offset, read.high_watermark), (2, 2));
        assert!(read.aborted.is_empty(), "committed, not aborted");
        assert!(!read.records.is_empty());
    }

    #[tokio::test]
    async fn a_timed_out_transaction_is_aborted_and_its_producer_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let (topics, c) = open(dir.path());
        let (pid, epoch) = c.init_producer_id("y", 1000, None, || Ok(9)).await.unwrap();
        c.add_partitions("y", pid, epoch, vec![("t".into(), 0)])
            .await
            .unwrap();
        produce(&topics, pid, epoch);
        assert_eq!(c.expire(now_ms()).await, 0, "not yet timed out");
        assert_eq!(c.expire(now_ms() + 1_500).await, 1);
        assert_eq!(state_of(&c, "y").await, TxnState::CompleteAbort);
        let read = topics
            .partition("t", 0)
            .unwrap()
            .read_isolated(0, 1 << 20, Isolation::ReadCommitted)
            .unwrap();
        assert_eq!(read.last_stable_offset, 2);
        assert_eq!(read.aborted.len(), 1, "the consumer is told to drop it");
        assert_eq!(
            c.end_txn("y", pid, epoch, true).await,
            Err(ErrorCode::ProducerFenced)
        );
        assert_eq!(c.producing().get(&pid).map(|p| p.epoch), Some(epoch + 1));
        // Its owner may still recover with its old epoch (KIP-360) and gets a newer one.
        let (pid2, epoch2) = c
            .init_producer_id("y", 1000, Some((pid, epoch)), || Ok(99))
            .await
            .unwrap();
        assert_eq!((pid2, epoch2), (pid, epoch + 2));
        assert_eq!(
            c.init_producer_id("y", 1000, Some((pid, epoch)), || Ok(99))
                .await,
            Err(ErrorCode::ProducerFenced),
            "a stale epoch is refused once a newer one was handed out"
        );
        assert_eq!(
            c.init_producer_id("z", 3_600_000, None, || Ok(5)).await,
            Err(ErrorCode::InvalidTransactionTimeout)
        );
    }
}
