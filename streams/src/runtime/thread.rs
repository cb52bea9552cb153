//! A stream thread: one consumer in the application's group, the tasks of the
//! partitions assigned to it, one idempotent producer. It polls, processes record by
//! record, and every `commit.interval.ms` commits: wait until every produced record is
//! acknowledged, write the changelog batches and wait again, then commit the input
//! offsets. A rebalance commits first; tasks reassigned to the same thread keep their
//! state, new ones are restored from their changelogs.
//!
//! Under `processing.guarantee=exactly_once_v2` the producer is transactional (id
//! `<application.id>-<process id>-<thread index>`, KIP-447): a transaction is always
//! open, and a commit sends the changelog batches, adds the input offsets with
//! `send_offsets_to_transaction` and commits — outputs, state and progress become
//! visible to `read_committed` readers together or not at all. The consumer and the
//! restore consumer read committed data only.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::partition_group::{EndOffsets, PartitionGroup};
use super::restore;
use super::streams::Shared;
use super::task::{Task, TaskId};
use crate::error::{Error, Result};
use crate::record::{Output, RawRecord};
use crate::state::StoreHandle;

const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
/// Records processed between checks of the clock.
const POLL_BATCH: usize = 1000;

/// Remembers the first failed delivery.
#[derive(Default)]
pub(crate) struct DeliveryCtx {
    failure: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCtx {}

impl ProducerContext for DeliveryCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            let mut f = crate::sync::lock(&self.failure);
            if f.is_none() {
                *f = Some(format!("producing to {}: {e}", m.topic()));
            }
        }
    }
}

type Producer_ = ThreadedProducer<DeliveryCtx>;

#[derive(Default)]
struct ThreadState {
    tasks: BTreeMap<TaskId, Task>,
    /// Polled records not yet processed, per task.
    buffered: BTreeMap<TaskId, PartitionGroup>,
    /// Tasks taken away by a rebalance, kept in case they come back.
    suspended: BTreeMap<TaskId, Task>,
    error: Option<Error>,
}

struct ThreadCtx {
    shared: Arc<Shared>,
    name: String,
    state: Arc<Mutex<ThreadState>>,
    producer: Arc<Producer_>,
    restore: BaseConsumer,
}

fn txn_error(what: &str, e: rdkafka::error::KafkaError) -> Error {
    Error::Runtime(format!("{what} the transaction: {e}"))
}

use crate::sync::lock;

impl ClientContext for ThreadCtx {}

impl ConsumerContext for ThreadCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            self.shared.thread_rebalancing(&self.name);
            let mut st = lock(&self.state);
            if st.error.is_none() {
                let eos = self.shared.config.exactly_once();
                if let Err(e) = commit(consumer, &self.producer, &mut st, eos) {
                    st.error = Some(e);
                }
            }
            let tasks = std::mem::take(&mut st.tasks);
            st.suspended.extend(tasks);
            // The consumer refetches from the committed offsets after the rebalance.
            st.buffered.clear();
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut st = lock(&self.state);
            if let Err(e) = self.assign(&mut st, tpl) {
                tracing::error!(thread = %self.name, error = %e, "taking over tasks failed");
                st.error = Some(e);
            }
            self.shared.thread_running(&self.name);
        }
    }
}

impl ThreadCtx {
    fn assign(&self, st: &mut ThreadState, tpl: &TopicPartitionList) -> Result<()> {
        let mut ids: Vec<TaskId> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                Some(TaskId {
                    subtopology: *self.shared.topic_to_sub.get(e.topic())?,
                    partition: e.partition(),
                })
            })
            .collect();
        ids.sort();
        ids.dedup();
        for id in &ids {
            if let Some(task) = st.suspended.remove(id) {
                st.tasks.insert(*id, task);
                continue;
            }
            let task = self.create_task(*id)?;
            st.tasks.insert(*id, task);
        }
        // Suspended tasks that went elsewhere are closed.
        for (id, task) in std::mem::take(&mut st.suspended) {
            self.shared.unregister(&task);
            tracing::info!(thread = %self.name, task = %id, "task closed");
        }
        tracing::info!(thread = %self.name, tasks = ?ids.iter().map(ToString::to_string).collect::<Vec<_>>(), "tasks assigned");
        Ok(())
    }

    fn create_task(&self, id: TaskId) -> Result<Task> {
        let shared = &self.shared;
        let sub = &shared.topology.subtopologies[id.subtopology];
        let dir = shared
            .config
            .state_dir
            .join(&shared.config.application_id)
            .join(id.to_string());
        let mut stores = HashMap::new();
        for spec in &sub.stores {
            stores.insert(spec.name.clone(), StoreHandle::open(spec, Some(&dir))?);
        }
        let mut task = Task::new(
            id,
            sub,
            &shared.config.application_id,
            stores,
            shared.global.clone(),
            shared.config.cache_max_bytes,
        );
        task.ctx.skip_bad_records = shared.config.skip_bad_records;
        task.ctx.partitions_of = shared.partitions_of.clone();
        let listener = lock(&shared.restore_listener).clone();
        restore::restore(&self.restore, &mut task, listener.as_deref())?;
        shared.register(&task);
        tracing::info!(thread = %self.name, task = %id, "task created");
        Ok(task)
    }
}

