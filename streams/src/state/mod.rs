//! State stores: byte-keyed key-value stores underneath (in memory, or persistent on
//! disk with fjall), typed views on top through serdes. Every write a task makes is
//! also recorded for the store's changelog topic; a store is rebuilt from its changelog
//! when its task starts where the local copy is missing or not known to be clean.
//!
//! The DSL's stores are timestamped as Kafka's (KIP-258, [`stamped`]): each value
//! carries the timestamp of the record behind it, which results inherit.
//!
//! Window and session stores are key-value stores whose keys carry the window:
//! [`window`] encodes them so one key's windows are adjacent and ordered by time.

pub mod memory;
pub mod overlay;
pub mod persistent;
pub mod stamped;
pub mod window;
pub mod windowed_serde;

use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;

/// Key-value pairs, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A byte-keyed store, ordered by key.
pub trait KeyValueStore: Send {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    fn delete(&mut self, key: &[u8]) -> Result<()>;
    /// Entries with keys in the range, in key order.
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Entries>;
    fn approximate_len(&self) -> usize;
    /// Makes writes durable where the store is persistent.
    fn flush(&mut self) -> Result<()>;
    /// Empties the store (before a full restore).
    fn clear(&mut self) -> Result<()>;
}

/// One task's instance of a store, shared with interactive queries.
#[derive(Clone)]
pub struct StoreHandle {
    store: Arc<Mutex<Box<dyn KeyValueStore>>>,
    timestamped: bool,
    /// A cached store's writes not yet flushed to it, read through by queries.
    overlay: Option<overlay::Overlay>,
}

impl StoreHandle {
    pub fn new(store: Box<dyn KeyValueStore>) -> StoreHandle {
        StoreHandle {
            store: Arc::new(Mutex::new(store)),
            timestamped: false,
            overlay: None,
        }
    }

    /// Puts the record cache's pending writes for this instance in front of it.
    pub(crate) fn set_overlay(&mut self, overlay: overlay::Overlay) {
        self.overlay = Some(overlay);
    }

    /// A key's value, read through the record cache.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(pending) = self.overlay.as_ref().and_then(|o| o.get(key)) {
            return Ok(pending);
        }
        self.lock().get(key)
    }

    /// Entries in a key range, in key order, read through the record cache.
    pub fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Entries> {
        let stored = self.lock().range(from, to)?;
        Ok(match &self.overlay {
            Some(o) => overlay::merge(stored, o.range(from, to)),
            None => stored,
        })
    }

    /// Opens `spec`'s store (see [`open`]) behind a handle that knows its value layout.
    pub fn open(spec: &StoreSpec, dir: Option<&std::path::Path>) -> Result<StoreHandle> {
        Ok(StoreHandle {
            timestamped: spec.timestamped,
            ..StoreHandle::new(open(spec, dir)?)
        })
    }

    /// Whether both handles are the same store instance.
    pub fn same(&self, other: &StoreHandle) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }

    /// The store, locked; a panic elsewhere while it was held does not poison reads.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn KeyValueStore>> {
        crate::sync::lock(&self.store)
    }

    /// A stored value without the timestamp a timestamped store keeps before it, as
    /// Kafka's interactive queries return a timestamped store's plain values.
    pub fn value<'a>(&self, stored: &'a [u8]) -> &'a [u8] {
        if self.timestamped {
            stamped::split(stored).map_or(stored, |(v, _)| v)
        } else {
            stored
        }
    }
}

/// What kind of store an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    InMemory,
    Persistent,
}

/// A store as the topology declares it.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    pub name: String,
    pub store_type: StoreType,
    /// Written to `<application.id>-<name>-changelog`.
    pub logged: bool,
    /// For window and session stores: the changelog is `compact,delete` with this
    /// retention, as Kafka Streams sets it (window retention + 1 day).
    pub changelog_retention_ms: Option<i64>,
    /// Values carry the timestamp of the record behind them ([`stamped`]).
    pub timestamped: bool,
    /// Writes go through the task's record cache (when the cache has room).
    pub cached: bool,
}

impl StoreSpec {
    pub fn changelog_topic(&self, application_id: &str) -> String {
        format!("{application_id}-{}-changelog", self.name)
    }
}

/// Whether a range is empty or inverted (which `BTreeMap::range` would panic on).
pub(crate) fn empty_range(from: Bound<&[u8]>, to: Bound<&[u8]>) -> bool {
    match (from, to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// Opens a store instance: in memory, or persistent under `dir` (in memory when no
/// directory is given, as the test driver runs).
pub fn open(spec: &StoreSpec, dir: Option<&std::path::Path>) -> Result<Box<dyn KeyValueStore>> {
    match (spec.store_type, dir) {
        (StoreType::Persistent, Some(dir)) => Ok(Box::new(persistent::PersistentStore::open(
            &spec.name,
            &dir.join(&spec.name),
        )?)),
        _ => Ok(Box::new(memory::InMemoryStore::default())),
    }
}
