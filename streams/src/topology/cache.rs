//! The record cache (Kafka's `statestore.cache.max.bytes`, formerly
//! `cache.max.bytes.buffering`): a task's writes to its cached stores wait here,
//! folded per key, until the task flushes — at each commit, or when the cache holds
//! more than its share of bytes. Only then are they written to the store (and its
//! changelog) and forwarded downstream, one update per key with the value it
//! replaced, as Kafka's CachingKeyValueStore does with its flush listener.

use std::collections::{HashMap, HashSet};
use std::ops::RangeBounds;

/// One store's pending writes: key → (write order, value or delete).
type Pending = HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

#[derive(Default)]
pub(crate) struct RecordCache {
    /// The stores whose writes are cached in this task.
    pub cached: HashSet<String>,
    pub max_bytes: usize,
    bytes: usize,
    seq: u64,
    pending: HashMap<String, Pending>,
}

/// A flushed write: store, key, new value (or delete).
pub(crate) type Flushed = (String, Vec<u8>, Option<Vec<u8>>);

impl RecordCache {
    pub fn new(cached: HashSet<String>, max_bytes: usize) -> RecordCache {
        RecordCache {
            cached,
            max_bytes,
            ..RecordCache::default()
        }
    }

    pub fn caches(&self, store: &str) -> bool {
        self.cached.contains(store)
    }

    /// The pending value of a key: `Some(None)` is a pending delete, `None` not cached.
    pub fn get(&self, store: &str, key: &[u8]) -> Option<Option<&[u8]>> {
        self.pending.get(store)?.get(key).map(|(_, v)| v.as_deref())
    }

    pub fn put(&mut self, store: &str, key: &[u8], value: Option<&[u8]>) {
        self.seq += 1;
        let entry = (self.seq, value.map(<[u8]>::to_vec));
        let size = key.len() + value.map_or(0, <[u8]>::len);
        let pending = match self.pending.get_mut(store) {
            Some(p) => p,
            None => self.pending.entry(store.to_string()).or_default(),
        };
        match pending.get_mut(key) {
            Some(slot) => {
                self.bytes -= key.len() + slot.1.as_ref().map_or(0, Vec::len);
                *slot = entry;
            }
            None => {
                pending.insert(key.to_vec(), entry);
            }
        }
        self.bytes += size;
    }

    /// The pending writes of a store within a key range, for merging into a read.
    pub fn range(
        &self,
        store: &str,
        from: std::ops::Bound<&[u8]>,
        to: std::ops::Bound<&[u8]>,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let Some(p) = self.pending.get(store) else {
            return Vec::new();
        };
        p.iter()
            .filter(|(k, _)| RangeBounds::<[u8]>::contains(&(from, to), k.as_slice()))
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }

    pub fn is_full(&self) -> bool {
        self.bytes > self.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.pending.values().all(HashMap::is_empty)
    }

    /// Every pending write, in the order the keys were last written; the cache is
    /// empty afterwards.
    pub fn drain(&mut self) -> Vec<Flushed> {
        self.bytes = 0;
        let mut all: Vec<(u64, Flushed)> = self
            .pending
            .iter_mut()
            .flat_map(|(store, p)| {
                p.drain()
                    .map(move |(k, (seq, v))| (seq, (store.clone(), k, v)))
            })
            .collect();
        all.sort_unstable_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, f)| f).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_per_key_and_drains_in_write_order() {
        let mut c = RecordCache::new(HashSet::from(["s".to_string()]), 10);
        c.put("s", b"a", Some(b"1"));
        c.put("s", b"b", Some(b"22"));
        c.put("s", b"a", Some(b"333"));
        assert_eq!(c.get("s", b"a"), Some(Some(&b"333"[..])));
        assert_eq!(c.get("s", b"c"), None);
        assert!(!c.is_full());
        c.put("s", b"c", None);
        c.put("s", b"d", Some(b"4444"));
        assert!(c.is_full());
        let drained: Vec<Vec<u8>> = c.drain().into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(
            drained,
            vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        assert!(c.is_empty() && !c.is_full());
    }
}
