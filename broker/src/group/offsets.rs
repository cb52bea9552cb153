//! Committed offsets, kept in memory and written to the compacted internal topic
//! `__consumer_offsets` in Kafka's record formats (key v1: group, topic, partition;
//! value v3: offset, leader epoch, metadata, commit timestamp), so they survive
//! restarts like any data and Kafka's tools could read them. Offsets committed inside
//! a transaction (TxnOffsetCommit) are written as that producer's transactional records
//! and take effect when its COMMIT marker is written (dropped on ABORT), as Kafka's
//! group coordinator does, also when the log is read back at start-up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::metadata::{self, get_str, put_str, GroupMetadata};
use crate::log::batch;

use crate::error::{Error, Result};
use crate::log::now_ms;
use crate::topics::TopicRegistry;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

type GroupOffsets = HashMap<(String, i32), Committed>;

/// Offsets a transaction committed, waiting for its marker: (group, topic, partition).
type Staged = Vec<(String, String, i32, Committed)>;

#[derive(Debug)]
pub struct OffsetStore {
    topics: Arc<TopicRegistry>,
    partitions: i32,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
    /// Per producer id, offsets of its open transaction.
    staged: Mutex<HashMap<i64, Staged>>,
    /// Group metadata read at start-up, until the coordinator takes it.
    loaded_groups: Mutex<Vec<(String, GroupMetadata)>>,
    /// Test hook: sleep after each log append, to widen any race behind it.
    #[cfg(test)]
    slow_append: std::sync::atomic::AtomicBool,
}

/// Java's `String.hashCode`, which Kafka uses to place a group on an offsets partition.
pub(crate) fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The longest string Kafka's record formats hold (an i16 length).
pub const MAX_STRING: usize = i16::MAX as usize;

/// Kafka refuses an empty group id; one longer than its key format can hold would be
/// written with a wrapped length and corrupt the offsets topic on reload.
pub fn check_group_id(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > MAX_STRING {
        return Err(Error::Kafka(
            crate::error::ErrorCode::InvalidGroupId,
            format!(
                "group id of {} bytes: it must be 1 to {MAX_STRING} bytes",
                group.len()
            ),
        ));
    }
    Ok(())
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

fn encode_value(c: &Committed) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, &c.metadata);
    b.put_i64(c.commit_timestamp);
    b.freeze()
}

/// Decodes an offset-commit key; other record kinds (group metadata) give `None`.
fn decode_key(mut b: Bytes) -> Option<(String, String, i32)> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version > 1 {
        return None;
    }
    let group = get_str(&mut b)?;
    let topic = get_str(&mut b)?;
    (b.remaining() >= 4).then(|| (group, topic, b.get_i32()))
}

