//! Source offsets for standalone mode: a JSON file (`offset.storage.file.filename`)
//! mapping `["<connector>", {partition}]` — Kafka Connect's key format — to the offset.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Value as Json};

use crate::api::JsonMap;
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct OffsetStore {
    path: Option<PathBuf>,
    offsets: Mutex<BTreeMap<String, JsonMap>>,
}

/// The storage key of a connector's source partition.
pub fn key(connector: &str, partition: &JsonMap) -> String {
    json!([connector, partition]).to_string()
}

impl OffsetStore {
    /// Loads the file if it exists; `None` keeps offsets in memory only.
    pub fn open(path: Option<PathBuf>) -> Result<OffsetStore> {
        let mut offsets = BTreeMap::new();
        if let Some(dir) = path
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) => {
                    let doc: BTreeMap<String, JsonMap> =
                        serde_json::from_slice(&bytes).map_err(|e| {
                            Error::config(
                                "offset.storage.file.filename",
                                format!("{} is not an offsets file: {e}", p.display()),
                            )
                        })?;
                    offsets = doc;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p.display(), e)),
            }
        }
        Ok(OffsetStore {
            path,
            offsets: Mutex::new(offsets),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, JsonMap>> {
        self.offsets.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, connector: &str, partition: &JsonMap) -> Option<JsonMap> {
        self.lock().get(&key(connector, partition)).cloned()
    }

    /// Every (partition, offset) of a connector.
    pub fn for_connector(&self, connector: &str) -> Vec<(JsonMap, JsonMap)> {
        self.lock()
            .iter()
            .filter_map(|(k, v)| {
                let parsed: Json = serde_json::from_str(k).ok()?;
                let arr = parsed.as_array()?;
                if arr.first()?.as_str()? != connector {
                    return None;
                }
                Some((arr.get(1)?.as_object()?.clone(), v.clone()))
            })
            .collect()
    }

    /// Records offsets (`None` removes) and writes the file durably.
    pub fn commit(&self, connector: &str, updates: Vec<(JsonMap, Option<JsonMap>)>) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let snapshot = {
            let mut map = self.lock();
            for (partition, offset) in updates {
                let k = key(connector, &partition);
                match offset {
                    Some(o) => map.insert(k, o),
                    None => map.remove(&k),
                };
            }
            serde_json::to_vec_pretty(&*map).map_err(|e| Error::Task(e.to_string()))?
        };
        let Some(path) = &self.path else {
            return Ok(());
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &snapshot)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Error::io(path.display(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_persist_per_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-yet").join("offsets");
        let store = OffsetStore::open(Some(path.clone())).unwrap();
        let mut p = JsonMap::new();
        p.insert("filename".into(), json!("/a"));
        let mut o = JsonMap::new();
        o.insert("position".into(), json!(42));
        store
            .commit("c1", vec![(p.clone(), Some(o.clone()))])
            .unwrap();
        let store = OffsetStore::open(Some(path)).unwrap();
        assert_eq!(store.get("c1", &p), Some(o.clone()));
        assert_eq!(store.get("c2", &p), None);
        assert_eq!(store.for_connector("c1"), vec![(p.clone(), o)]);
        store.commit("c1", vec![(p.clone(), None)]).unwrap();
        assert!(store.for_connector("c1").is_empty());
    }
}
