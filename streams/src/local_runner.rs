//! [`LocalRunner`]: runs a topology in the calling thread without a broker — Kafka's
//! `TopologyTestDriver` for unit tests (that name is an alias of this type), and what
//! KSQL's transient push queries run on. Records are piped into input topics and
//! processed at once, one task per sub-topology (partition
//! 0); records written to repartition topics are fed back immediately; output records
//! wait in per-topic queues; stores can be read; wall-clock time is advanced by hand.
//! Stores are kept in memory.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::{Output, RawRecord, Record};
use crate::runtime::query::QueryableStores;
use crate::runtime::task::{Task, TaskId};
use crate::serde::Serde;
use crate::state::StoreHandle;
use crate::topology::Topology;

pub struct LocalRunner {
    application_id: String,
    tasks: Vec<Task>,
    readers: HashMap<String, Vec<usize>>,
    globals: HashMap<String, (StoreHandle, usize)>,
    topology: Topology,
    outputs: HashMap<String, VecDeque<Output>>,
    next_offset: HashMap<String, i64>,
    wall_clock_ms: i64,
}

impl LocalRunner {
    pub fn new(topology: Topology) -> Result<LocalRunner> {
        LocalRunner::with_application_id(topology, "topology-test-driver")
    }

    pub fn with_application_id(topology: Topology, application_id: &str) -> Result<LocalRunner> {
        let config = crate::StreamsConfig::new(application_id, "localhost:9092")?;
        LocalRunner::with_config(topology, &config)
    }

    /// A driver configured as an application would be (Kafka's
    /// `new TopologyTestDriver(topology, props)`): `application.id`, the record cache's
    /// size, `default.deserialization.exception.handler`. Nothing connects anywhere.
    pub fn with_config(topology: Topology, config: &crate::StreamsConfig) -> Result<LocalRunner> {
        topology.validate()?;
        let application_id = config.application_id.as_str();
        let mut global_handles = HashMap::new();
        let mut globals = HashMap::new();
        for (i, g) in topology.globals.iter().enumerate() {
            let h = StoreHandle::open(&g.store, None)?;
            global_handles.insert(g.store.name.clone(), h.clone());
            globals.insert(g.topic.clone(), (h, i));
        }
        let global_handles = Arc::new(global_handles);
        let mut tasks = Vec::new();
        let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
        for sub in &topology.subtopologies {
            let mut stores = HashMap::new();
            for spec in &sub.stores {
                stores.insert(spec.name.clone(), StoreHandle::open(spec, None)?);
            }
            let id = TaskId {
                subtopology: sub.id,
                partition: 0,
            };
            // Kafka's driver keeps the record cache but commits (so flushes it) after
            // every record: caching never holds an update back here.
            let mut task = Task::new(
                id,
                sub,
                application_id,
                stores,
                global_handles.clone(),
                config.cache_max_bytes,
            );
            task.ctx.skip_bad_records = config.skip_bad_records;
            for t in task.topics() {
                readers.entry(t.clone()).or_default().push(tasks.len());
            }
            tasks.push(task);
        }
        Ok(LocalRunner {
            application_id: application_id.to_string(),
            tasks,
            readers,
            globals,
            topology,
            outputs: HashMap::new(),
            next_offset: HashMap::new(),
            wall_clock_ms: 0,
        })
    }

