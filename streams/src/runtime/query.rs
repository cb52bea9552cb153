//! Interactive queries: read-only, typed views of a store across the tasks (partitions)
//! that hold it here.

use std::marker::PhantomData;
use std::ops::Bound;

use crate::error::Result;
use crate::serde::{key_bytes, Serde};
use crate::state::window as wk;
use crate::state::StoreHandle;

/// Where interactive queries find a store's instances: a running [`KafkaStreams`]
/// (its tasks' and global stores) or the test driver.
///
/// [`KafkaStreams`]: crate::KafkaStreams
pub trait QueryableStores {
    /// Every local instance (one per partition) of the store `name`.
    fn store_handles(&self, name: &str) -> Result<Vec<StoreHandle>>;

    fn key_value_store<K: Serde + Ord, V: Serde>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>> {
        Ok(ReadOnlyKeyValueStore::new(self.store_handles(name)?))
    }
    fn window_store<K: Serde, V: Serde>(&self, name: &str) -> Result<ReadOnlyWindowStore<K, V>> {
        Ok(ReadOnlyWindowStore::new(self.store_handles(name)?))
    }
    fn session_store<K: Serde, V: Serde>(&self, name: &str) -> Result<ReadOnlySessionStore<K, V>> {
        Ok(ReadOnlySessionStore::new(self.store_handles(name)?))
    }
}

pub struct ReadOnlyKeyValueStore<K, V> {
    pub(crate) handles: Vec<StoreHandle>,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

fn decode<K: Serde, V: Serde>(k: &[u8], v: &[u8]) -> Result<(K, V)> {
    Ok((K::from_bytes(Some(k))?, V::from_bytes(Some(v))?))
}

impl<K: Serde + Ord, V: Serde> ReadOnlyKeyValueStore<K, V> {
    pub(crate) fn new(handles: Vec<StoreHandle>) -> Self {
        ReadOnlyKeyValueStore {
            handles,
            _types: PhantomData,
        }
    }

    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let kb = key_bytes(key);
        for h in &self.handles {
            if let Some(v) = h.get(&kb)? {
                return V::from_bytes(Some(h.value(&v))).map(Some);
            }
        }
        Ok(None)
    }

    /// Entries with keys from `from` to `to` (inclusive, in serialized-key order).
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let (a, b) = (key_bytes(from), key_bytes(to));
        self.collect(Bound::Included(&a), Bound::Included(&b))
    }

    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.collect(Bound::Unbounded, Bound::Unbounded)
    }

    fn collect(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(K, V)>> {
        let mut raw: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for h in &self.handles {
            let entries = h.range(from, to)?;
            raw.extend(entries.into_iter().map(|(k, v)| (k, h.value(&v).to_vec())));
        }
        raw.sort();
        raw.iter().map(|(k, v)| decode(k, v)).collect()
    }

    pub fn approximate_num_entries(&self) -> usize {
        self.handles
            .iter()
            .map(|h| h.lock().approximate_len())
            .sum()
    }
}

/// A windowed aggregation's store: values per key and window start.
pub struct ReadOnlyWindowStore<K, V> {
    pub(crate) handles: Vec<StoreHandle>,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Serde, V: Serde> ReadOnlyWindowStore<K, V> {
    pub(crate) fn new(handles: Vec<StoreHandle>) -> Self {
        ReadOnlyWindowStore {
            handles,
            _types: PhantomData,
        }
    }

    /// (window start, value) of `key`'s windows starting from `from` to `to` ms.
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>> {
        let kb = key_bytes(key);
        let (a, b) = (wk::window_key(&kb, from), wk::window_key(&kb, to));
        let mut out = Vec::new();
        for h in &self.handles {
            for (k, v) in h.range(Bound::Included(&a), Bound::Included(&b))? {
                let (_, start) = wk::parse_window_key(&k)?;
                out.push((start, V::from_bytes(Some(h.value(&v)))?));
            }
        }
        out.sort_by_key(|(s, _)| *s);
        Ok(out)
    }

    /// (key, window start, value) of every window held.
    pub fn all(&self) -> Result<Vec<(K, i64, V)>> {
        let mut out = Vec::new();
        for h in &self.handles {
            for (k, v) in h.range(Bound::Unbounded, Bound::Unbounded)? {
                let (key, start) = wk::parse_window_key(&k)?;
                out.push((
                    K::from_bytes(Some(key))?,
                    start,
                    V::from_bytes(Some(h.value(&v)))?,
                ));
            }
        }
        Ok(out)
    }
}

/// A session aggregation's store: values per key and session.
pub struct ReadOnlySessionStore<K, V> {
    pub(crate) handles: Vec<StoreHandle>,
    pub(crate) _types: PhantomData<fn() -> (K, V)>,
}

impl<K: Serde, V: Serde> ReadOnlySessionStore<K, V> {
    pub(crate) fn new(handles: Vec<StoreHandle>) -> Self {
        ReadOnlySessionStore {
            handles,
            _types: PhantomData,
        }
    }

    /// (session window, value) of `key`'s sessions, oldest end first.
    pub fn fetch(&self, key: &K) -> Result<Vec<(wk::Window, V)>> {
        let prefix = wk::key_prefix(&key_bytes(key));
        let mut end = prefix.clone();
        end.extend([0xff; 16]);
        let mut out = Vec::new();
        for h in &self.handles {
            for (k, v) in h.range(Bound::Included(&prefix), Bound::Included(&end))? {
                let (_, start, end) = wk::parse_session_key(&k)?;
                out.push((wk::Window { start, end }, V::from_bytes(Some(h.value(&v)))?));
            }
        }
        Ok(out)
    }
}
