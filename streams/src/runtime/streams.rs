//! `KafkaStreams`: runs a topology with `num.stream.threads` stream threads in the
//! consumer group `application.id`. Several instances with the same id split the
//! partitions; when one goes away its tasks move to the others and are restored from
//! their changelogs. Global tables are read whole before the threads start and then
//! followed. Stores of this instance's tasks can be queried while it runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::config::StreamsConfig;
use super::query::QueryableStores;
use super::restore::StateRestoreListener;
use super::task::Task;
use super::{thread, topics};
use crate::error::{Error, Result};
use crate::record::RawRecord;
use crate::state::StoreHandle;
use crate::topology::context::PartitionsOf;
use crate::topology::Topology;

/// Kafka Streams' application states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Rebalancing,
    Running,
    PendingShutdown,
    NotRunning,
    Error,
}

pub(crate) struct Shared {
    pub topology: Topology,
    pub config: StreamsConfig,
    pub topic_to_sub: HashMap<String, usize>,
    pub global: Arc<HashMap<String, StoreHandle>>,
    pub partitions_of: PartitionsOf,
    pub stop: AtomicBool,
    pub restore_listener: Mutex<Option<Arc<dyn StateRestoreListener>>>,
    /// This instance's id (`kafka-streams-process-metadata`), set at start.
    pub process_id: String,
    registry: Mutex<HashMap<String, BTreeMap<i32, StoreHandle>>>,
    threads: Mutex<BTreeMap<String, State>>,
    error: Mutex<Option<String>>,
}

use crate::sync::lock;

impl Shared {
    pub fn register(&self, task: &Task) {
        let mut r = lock(&self.registry);
        for (name, h) in &task.ctx.stores {
            r.entry(name.clone())
                .or_default()
                .insert(task.id.partition, h.clone());
        }
    }
    /// Forgets a closed task's stores — unless another thread's task of the same
    /// partition registered its own meanwhile (a rebalance moves tasks between threads).
    pub fn unregister(&self, task: &Task) {
        let mut r = lock(&self.registry);
        for (name, h) in &task.ctx.stores {
            if let Some(m) = r.get_mut(name) {
                if m.get(&task.id.partition)
                    .is_some_and(|registered| registered.same(h))
                {
                    m.remove(&task.id.partition);
                }
            }
        }
    }
    pub fn thread_rebalancing(&self, name: &str) {
        lock(&self.threads).insert(name.to_string(), State::Rebalancing);
    }
    pub fn thread_running(&self, name: &str) {
        lock(&self.threads).insert(name.to_string(), State::Running);
    }
}

pub struct KafkaStreams {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    global_thread: Option<JoinHandle<()>>,
    state: State,
}

/// Reads the global tables' topics into their stores, to the end, then follows them.
struct GlobalReader {
    consumer: BaseConsumer,
    targets: HashMap<String, (StoreHandle, usize)>,
}

