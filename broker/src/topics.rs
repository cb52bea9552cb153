//! The topic registry: which topics exist, their ids, partition counts and config
//! overrides, persisted as one properties file per topic under `<data>/__meta/topics`,
//! with each partition's log in `<data>/<topic>-<partition>` as Kafka lays them out.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use crate::config::{parse_properties, BrokerConfig, TopicConfig};
use crate::durable;
use crate::error::{Error, ErrorCode, Result};
use crate::log::PartitionLog;

/// Kafka's limit on topic name length.
const MAX_NAME_LEN: usize = 249;

/// Checks a topic name the way Kafka's `Topic.validate` does.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidTopic {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    overrides: RwLock<BTreeMap<String, String>>,
    partitions: RwLock<Vec<Arc<PartitionLog>>>,
}

impl Topic {
    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        crate::sync::read(&self.partitions).clone()
    }
    pub fn partition(&self, p: i32) -> Option<Arc<PartitionLog>> {
        let parts = crate::sync::read(&self.partitions);
        usize::try_from(p).ok().and_then(|i| parts.get(i).cloned())
    }
    pub fn partition_count(&self) -> i32 {
        crate::sync::read(&self.partitions).len() as i32
    }
    pub fn overrides(&self) -> BTreeMap<String, String> {
        crate::sync::read(&self.overrides).clone()
    }
}

#[derive(Debug)]
pub struct TopicRegistry {
    data_dir: PathBuf,
    meta_dir: PathBuf,
    config: Arc<BrokerConfig>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
}