fn decode_value(mut b: Bytes) -> Option<Committed> {
    if b.remaining() < 10 {
        return None;
    }
    let version = b.get_i16();
    let offset = b.get_i64();
    let leader_epoch = if version >= 3 && b.remaining() >= 4 {
        b.get_i32()
    } else {
        -1
    };
    let metadata = get_str(&mut b)?;
    let commit_timestamp = if b.remaining() >= 8 { b.get_i64() } else { -1 };
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

impl OffsetStore {
    /// Creates `__consumer_offsets` if needed and loads every committed offset from it.
    pub fn open(topics: Arc<TopicRegistry>, partitions: i32) -> Result<OffsetStore> {
        let topic = match topics.get(OFFSETS_TOPIC) {
            Some(t) => t,
            None => {
                let mut o = BTreeMap::new();
                o.insert("cleanup.policy".to_string(), "compact".to_string());
                o.insert("segment.bytes".to_string(), "104857600".to_string());
                topics.create(OFFSETS_TOPIC, partitions, o, true)?
            }
        };
        let mut offsets: HashMap<String, GroupOffsets> = HashMap::new();
        let mut groups: HashMap<String, Option<GroupMetadata>> = HashMap::new();
        let mut loaded = 0usize;
        let mut staged: HashMap<i64, Staged> = HashMap::new();
        for log in topic.partitions() {
            let mut next = log.log_start_offset();
            let end = log.log_end_offset();
            while next < end {
                let read = log.read(next, 1 << 20)?;
                if read.records.is_empty() {
                    break;
                }
                let sets = RecordBatchDecoder::decode_all(&mut read.records.clone())
                    .map_err(|e| Error::CorruptBatch(format!("{OFFSETS_TOPIC}: {e}")))?;
                for set in sets {
                    for r in set.records {
                        next = r.offset + 1;
                        if r.control {
                            let commit = crate::log::transactions::marker_type(r.key.as_ref());
                            let txn = staged.remove(&r.producer_id).unwrap_or_default();
                            if commit == Some(true) {
                                for (g, t, p, c) in txn {
                                    offsets.entry(g).or_default().insert((t, p), c);
                                    loaded += 1;
                                }
                            }
                            continue;
                        }
                        let Some(key) = r.key else { continue };
                        if r.transactional {
                            if let (Some((g, t, p)), Some(c)) =
                                (decode_key(key), r.value.and_then(decode_value))
                            {
                                staged.entry(r.producer_id).or_default().push((g, t, p, c));
                            }
                            continue;
                        }
                        if let Some(group) = metadata::decode_key(key.clone()) {
                            groups.insert(group, r.value.and_then(metadata::decode_value));
                            continue;
                        }
                        let Some((group, topic, partition)) = decode_key(key) else {
                            continue;
                        };
                        let entry = offsets.entry(group).or_default();
                        match r.value.and_then(decode_value) {
                            Some(c) => {
                                entry.insert((topic, partition), c);
                                loaded += 1;
                            }
                            None => {
                                entry.remove(&(topic, partition));
                            }
                        }
                    }
                }
            }
        }
        offsets.retain(|_, v| !v.is_empty());
        let groups: Vec<(String, GroupMetadata)> = groups
            .into_iter()
            .filter_map(|(g, m)| m.map(|m| (g, m)))
            .collect();
        tracing::info!(
            groups = offsets.len(),
            group_metadata = groups.len(),
            records = loaded,
            "loaded committed offsets"
        );
        let partitions = topic.partition_count();
        Ok(OffsetStore {
            topics,
            partitions,
            offsets: Mutex::new(offsets),
            staged: Mutex::new(staged),
            loaded_groups: Mutex::new(groups),
            #[cfg(test)]
            slow_append: Default::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GroupOffsets>> {
        crate::sync::lock(&self.offsets)
    }

    /// The `__consumer_offsets` partition holding a group's records.
    pub fn partition_for(&self, group: &str) -> i32 {
        (java_hash(group) & 0x7fff_ffff) % self.partitions.max(1)
    }

    /// Appends the records for a group's commits (or tombstones) to its partition.
    fn write(&self, group: &str, rows: Vec<(Bytes, Option<Bytes>)>) -> Result<()> {
        self.write_as(group, rows, None)
    }

    /// [`OffsetStore::write`], as a transactional producer's records when `producer`
    /// (id, epoch) is given.
    fn write_as(
        &self,
        group: &str,
        rows: Vec<(Bytes, Option<Bytes>)>,
        producer: Option<(i64, i16)>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let log = self
            .topics
            .partition(OFFSETS_TOPIC, self.partition_for(group))
            .ok_or_else(|| Error::UnknownTopicOrPartition(OFFSETS_TOPIC.into()))?;
        let now = now_ms();
        let records: Vec<_> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| {
                let mut r = batch::plain_record(i as i64, Some(key), value, now);
                if let Some((id, epoch)) = producer {
                    r.transactional = true;
                    r.producer_id = id;
                    r.producer_epoch = epoch;
                }
                r
            })
            .collect();
        let buf = batch::encode_records(&records, Compression::None)?;
        log.append_as_coordinator(&buf, now)?;
        #[cfg(test)]
        if self.slow_append.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        Ok(())
    }

    /// Records commits: appended to the log, then applied in memory, both under the
    /// one lock so concurrent commits leave the log and memory agreeing on the last.
    pub fn commit(&self, group: &str, commits: Vec<(String, i32, Committed)>) -> Result<()> {
        check_group_id(group)?;
        let rows = commits
            .iter()
            .map(|(t, p, c)| (encode_key(group, t, *p), Some(encode_value(c))))
            .collect();
        let mut map = self.lock();
        self.write(group, rows)?;
        let entry = map.entry(group.to_string()).or_default();
        for (t, p, c) in commits {
            entry.insert((t, p), c);
        }
        Ok(())
    }

    /// Writes offsets committed inside producer `producer_id`'s transaction; they take
    /// effect at [`OffsetStore::complete_txn`] with `commit`.
    pub fn stage_txn(
        &self,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<()> {
        check_group_id(group)?;
        let rows = commits
            .iter()
            .map(|(t, p, c)| (encode_key(group, t, *p), Some(encode_value(c))))
            .collect();
        let _map = self.lock();
        self.write_as(group, rows, Some((producer_id, producer_epoch)))?;
        let mut staged = crate::sync::lock(&self.staged);
        let txn = staged.entry(producer_id).or_default();
        txn.extend(
            commits
                .into_iter()
                .map(|(t, p, c)| (group.to_string(), t, p, c)),
        );
        Ok(())
    }

    /// Applies (commit) or drops (abort) the offsets of `producer_id`'s transaction,
    /// once its marker is in the log.
    pub fn complete_txn(&self, producer_id: i64, commit: bool) {
        let mut map = self.lock();
        let txn = crate::sync::lock(&self.staged)
            .remove(&producer_id)
            .unwrap_or_default();
        if commit {
            for (g, t, p, c) in txn {
                map.entry(g).or_default().insert((t, p), c);
            }
        }
    }

    /// Whether an open transaction has an offset for this group and partition.
    pub fn has_staged(&self, group: &str, topic: &str, partition: i32) -> bool {
        crate::sync::lock(&self.staged)
            .values()
            .flatten()
            .any(|(g, t, p, _)| g == group && t == topic && *p == partition)
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.lock()
            .get(group)
            .and_then(|g| g.get(&(topic.to_string(), partition)).cloned())
    }

    /// Every committed offset of a group, sorted by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let mut v: Vec<_> = self
            .lock()
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        v
    }

    pub fn groups(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.lock().contains_key(group)
    }

    /// Group metadata read from the log at start-up (once).
    pub fn take_loaded_groups(&self) -> Vec<(String, GroupMetadata)> {
        std::mem::take(&mut *crate::sync::lock(&self.loaded_groups))
    }

    /// Writes a group's metadata record (Kafka's GroupMetadata) to its partition.
    pub fn store_group(&self, group: &str, meta: &GroupMetadata) -> Result<()> {
        check_group_id(group)?;
        let _map = self.lock();
        self.write(
            group,
            vec![(
                metadata::encode_key(group),
                Some(metadata::encode_value(meta)),
            )],
        )
    }

    /// Removes every offset of a group and its metadata, writing tombstones.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        let mut map = self.lock();
        let keys: Vec<(String, i32)> = map
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default();
        let rows = keys
            .iter()
            .map(|(t, p)| (encode_key(group, t, *p), None))
            .chain(std::iter::once((metadata::encode_key(group), None)))
            .collect();
        self.write(group, rows)?;
        map.remove(group);
        Ok(())
    }

    /// Forgets offsets of a deleted topic.
    pub fn forget_topic(&self, topic: &str) {
        for g in self.lock().values_mut() {
            g.retain(|(t, _), _| t != topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_string_hash_matches_java() {
        // Values computed by java.lang.String.hashCode.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("my-group"), -1_906_497_762);
    }

    #[test]
    fn key_and_value_round_trip() {
        let c = Committed {
            offset: 42,
            leader_epoch: -1,
            metadata: "meta".into(),
            commit_timestamp: 7,
        };
        assert_eq!(decode_value(encode_value(&c)), Some(c));
        assert_eq!(
            decode_key(encode_key("g", "t", 3)),
            Some(("g".into(), "t".into(), 3))
        );
        assert_eq!(decode_key(Bytes::from_static(&[0, 2, 0, 1, b'g'])), None);
    }

    fn registry(dir: &std::path::Path) -> Arc<TopicRegistry> {
        let config = crate::BrokerConfig::default()
            .with_property("log.dirs", dir.display().to_string())
            .unwrap();
        Arc::new(TopicRegistry::open(Arc::new(config), false).unwrap())
    }

    fn committed(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
        }
    }

    #[test]
    fn concurrent_commits_leave_log_and_memory_agreeing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(OffsetStore::open(registry(dir.path()), 1).unwrap());
        store
            .slow_append
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let c = vec![("t".to_string(), 0, committed(t * 100_000 + i))];
                        store.commit("g", c).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let in_memory = store.fetch("g", "t", 0).unwrap().offset;
        let topics = store.topics.clone();
        drop(store);
        let reloaded = OffsetStore::open(topics, 1).unwrap();
        assert_eq!(reloaded.fetch("g", "t", 0).unwrap().offset, in_memory);
    }

    #[test]
    fn a_group_id_too_long_for_the_key_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(registry(dir.path()), 1).unwrap();
        let long = "g".repeat(MAX_STRING + 1);
        let err = store
            .commit(&long, vec![("t".into(), 0, committed(5))])
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::InvalidGroupId);
        let max = "g".repeat(MAX_STRING);
        store
            .commit(&max, vec![("t".into(), 0, committed(5))])
            .unwrap();
        let topics = store.topics.clone();
        drop(store);
        let reloaded = OffsetStore::open(topics, 1).unwrap();
        assert_eq!(reloaded.fetch(&max, "t", 0).unwrap().offset, 5);
        assert!(!reloaded.has_group(&long));
    }
}
