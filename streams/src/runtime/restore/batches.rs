//! Rebuilding a store from its changelog partition. Records of a commit batch are held
//! until the batch's marker is read; a batch without marker (its writer crashed before
//! finishing the commit) is dropped, and its keys are reported so the task writes their
//! restored values again (a compacted changelog must not keep the dropped ones).

use std::collections::BTreeSet;

use super::super::task::{Marker, COMMIT_HEADER, EPOCH_HEADER};
use crate::error::Result;
use crate::state::KeyValueStore;

#[derive(Default)]
pub struct Restorer {
    pending_epoch: Option<Vec<u8>>,
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// The marker of the last complete batch.
    pub marker: Option<Marker>,
    /// Keys of dropped batches.
    pub dropped: BTreeSet<Vec<u8>>,
    pub applied: u64,
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

impl Restorer {
    fn drop_pending(&mut self) {
        for (k, _) in self.pending.drain(..) {
            self.dropped.insert(k);
        }
        self.pending_epoch = None;
    }

    pub fn apply(
        &mut self,
        store: &mut dyn KeyValueStore,
        key: &[u8],
        value: Option<&[u8]>,
        headers: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let Some(epoch) = header(headers, EPOCH_HEADER) else {
            // Written without batches (another tool): applied as it comes.
            self.applied += 1;
            return match value {
                Some(v) => store.put(key, v),
                None => store.delete(key),
            };
        };
        if header(headers, COMMIT_HEADER).is_some() {
            if self.pending_epoch.as_deref() == Some(epoch) {
                for (k, v) in self.pending.drain(..) {
                    match v {
                        Some(v) => store.put(&k, &v)?,
                        None => store.delete(&k)?,
                    }
                    self.applied += 1;
                    self.dropped.remove(&k);
                }
                self.pending_epoch = None;
            } else {
                self.drop_pending();
            }
            self.marker = value.and_then(|v| serde_json::from_slice(v).ok());
            return Ok(());
        }
        if self.pending_epoch.as_deref() != Some(epoch) {
            self.drop_pending();
            self.pending_epoch = Some(epoch.to_vec());
        }
        self.pending.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        Ok(())
    }

    /// The end of the changelog: an unfinished batch is dropped.
    pub fn finish(&mut self) {
        self.drop_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::InMemoryStore;

    fn h(epoch: &str, commit: bool) -> Vec<(String, Vec<u8>)> {
        let mut v = vec![(EPOCH_HEADER.to_string(), epoch.as_bytes().to_vec())];
        if commit {
            v.push((COMMIT_HEADER.to_string(), b"1".to_vec()));
        }
        v
    }

    #[test]
    fn only_committed_batches_are_applied() {
        let mut s = InMemoryStore::default();
        let mut r = Restorer::default();
        r.apply(&mut s, b"a", Some(b"1"), &h("e1", false)).unwrap();
        r.apply(
            &mut s,
            b"m",
            Some(br#"{"offsets":{"in":10}}"#),
            &h("e1", true),
        )
        .unwrap();
        // A crashed commit: its records never get a marker.
        r.apply(&mut s, b"a", Some(b"2"), &h("e2", false)).unwrap();
        r.apply(&mut s, b"b", Some(b"9"), &h("e2", false)).unwrap();
        // The next run's commit.
        r.apply(&mut s, b"c", Some(b"3"), &h("e3", false)).unwrap();
        r.apply(
            &mut s,
            b"m",
            Some(br#"{"offsets":{"in":12},"origins":{"x\u00000":[5,1]}}"#),
            &h("e3", true),
        )
        .unwrap();
        r.apply(&mut s, b"c", None, &h("e4", false)).unwrap();
        r.finish();
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"b").unwrap(), None);
        assert_eq!(s.get(b"c").unwrap(), Some(b"3".to_vec()));
        let marker = r.marker.as_ref().unwrap();
        assert_eq!(marker.offsets.get("in"), Some(&12));
        assert_eq!(marker.origins.get("x\u{0}0"), Some(&(5, 1)));
        let dropped: Vec<&[u8]> = r.dropped.iter().map(Vec::as_slice).collect();
        assert_eq!(dropped, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(r.applied, 2);
    }
}
