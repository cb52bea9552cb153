//! A cached store's pending writes (the record cache's share for one store instance),
//! kept beside the store so interactive queries read through the cache as Kafka's do:
//! a query sees an update as soon as it is processed, not only after the next commit
//! flushes it to the store.

use std::collections::HashMap;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex, MutexGuard};

/// Key → (write order, value or delete).
pub(crate) type Pending = HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>;

#[derive(Clone, Default)]
pub struct Overlay(Arc<Mutex<Pending>>);

impl Overlay {
    /// The pending writes, locked; a panic elsewhere while they were held does not
    /// poison reads.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pending> {
        crate::sync::lock(&self.0)
    }

    /// A key's pending value: `Some(None)` is a pending delete, `None` not pending.
    pub fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.lock().get(key).map(|(_, v)| v.clone())
    }

    /// The pending writes within a key range, unordered.
    pub fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.lock()
            .iter()
            .filter(|(k, _)| RangeBounds::<[u8]>::contains(&(from, to), k.as_slice()))
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect()
    }
}

/// `stored` (in key order) with `pending` written over it, deletes removed.
pub(crate) fn merge(
    stored: Vec<(Vec<u8>, Vec<u8>)>,
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    if pending.is_empty() {
        return stored;
    }
    let mut merged: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
        stored.into_iter().map(|(k, v)| (k, Some(v))).collect();
    merged.extend(pending);
    merged
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}