impl GlobalReader {
    fn apply(&self, topology: &Topology, m: &rdkafka::message::BorrowedMessage<'_>) -> Result<()> {
        let Some((h, i)) = self.targets.get(m.topic()) else {
            return Ok(());
        };
        let raw = RawRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis().unwrap_or(0),
            headers: Vec::new(),
        };
        if let Some((k, v)) = (topology.globals[*i].apply)(&raw) {
            let mut s = h.lock();
            match v {
                Some(v) => s.put(&k, &v)?,
                None => s.delete(&k)?,
            }
        }
        Ok(())
    }

    fn bootstrap(&self, topology: &Topology) -> Result<()> {
        let mut ends: HashMap<(String, i32), i64> = HashMap::new();
        for t in self.targets.keys() {
            let md = self
                .consumer
                .fetch_metadata(Some(t), Duration::from_secs(30))?;
            for p in md.topics().iter().flat_map(|mt| mt.partitions()) {
                let (_, high) =
                    self.consumer
                        .fetch_watermarks(t, p.id(), Duration::from_secs(30))?;
                if high > 0 {
                    ends.insert((t.clone(), p.id()), high);
                }
            }
        }
        while !ends.is_empty() {
            match self.consumer.poll(Duration::from_secs(30)) {
                Some(Ok(m)) => {
                    self.apply(topology, &m)?;
                    let key = (m.topic().to_string(), m.partition());
                    if ends.get(&key).is_some_and(|end| m.offset() + 1 >= *end) {
                        ends.remove(&key);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(Error::Runtime(
                        "reading global tables: no progress for 30 s".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

impl KafkaStreams {
    pub fn new(topology: Topology, config: StreamsConfig) -> KafkaStreams {
        let app = config.application_id.clone();
        let topic_to_sub = topology
            .subtopologies
            .iter()
            .flat_map(|s| {
                let app = app.clone();
                s.topics().into_iter().map(move |t| (t.resolve(&app), s.id))
            })
            .collect();
        KafkaStreams {
            shared: Arc::new(Shared {
                topology,
                config,
                topic_to_sub,
                global: Arc::new(HashMap::new()),
                partitions_of: Arc::new(|_| None),
                stop: AtomicBool::new(false),
                restore_listener: Mutex::new(None),
                process_id: String::new(),
                registry: Mutex::new(HashMap::new()),
                threads: Mutex::new(BTreeMap::new()),
                error: Mutex::new(None),
            }),
            threads: Vec::new(),
            global_thread: None,
            state: State::Created,
        }
    }

    /// Observes store restoration (call before `start`).
    pub fn set_state_restore_listener(&mut self, listener: Arc<dyn StateRestoreListener>) {
        *lock(&self.shared.restore_listener) = Some(listener);
    }

    /// Creates the internal topics, loads the global tables and starts the threads.
    /// Blocks while it does (call it from a thread that may block).
    pub fn start(&mut self) -> Result<()> {
        if self.state != State::Created {
            return Err(Error::Runtime(format!(
                "cannot start from state {:?}",
                self.state
            )));
        }
        self.shared.topology.validate()?;
        let counts = topics::prepare(&self.shared.topology, &self.shared.config)?;
        let (global, global_reader) = self.open_globals()?;
        let counts = Arc::new(Mutex::new(counts));
        let lookup: BaseConsumer = self.shared.config.client("admin").create()?;
        let lookup = Arc::new(lookup);
        let partitions_of: PartitionsOf = Arc::new(move |topic: &str| {
            if let Some(n) = lock(&counts).get(topic).copied().filter(|n| *n > 0) {
                return Some(n);
            }
            let found = topics::partition_counts(&lookup, &[topic.to_string()]).ok()?;
            let n = found.get(topic).copied().filter(|n| *n > 0)?;
            lock(&counts).insert(topic.to_string(), n);
            Some(n)
        });
        // Nothing else holds the Arc before start: the threads are not running yet.
        let shared = Arc::get_mut(&mut self.shared)
            .ok_or_else(|| Error::Runtime("KafkaStreams is shared before start".into()))?;
        shared.global = Arc::new(global);
        shared.partitions_of = partitions_of;
        let config = &shared.config;
        shared.process_id =
            super::process::process_id(&config.state_dir.join(&config.application_id))?;
        if let Some(reader) = global_reader {
            reader.bootstrap(&self.shared.topology)?;
            let shared = self.shared.clone();
            self.global_thread = Some(
                std::thread::Builder::new()
                    .name("global-stream-thread".into())
                    .spawn(move || {
                        while !shared.stop.load(Ordering::Relaxed) {
                            if let Some(Ok(m)) = reader.consumer.poll(Duration::from_millis(100)) {
                                if let Err(e) = reader.apply(&shared.topology, &m) {
                                    tracing::error!(error = %e, "global table update failed");
                                }
                            }
                        }
                    })
                    .map_err(|e| Error::io("global stream thread", e))?,
            );
        }
        for i in 1..=self.shared.config.num_stream_threads {
            let name = format!("StreamThread-{i}");
            self.shared.thread_rebalancing(&name);
            let shared = self.shared.clone();
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    // A panic in a processor (user code, or a bug of ours) ends this
                    // thread as an error would: state ERROR with the reason, instead of
                    // a thread gone while the application still says RUNNING.
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        thread::run(shared.clone(), name.clone())
                    }))
                    .unwrap_or_else(|panic| Err(Error::Runtime(panic_message(&*panic))));
                    if let Err(e) = run {
                        tracing::error!(thread = %name, error = %e, "stream thread failed");
                        lock(&shared.error).get_or_insert_with(|| format!("{name}: {e}"));
                        lock(&shared.threads).insert(name, State::Error);
                    } else {
                        lock(&shared.threads).insert(name, State::NotRunning);
                    }
                })
                .map_err(|e| Error::io("stream thread", e))?;
            self.threads.push(handle);
        }
        self.state = State::Rebalancing;
        Ok(())
    }

    fn open_globals(&self) -> Result<(HashMap<String, StoreHandle>, Option<GlobalReader>)> {
        let topology = &self.shared.topology;
        if topology.globals.is_empty() {
            return Ok((HashMap::new(), None));
        }
        let config = &self.shared.config;
        let dir = config.state_dir.join(&config.application_id).join("global");
        let mut stores = HashMap::new();
        let mut targets = HashMap::new();
        let consumer: BaseConsumer = config.assign_only_consumer("global.consumer").create()?;
        let mut tpl = TopicPartitionList::new();
        for (i, g) in topology.globals.iter().enumerate() {
            let h = StoreHandle::open(&g.store, Some(&dir))?;
            // The topic is the store's changelog: a local copy starts over.
            h.lock().clear()?;
            stores.insert(g.store.name.clone(), h.clone());
            targets.insert(g.topic.clone(), (h, i));
            let md = consumer.fetch_metadata(Some(&g.topic), Duration::from_secs(30))?;
            for p in md.topics().iter().flat_map(|mt| mt.partitions()) {
                tpl.add_partition_offset(&g.topic, p.id(), Offset::Beginning)?;
            }
        }
        consumer.assign(&tpl)?;
        Ok((stores, Some(GlobalReader { consumer, targets })))
    }

    /// The application's state: RUNNING once every thread has its tasks, ERROR when one
    /// failed (see [`last_error`](Self::last_error)).
    pub fn state(&self) -> State {
        if matches!(
            self.state,
            State::Created | State::NotRunning | State::PendingShutdown
        ) {
            return self.state;
        }
        let threads = lock(&self.shared.threads);
        if threads.values().any(|s| *s == State::Error) {
            State::Error
        } else if threads.values().all(|s| *s == State::Running) {
            State::Running
        } else {
            State::Rebalancing
        }
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.error).clone()
    }

    /// Stops the threads: each commits what it processed, then leaves the group.
    pub fn close(&mut self) -> Result<()> {
        self.state = State::PendingShutdown;
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(t) = self.global_thread.take() {
            let _ = t.join();
        }
        self.state = State::NotRunning;
        match self.last_error() {
            Some(e) => Err(Error::Runtime(e)),
            None => Ok(()),
        }
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            let _ = self.close();
        }
    }
}

impl KafkaStreams {
    /// This instance's instances of the task store `name`, by partition (Kafka
    /// Streams' `StoreQueryParameters.withPartition`): a caller that needs the whole
    /// store checks that every partition is here (none is while it restores).
    pub fn store_partitions(&self, name: &str) -> BTreeMap<i32, StoreHandle> {
        lock(&self.shared.registry)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// A topic's partition count as the application knows it (its input and
    /// internal topics' counts are known from the start, without a request).
    pub fn partitions_of(&self, topic: &str) -> Option<i32> {
        (self.shared.partitions_of)(topic)
    }
}

/// Interactive queries read the stores of this instance's tasks and its global tables.
impl QueryableStores for KafkaStreams {
    fn store_handles(&self, name: &str) -> Result<Vec<StoreHandle>> {
        if let Some(h) = self.shared.global.get(name) {
            return Ok(vec![h.clone()]);
        }
        let r = lock(&self.shared.registry);
        let handles: Vec<StoreHandle> = r
            .get(name)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if handles.is_empty() {
            return Err(Error::UnknownStore(name.to_string()));
        }
        Ok(handles)
    }
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("a processor panicked: {text}")
}