fn send(producer: &Producer_, o: &Output) -> Result<()> {
    let mut headers = OwnedHeaders::new();
    for (k, v) in &o.headers {
        headers = headers.insert(Header {
            key: k.as_str(),
            value: Some(v.as_slice()),
        });
    }
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&o.topic)
        .timestamp(o.timestamp)
        .headers(headers);
    if let Some(k) = &o.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &o.value {
        record = record.payload(v.as_slice());
    }
    if let Some(p) = o.partition {
        record = record.partition(p);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(Error::Runtime(format!("producing to {}: {e}", o.topic))),
        }
    }
}

/// Waits until every record sent has been acknowledged or has failed.
///
/// Not `Producer::flush`: it waits on the producer's event queue, whose delivery
/// reports the ThreadedProducer's polling thread takes first, so once the last report
/// was served it slept out its 100 ms poll — at every commit, which halved a query's
/// throughput. Here a zero-timeout flush sends what lingers, and the count of records
/// in flight (which includes reports not yet served) is watched until it is zero.
fn flush(producer: &Producer_) -> Result<()> {
    let deadline = Instant::now() + FLUSH_TIMEOUT;
    // Times out at once when records are in flight, as asked: that is not a failure.
    let _ = producer.flush(Duration::ZERO);
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(Error::Runtime(format!(
                "waiting for acknowledgements: {} records unacknowledged after {} s",
                producer.in_flight_count(),
                FLUSH_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    match lock(&producer.context().failure).take() {
        Some(f) => Err(Error::Runtime(f)),
        None => Ok(()),
    }
}

/// The next offset to read of every input partition of the thread's tasks.
fn consumed_offsets(st: &ThreadState) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for task in st.tasks.values() {
        for (topic, next) in &task.consumed {
            tpl.add_partition_offset(topic, task.id.partition, Offset::Offset(*next))?;
        }
    }
    Ok(tpl)
}

/// At least once: outputs acknowledged, then changelogs, then input offsets. Exactly
/// once: changelogs and input offsets join the open transaction, which commits.
fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    producer: &Producer_,
    st: &mut ThreadState,
    exactly_once: bool,
) -> Result<()> {
    // The record cache's folded updates are results of this commit's input.
    for task in st.tasks.values_mut() {
        task.flush_cache()?;
        for o in task.take_output() {
            send(producer, &o)?;
        }
    }
    if exactly_once {
        return commit_transaction(consumer, producer, st);
    }
    flush(producer)?;
    for task in st.tasks.values_mut() {
        for o in task.changelog_batch() {
            send(producer, &o)?;
        }
    }
    flush(producer)?;
    let tpl = consumed_offsets(st)?;
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            // The group moved on: the new owner resumes from the changelog markers.
            tracing::warn!(error = %e, "committing offsets failed");
        }
    }
    Ok(())
}

fn commit_transaction<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    producer: &Producer_,
    st: &mut ThreadState,
) -> Result<()> {
    for task in st.tasks.values_mut() {
        for o in task.changelog_batch() {
            send(producer, &o)?;
        }
    }
    let tpl = consumed_offsets(st)?;
    if tpl.count() > 0 {
        // The group's generation goes with the offsets: a member fenced by a
        // rebalance cannot commit them (KIP-447).
        let group = consumer
            .group_metadata()
            .ok_or_else(|| Error::Runtime("the consumer has no group metadata".into()))?;
        producer
            .send_offsets_to_transaction(&tpl, &group, FLUSH_TIMEOUT)
            .map_err(|e| txn_error("adding the input offsets to", e))?;
    }
    // Waiting for the acknowledgements here first: commit_transaction alone waits
    // for the ThreadedProducer's poll loop (every 100 ms) to serve them.
    flush(producer)?;
    producer
        .commit_transaction(FLUSH_TIMEOUT)
        .map_err(|e| txn_error("committing", e))?;
    producer
        .begin_transaction()
        .map_err(|e| txn_error("beginning", e))
}

fn raw(m: &rdkafka::message::BorrowedMessage<'_>) -> RawRecord {
    RawRecord::of_message(m)
}

