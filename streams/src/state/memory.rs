//! The in-memory store: a B-tree map.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Entries, KeyValueStore};
use crate::error::Result;

#[derive(Debug, Default)]
pub struct InMemoryStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KeyValueStore for InMemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.map.insert(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.map.remove(key);
        Ok(())
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Entries> {
        // An empty or inverted range is no entries, not BTreeMap's panic.
        if super::empty_range(from, to) {
            return Ok(Vec::new());
        }
        Ok(self
            .map
            .range::<[u8], _>((from, to))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn approximate_len(&self) -> usize {
        self.map.len()
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn clear(&mut self) -> Result<()> {
        self.map.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered_and_bad_ranges_are_empty() {
        let mut s = InMemoryStore::default();
        for k in [b"b", b"a", b"c"] {
            s.put(k, k).unwrap();
        }
        let keys: Vec<Vec<u8>> = s
            .range(Bound::Included(b"a"), Bound::Excluded(b"c"))
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(s
            .range(Bound::Included(b"c"), Bound::Included(b"a"))
            .unwrap()
            .is_empty());
        assert!(s
            .range(Bound::Excluded(b"b"), Bound::Excluded(b"b"))
            .unwrap()
            .is_empty());
        s.delete(b"a").unwrap();
        assert_eq!(s.get(b"a").unwrap(), None);
        assert_eq!(s.approximate_len(), 2);
    }
}
