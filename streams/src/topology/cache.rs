//! The record cache (Kafka's `statestore.cache.max.bytes`, formerly
//! `cache.max.bytes.buffering`): a task's writes to its cached stores wait here,
//! folded per key, until the task flushes — at each commit, or when the cache holds
//! more than its share of bytes. Only then are they written to the store (and its
//! changelog) and forwarded downstream, one update per key with the value it
//! replaced, as Kafka's CachingKeyValueStore does with its flush listener.

use std::collections::HashMap;
use std::ops::Bound;

use crate::state::overlay::Overlay;

#[derive(Default)]
pub(crate) struct RecordCache {
    /// The pending writes of each store cached in this task, shared with queries.
    stores: HashMap<String, Overlay>,
    pub max_bytes: usize,
    bytes: usize,
    seq: u64,
}

/// A pending write: its order, store, key, new value (or delete).
pub(crate) type Flushed = (u64, String, Vec<u8>, Option<Vec<u8>>);

impl RecordCache {
    pub fn new(stores: HashMap<String, Overlay>, max_bytes: usize) -> RecordCache {
        RecordCache {
            stores,
            max_bytes,
            ..RecordCache::default()
        }
    }

    pub fn caches(&self, store: &str) -> bool {
        self.stores.contains_key(store)
    }

    /// The pending value of a key: `Some(None)` is a pending delete, `None` not cached.
    pub fn get(&self, store: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.stores.get(store)?.get(key)
    }

    pub fn put(&mut self, store: &str, key: &[u8], value: Option<&[u8]>) {
        let Some(overlay) = self.stores.get(store) else {
            return;
        };
        self.seq += 1;
        let entry = (self.seq, value.map(<[u8]>::to_vec));
        let size = key.len() + value.map_or(0, <[u8]>::len);
        let mut pending = overlay.lock();
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
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.stores
            .get(store)
            .map_or_else(Vec::new, |o| o.range(from, to))
    }

    pub fn is_full(&self) -> bool {
        self.bytes > self.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.stores.values().all(|o| o.lock().is_empty())
    }

    /// Every pending write (copied: queries keep reading it here until the store has
    /// it), in the order the keys were last written.
    pub fn pending(&self) -> Vec<Flushed> {
        let mut all: Vec<Flushed> = Vec::new();
        for (store, o) in &self.stores {
            all.extend(
                o.lock()
                    .iter()
                    .map(|(k, (seq, v))| (*seq, store.clone(), k.clone(), v.clone())),
            );
        }
        all.sort_unstable_by_key(|(seq, ..)| *seq);
        all
    }

    /// Forgets a pending write now in its store, unless the key was written again
    /// since `seq`.
    pub fn written(&mut self, store: &str, key: &[u8], seq: u64) {
        let Some(o) = self.stores.get(store) else {
            return;
        };
        let mut pending = o.lock();
        if let Some((s, v)) = pending.get(key) {
            if *s == seq {
                self.bytes -= key.len() + v.as_ref().map_or(0, Vec::len);
                pending.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_per_key_and_drains_in_write_order() {
        let mut c = RecordCache::new(HashMap::from([("s".to_string(), Overlay::default())]), 10);
        c.put("s", b"a", Some(b"1"));
        c.put("s", b"b", Some(b"22"));
        c.put("s", b"a", Some(b"333"));
        assert_eq!(c.get("s", b"a"), Some(Some(b"333".to_vec())));
        assert_eq!(c.get("s", b"c"), None);
        assert!(!c.is_full());
        c.put("s", b"c", None);
        c.put("s", b"d", Some(b"4444"));
        assert!(c.is_full());
        let pending = c.pending();
        let keys: Vec<&[u8]> = pending.iter().map(|(_, _, k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![&b"b"[..], b"a", b"c", b"d"]);
        for (seq, store, key, _) in &pending {
            c.written(store, key, *seq);
        }
        assert!(c.is_empty() && !c.is_full());
    }
}