impl TopicRegistry {
    /// Loads every topic under the data directory. `recover` re-validates active
    /// segments (after an unclean shutdown).
    pub fn open(config: Arc<BrokerConfig>, recover: bool) -> Result<TopicRegistry> {
        let data_dir = config.data_dir.clone();
        let meta_dir = data_dir.join("__meta").join("topics");
        durable::create_dir_all(&meta_dir)?;
        let registry = TopicRegistry {
            data_dir,
            meta_dir: meta_dir.clone(),
            config,
            topics: RwLock::new(BTreeMap::new()),
        };
        for entry in fs::read_dir(&meta_dir).map_err(|e| Error::io(meta_dir.display(), e))? {
            let path = entry.map_err(|e| Error::io(meta_dir.display(), e))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".properties"))
            else {
                continue;
            };
            let text = fs::read_to_string(&path).map_err(|e| Error::io(path.display(), e))?;
            let props = parse_properties(&text);
            let id = props
                .get("topic.id")
                .and_then(|v| Uuid::parse_str(v).ok())
                .unwrap_or_else(Uuid::new_v4);
            let count: i32 = props
                .get("partitions")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let internal = props.get("internal").is_some_and(|v| v == "true");
            let overrides: BTreeMap<String, String> = props
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("config.")
                        .map(|k| (k.to_string(), v.clone()))
                })
                .collect();
            let topic = registry.open_topic(name, id, internal, count, overrides, recover)?;
            registry.write().insert(name.to_string(), topic);
        }
        Ok(registry)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Topic>>> {
        crate::sync::write(&self.topics)
    }
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        crate::sync::read(&self.topics)
    }

    fn partition_dir(&self, topic: &str, p: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{p}"))
    }

    fn open_topic(
        &self,
        name: &str,
        id: Uuid,
        internal: bool,
        count: i32,
        overrides: BTreeMap<String, String>,
        recover: bool,
    ) -> Result<Arc<Topic>> {
        let config = Arc::new(self.config.topic_config(&overrides)?);
        let partitions = (0..count)
            .map(|p| {
                PartitionLog::open(
                    &self.partition_dir(name, p),
                    name,
                    p,
                    config.clone(),
                    recover,
                )
                .map(Arc::new)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Topic {
            name: name.to_string(),
            id,
            internal,
            overrides: RwLock::new(overrides),
            partitions: RwLock::new(partitions),
        }))
    }

    fn persist(&self, topic: &Topic) -> Result<()> {
        let mut text = format!(
            "topic.id={}\npartitions={}\ninternal={}\n",
            topic.id,
            topic.partition_count(),
            topic.internal
        );
        for (k, v) in topic.overrides() {
            text.push_str(&format!("config.{k}={v}\n"));
        }
        durable::write_atomic(
            &self.meta_dir.join(format!("{}.properties", topic.name)),
            text.as_bytes(),
        )
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.read().values().cloned().collect()
    }

    pub fn partition(&self, topic: &str, p: i32) -> Option<Arc<PartitionLog>> {
        self.get(topic)?.partition(p)
    }

    pub fn all_partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.list().iter().flat_map(|t| t.partitions()).collect()
    }

    /// Checks a would-be topic without creating it (CreateTopics' validate_only).
    pub fn validate_new(
        &self,
        name: &str,
        partitions: i32,
        overrides: &BTreeMap<String, String>,
    ) -> Result<()> {
        validate_topic_name(name)?;
        if self.read().contains_key(name) {
            return Err(Error::TopicExists(name.to_string()));
        }
        if partitions < 1 {
            return Err(Error::Kafka(
                ErrorCode::InvalidPartitions,
                format!("{partitions} partitions: must be at least 1"),
            ));
        }
        TopicConfig::validate_overrides(overrides)
    }

    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<Arc<Topic>> {
        self.validate_new(name, partitions, &overrides)?;
        let mut topics = self.write();
        if topics.contains_key(name) {
            return Err(Error::TopicExists(name.to_string()));
        }
        let topic =
            self.open_topic(name, Uuid::new_v4(), internal, partitions, overrides, false)?;
        self.persist(&topic)?;
        topics.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let topic = self
            .write()
            .remove(name)
            .ok_or_else(|| Error::UnknownTopicOrPartition(name.to_string()))?;
        let meta = self.meta_dir.join(format!("{name}.properties"));
        durable::remove_file(&meta)?;
        for log in topic.partitions() {
            // Readers holding open files finish; the directory goes now.
            if let Err(e) = fs::remove_dir_all(log.dir()) {
                tracing::warn!(dir = %log.dir().display(), error = %e, "could not remove a deleted partition");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    pub fn add_partitions(&self, name: &str, total: i32) -> Result<()> {
        let topic = self
            .get(name)
            .ok_or_else(|| Error::UnknownTopicOrPartition(name.to_string()))?;
        let current = topic.partition_count();
        if total <= current {
            return Err(Error::Kafka(
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name} has {current} partitions; the new count {total} must be larger"
                ),
            ));
        }
        let config = Arc::new(self.config.topic_config(&topic.overrides())?);
        let mut parts = crate::sync::write(&topic.partitions);
        for p in current..total {
            parts.push(Arc::new(PartitionLog::open(
                &self.partition_dir(name, p),
                name,
                p,
                config.clone(),
                false,
            )?));
        }
        drop(parts);
        self.persist(&topic)
    }

    /// Replaces (or with `incremental`, edits) a topic's overrides.
    pub fn set_overrides(&self, name: &str, overrides: BTreeMap<String, String>) -> Result<()> {
        let topic = self
            .get(name)
            .ok_or_else(|| Error::UnknownTopicOrPartition(name.to_string()))?;
        TopicConfig::validate_overrides(&overrides)?;
        let config = Arc::new(self.config.topic_config(&overrides)?);
        *crate::sync::write(&topic.overrides) = overrides;
        for log in topic.partitions() {
            log.set_config(config.clone());
        }
        self.persist(&topic)
    }

    pub fn broker_config(&self) -> &BrokerConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "orders.v1", "x_y-z", &"a".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "bad/name", "sp ace", &"a".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_alter_reopen_delete() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(
            BrokerConfig::default()
                .with_property("log.dirs", dir.path().display().to_string())
                .unwrap(),
        );
        let reg = TopicRegistry::open(config.clone(), false).unwrap();
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "1000".to_string());
        reg.create("t", 2, o, false).unwrap();
        assert!(matches!(
            reg.create("t", 1, BTreeMap::new(), false),
            Err(Error::TopicExists(_))
        ));
        reg.add_partitions("t", 4).unwrap();
        assert!(reg.add_partitions("t", 3).is_err());
        drop(reg);
        let reg = TopicRegistry::open(config, false).unwrap();
        let t = reg.get("t").unwrap();
        assert_eq!(t.partition_count(), 4);
        assert_eq!(t.partition(3).unwrap().config().retention_ms, 1000);
        reg.delete("t").unwrap();
        assert!(reg.get("t").is_none());
        assert!(!dir.path().join("t-0").exists());
    }
}