pub(crate) fn run(shared: Arc<Shared>, name: String) -> Result<()> {
    let config = &shared.config;
    let eos = config.exactly_once();
    let mut producer_config = config.client("producer");
    producer_config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5");
    if eos {
        let index = name.rsplit('-').next().unwrap_or("1");
        producer_config.set(
            "transactional.id",
            format!("{}-{}-{index}", config.application_id, shared.process_id),
        );
        if !config.props.contains_key("producer.transaction.timeout.ms") {
            // Kafka Streams' default under exactly-once.
            producer_config.set("transaction.timeout.ms", "10000");
        }
    }
    let producer: Producer_ = producer_config.create_with_context(DeliveryCtx::default())?;
    if eos {
        // Fences this thread's previous life and aborts what it left open, before any
        // changelog is restored.
        producer
            .init_transactions(FLUSH_TIMEOUT)
            .map_err(|e| txn_error("initializing", e))?;
        producer
            .begin_transaction()
            .map_err(|e| txn_error("beginning", e))?;
    }
    let producer = Arc::new(producer);
    let mut restore_config = config.assign_only_consumer("restore.consumer");
    // It reads to a known end: a long-poll only delays the next partition's restore
    // (by 500 ms each with librdkafka's default).
    restore_config.set("fetch.wait.max.ms", "10");
    let mut consumer_config = config.client("consumer");
    if eos {
        restore_config.set("isolation.level", "read_committed");
        if !config.props.contains_key("consumer.isolation.level") {
            consumer_config.set("isolation.level", "read_committed");
        }
    }
    let restore: BaseConsumer = restore_config.create()?;
    let state = Arc::new(Mutex::new(ThreadState::default()));
    let ctx = ThreadCtx {
        shared: shared.clone(),
        name: name.clone(),
        state: state.clone(),
        producer: producer.clone(),
        restore,
    };
    let consumer: BaseConsumer<ThreadCtx> = consumer_config
        .set("group.id", &config.application_id)
        .set("client.id", format!("{}-{name}", config.application_id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Range assignment gives every consumer the same partition numbers of
        // co-partitioned topics: one task reads partition n of each.
        .set("partition.assignment.strategy", "range")
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(ctx)?;
    let topics: Vec<String> = shared.topic_to_sub.keys().cloned().collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    let mut last_commit = Instant::now();
    let mut ends = EndOffsets::default();
    let result = (|| -> Result<()> {
        while !shared.stop.load(Ordering::Relaxed) {
            let mut timeout = Duration::from_millis(100);
            let mut polled_records = 0;
            for _ in 0..POLL_BATCH {
                let Some(polled) = consumer.poll(timeout) else {
                    break;
                };
                polled_records += 1;
                timeout = Duration::ZERO;
                let m = match polled {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(thread = %name, error = %e, "consumer error");
                        continue;
                    }
                };
                let rec = raw(&m);
                let mut st = lock(&state);
                let id = TaskId {
                    subtopology: shared
                        .topic_to_sub
                        .get(&rec.topic)
                        .copied()
                        .unwrap_or(usize::MAX),
                    partition: rec.partition,
                };
                if !st.tasks.contains_key(&id) {
                    continue;
                }
                st.buffered.entry(id).or_default().push(rec);
            }
            let mut st = lock(&state);
            // Only a task with several inputs asks for positions (when one of its
            // inputs has nothing buffered), and asking is a round trip to librdkafka's
            // main thread: it was most of a single-input thread's waiting.
            let positions = std::cell::OnceCell::new();
            let fetched = |topic: &str, partition: i32| {
                positions
                    .get_or_init(|| consumer.position().unwrap_or_default())
                    .find_partition(topic, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
            };
            let state_ref = &mut *st;
            for (id, group) in state_ref.buffered.iter_mut() {
                let Some(task) = state_ref.tasks.get_mut(id) else {
                    continue;
                };
                let topics: Vec<String> = task.topics().cloned().collect();
                while let Some(rec) = group.next(
                    topics.iter(),
                    id.partition,
                    &|t| fetched(t, id.partition),
                    &mut ends,
                    &consumer.context().restore,
                    config.max_task_idle,
                ) {
                    task.process(&rec)?;
                    for o in task.take_output() {
                        send(&producer, &o)?;
                    }
                }
            }
            // Batches run once the consumer has caught up, or after waiting at most
            // MAX_BATCH_WAIT while records keep coming.
            let caught_up = polled_records < POLL_BATCH;
            for task in state_ref.tasks.values_mut() {
                task.flush_batches_if_due(caught_up)?;
                for o in task.take_output() {
                    send(&producer, &o)?;
                }
            }
            st.buffered.retain(|_, g| !g.is_empty());
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            for task in st.tasks.values_mut() {
                task.punctuate_wall_clock(now)?;
                for o in task.take_output() {
                    send(&producer, &o)?;
                }
            }
            if last_commit.elapsed() >= config.commit_interval {
                commit(&consumer, &producer, &mut st, eos)?;
                last_commit = Instant::now();
            }
        }
        let mut st = lock(&state);
        commit(&consumer, &producer, &mut st, eos)
    })();
    let tasks: Vec<Task> = {
        let mut st = lock(&state);
        let mut all: Vec<Task> = std::mem::take(&mut st.tasks).into_values().collect();
        all.extend(std::mem::take(&mut st.suspended).into_values());
        all
    };
    for t in &tasks {
        for h in t.ctx.stores.values() {
            let _ = h.lock().flush();
        }
        shared.unregister(t);
    }
    consumer.unsubscribe();
    result
}
