//! Source offsets, keyed `["<connector>", {partition}]` (Kafka Connect's key format):
//! in standalone mode a JSON file (`offset.storage.file.filename`), in distributed mode
//! the compacted topic `offset.storage.topic` that every worker reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

use super::kafka_log::{KafkaLog, LogSpec};
use crate::api::JsonMap;
use crate::error::{Error, Result};

type Map = Arc<Mutex<BTreeMap<String, JsonMap>>>;

enum Backend {
    File(Option<PathBuf>),
    Topic(KafkaLog),
}

pub struct OffsetStore {
    backend: Backend,
    offsets: Map,
}

impl std::fmt::Debug for OffsetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::File(p) => format!("file {p:?}"),
            Backend::Topic(l) => format!("topic {}", l.topic()),
        };
        f.debug_struct("OffsetStore")
            .field("backend", &backend)
            .finish()
    }
}

/// Re-serializes a key read from the topic, so keys written by other tools compare equal.
fn normalize(raw: &[u8]) -> Option<String> {
    let parsed: Json = serde_json::from_slice(raw).ok()?;
    let arr = parsed.as_array()?;
    Some(key(arr.first()?.as_str()?, arr.get(1)?.as_object()?))
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
            backend: Backend::File(path),
            offsets: Arc::new(Mutex::new(offsets)),
        })
    }

    /// Reads the offsets topic to its end and keeps following it.
    pub async fn open_topic(client: rdkafka::ClientConfig, spec: LogSpec) -> Result<OffsetStore> {
        let offsets: Map = Arc::default();
        let map = offsets.clone();
        let apply = Box::new(move |_offset, k: &[u8], v: Option<&[u8]>| {
            let Some(k) = normalize(k) else {
                tracing::warn!("skipping an offsets record whose key is not [name, {{partition}}]");
                return;
            };
            let mut m = crate::sync::lock(&map);
            match v.and_then(|v| serde_json::from_slice::<JsonMap>(v).ok()) {
                Some(o) => m.insert(k, o),
                None => m.remove(&k),
            };
        });
        let log = KafkaLog::start(client, spec, apply).await?;
        Ok(OffsetStore {
            backend: Backend::Topic(log),
            offsets,
        })
    }

    /// Waits until offsets other workers committed are visible here (a no-op for a file).
    pub async fn read_to_end(&self) -> Result<()> {
        match &self.backend {
            Backend::File(_) => Ok(()),
            Backend::Topic(log) => log.read_to_end().await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, JsonMap>> {
        crate::sync::lock(&self.offsets)
    }

    /// The offsets topic (distributed mode); `None` for a file.
    pub fn topic(&self) -> Option<&str> {
        match &self.backend {
            Backend::File(_) => None,
            Backend::Topic(log) => Some(log.topic()),
        }
    }

    /// Takes in offsets another producer wrote to the topic (an exactly-once task's
    /// transaction), so this worker's tasks see them before the reader applies them.
    pub fn remember(&self, connector: &str, updates: &[(JsonMap, JsonMap)]) {
        let mut map = self.lock();
        for (partition, offset) in updates {
            map.insert(key(connector, partition), offset.clone());
        }
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

    /// Records offsets (`None` removes): the file is rewritten durably, or each offset is
    /// written to the topic and acknowledged.
    pub async fn commit(
        &self,
        connector: &str,
        updates: Vec<(JsonMap, Option<JsonMap>)>,
    ) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        if let Backend::Topic(log) = &self.backend {
            for (partition, offset) in &updates {
                let value = offset.as_ref().map(|o| Json::Object(o.clone()).to_string());
                log.send(
                    &key(connector, partition),
                    value.as_deref().map(str::as_bytes),
                )
                .await?;
            }
        }
        let offsets = self.offsets.clone();
        let path = match &self.backend {
            Backend::File(p) => p.clone(),
            Backend::Topic(_) => None,
        };
        let connector = connector.to_string();
        tokio::task::spawn_blocking(move || write_file(&offsets, path, &connector, updates))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }
}

fn write_file(
    offsets: &Map,
    path: Option<PathBuf>,
    connector: &str,
    updates: Vec<(JsonMap, Option<JsonMap>)>,
) -> Result<()> {
    // Held through the write: tasks committing at once must not interleave their
    // writes of the one temporary file.
    let mut map = crate::sync::lock(offsets);
    for (partition, offset) in updates {
        let k = key(connector, &partition);
        match offset {
            Some(o) => map.insert(k, o),
            None => map.remove(&k),
        };
    }
    let Some(path) = &path else {
        return Ok(());
    };
    let snapshot = serde_json::to_vec_pretty(&*map).map_err(|e| Error::Task(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &snapshot)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offsets_persist_per_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-yet").join("offsets");
        let store = OffsetStore::open(Some(path.clone())).unwrap();
        let mut p = JsonMap::new();
        p.insert("filename".into(), json!("/a"));
        let mut o = JsonMap::new();
        o.insert("position".into(), json!(42));
        store
            .commit("c1", vec![(p.clone(), Some(o.clone()))])
            .await
            .unwrap();
        let store = OffsetStore::open(Some(path)).unwrap();
        assert_eq!(store.get("c1", &p), Some(o.clone()));
        assert_eq!(store.get("c2", &p), None);
        assert_eq!(store.for_connector("c1"), vec![(p.clone(), o)]);
        store.commit("c1", vec![(p.clone(), None)]).await.unwrap();
        assert!(store.for_connector("c1").is_empty());
    }
}