    /// Pipes a record into a topic and processes it (and what it causes) to the end.
    pub fn pipe<K: Serde, V: Serde>(
        &mut self,
        topic: &str,
        key: K,
        value: V,
        timestamp: i64,
    ) -> Result<()> {
        self.pipe_raw(topic, key.to_bytes(), value.to_bytes(), timestamp)
    }

    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
    ) -> Result<()> {
        let offset = self.take_offset(topic);
        self.pipe_record(RawRecord {
            topic: topic.to_string(),
            partition: 0,
            offset,
            key,
            value,
            timestamp,
            headers: Vec::new(),
        })
    }

    fn take_offset(&mut self, topic: &str) -> i64 {
        let next = self.next_offset.entry(topic.to_string()).or_insert(0);
        *next += 1;
        *next - 1
    }

    /// Pipes a record as it was read from a topic — its partition, offset and headers
    /// kept (what processors see as the record's metadata) — and processes it (and what
    /// it causes) to the end. Records it causes get partition 0 and the driver's
    /// offsets.
    pub fn pipe_record(&mut self, first: RawRecord) -> Result<()> {
        let input = first.topic.clone();
        let mut queue = VecDeque::new();
        self.process_raw(&first, &mut queue, true)?;
        self.drain(queue, |t| t == input)
    }

    /// Pipes records as read from topics (metadata kept, as [`pipe_record`]) the way a
    /// stream thread handles one poll's records: each task processes all of them — a
    /// batching processor gets them as one batch — then commits; what they cause is
    /// processed after.
    ///
    /// [`pipe_record`]: LocalRunner::pipe_record
    pub fn pipe_records(&mut self, records: &[RawRecord]) -> Result<()> {
        let mut queue = VecDeque::new();
        for r in records {
            self.process_raw(r, &mut queue, false)?;
        }
        for task in &mut self.tasks {
            task.flush_cache()?;
            queue.extend(task.take_output());
            task.changelog_batch();
        }
        self.drain(queue, |t| records.iter().any(|r| r.topic == t))
    }

    /// Processes queued outputs (and what they cause) to the end, keeping those for
    /// topics no task reads — except the input topics — for `read_output`.
    fn drain(&mut self, mut queue: VecDeque<Output>, input: impl Fn(&str) -> bool) -> Result<()> {
        while let Some(o) = queue.pop_front() {
            let offset = self.take_offset(&o.topic);
            let raw = RawRecord {
                topic: o.topic.clone(),
                partition: 0,
                offset,
                key: o.key.clone(),
                value: o.value.clone(),
                timestamp: o.timestamp,
                headers: o.headers.clone(),
            };
            let internal = self.process_raw(&raw, &mut queue, true)?;
            if !internal && !input(&o.topic) {
                self.outputs
                    .entry(o.topic.clone())
                    .or_default()
                    .push_back(o);
            }
        }
        Ok(())
    }

    /// Hands `raw` to the global table and the tasks reading its topic, and with
    /// `commit` queues what they write (after flushing their caches and batches);
    /// whether the topic is one of the application's internal topics.
    fn process_raw(
        &mut self,
        raw: &RawRecord,
        queue: &mut VecDeque<Output>,
        commit: bool,
    ) -> Result<bool> {
        if let Some((h, i)) = self.globals.get(&raw.topic) {
            if let Some((k, v)) = (self.topology.globals[*i].apply)(raw) {
                let mut s = h.lock();
                match v {
                    Some(v) => s.put(&k, &v)?,
                    None => s.delete(&k)?,
                }
            }
        }
        let readers = self.readers.get(&raw.topic).cloned().unwrap_or_default();
        let internal =
            !readers.is_empty() && raw.topic.starts_with(&format!("{}-", self.application_id));
        for i in readers {
            let task = &mut self.tasks[i];
            task.process(raw)?;
            if commit {
                task.flush_cache()?;
                queue.extend(task.take_output());
                // The driver has no changelogs: what a commit would write is dropped.
                task.changelog_batch();
            }
        }
        Ok(internal)
    }

    /// The next record written to `topic`, if any.
    pub fn read_output<K: Serde, V: Serde>(&mut self, topic: &str) -> Result<Option<Record<K, V>>> {
        let Some(o) = self.outputs.get_mut(topic).and_then(VecDeque::pop_front) else {
            return Ok(None);
        };
        Ok(Some(Record {
            key: K::from_bytes(o.key.as_deref())?,
            value: V::from_bytes(o.value.as_deref())?,
            timestamp: o.timestamp,
            headers: o.headers,
        }))
    }

    /// Every record written to `topic` not read yet.
    pub fn read_all<K: Serde, V: Serde>(&mut self, topic: &str) -> Result<Vec<Record<K, V>>> {
        let mut out = Vec::new();
        while let Some(r) = self.read_output(topic)? {
            out.push(r);
        }
        Ok(out)
    }

    /// (key, value) pairs written to `topic` not read yet.
    pub fn read_key_values<K: Serde, V: Serde>(&mut self, topic: &str) -> Result<Vec<(K, V)>> {
        Ok(self
            .read_all(topic)?
            .into_iter()
            .map(|r: Record<K, V>| (r.key, r.value))
            .collect())
    }

    /// Moves the wall clock on and runs the wall-clock punctuations now due.
    pub fn advance_wall_clock_time(&mut self, by: Duration) -> Result<()> {
        self.wall_clock_ms += i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let now = self.wall_clock_ms;
        let mut produced = Vec::new();
        for task in &mut self.tasks {
            task.punctuate_wall_clock(now)?;
            produced.extend(task.take_output());
            task.changelog_batch();
        }
        for o in produced {
            self.outputs
                .entry(o.topic.clone())
                .or_default()
                .push_back(o);
        }
        Ok(())
    }

    /// Records dropped for arriving after their window's grace period.
    /// Records operators skipped: null keys, null values an aggregation ignores.
    pub fn dropped_records(&self) -> u64 {
        self.tasks.iter().map(Task::dropped_records).sum()
    }

    pub fn dropped_late_records(&self) -> u64 {
        self.tasks.iter().map(Task::dropped_late_records).sum()
    }
}

impl QueryableStores for LocalRunner {
    fn store_handles(&self, name: &str) -> Result<Vec<StoreHandle>> {
        let mut out: Vec<StoreHandle> = self
            .tasks
            .iter()
            .filter_map(|t| t.ctx.stores.get(name).cloned())
            .collect();
        if let Some((h, _)) = self
            .globals
            .values()
            .find(|(_, i)| self.topology.globals[*i].store.name == name)
        {
            out.push(h.clone());
        }
        if out.is_empty() {
            return Err(Error::UnknownStore(name.to_string()));
        }
        Ok(out)
    }
}
