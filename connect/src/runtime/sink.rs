//! The sink task loop: consume as group `connect-<name>` -> convert -> transform -> put;
//! every `offset.flush.interval.ms` (and on stop) the task flushes, then the consumed
//! offsets are committed — never before the flush succeeded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::errors::{ErrorPolicy, Failure};
use super::task::{State, TargetState, TaskCtx};
use crate::api::{ConnectRecord, Header, Schema, SinkConnector, SinkRecord, SinkTask, Value};
use crate::converters::{self, Converter};
use crate::error::{Error, Result};
use crate::transforms::{Chain, RecordContext};

pub fn group_id(connector: &str) -> String {
    format!("connect-{connector}")
}

/// Remembers the partitions a rebalance took from this task: their offsets, consumed
/// but not yet flushed, must not be committed by it. The new owner reads them again
/// (at least once).
#[derive(Default)]
struct SinkContext {
    revoked: std::sync::Mutex<Vec<(String, i32)>>,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            revoked.extend(
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition())),
            );
        }
    }
}

type SinkConsumer = StreamConsumer<SinkContext>;

/// A commit refused because the group moved on: not the task's failure.
fn lost_to_rebalance(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::State
        )
    )
}

pub async fn run(ctx: TaskCtx, connector: Arc<dyn SinkConnector>) {
    let result = sink_loop(&ctx, connector).await;
    ctx.finish(result);
}

struct Converters {
    key: Box<dyn Converter>,
    value: Box<dyn Converter>,
    chain: Chain,
}

fn to_record(m: &BorrowedMessage<'_>, c: &mut Converters) -> Result<Option<SinkRecord>> {
    let topic = m.topic();
    let (key_schema, key) = c.key.to_connect(topic, m.key())?;
    let (value_schema, value) = c.value.to_connect(topic, m.payload())?;
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_string(),
                    schema: Some(Schema::optional_string()),
                    value: h.value.map_or(Value::Null, |v| {
                        Value::String(String::from_utf8_lossy(v).into_owned())
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    let record = ConnectRecord {
        topic: topic.to_string(),
        partition: Some(m.partition()),
        key_schema,
        key,
        value_schema,
        value,
        timestamp: m.timestamp().to_millis(),
        headers,
    };
    let ctx = RecordContext {
        kafka_offset: Some(m.offset()),
    };
    Ok(c.chain.apply(record, &ctx)?.map(|record| SinkRecord {
        record,
        kafka_partition: m.partition(),
        kafka_offset: m.offset(),
    }))
}

/// A batch read and converted, with the next offset per partition it covers (records
/// dropped by transforms or tolerated errors included).
struct Fetched {
    records: Vec<SinkRecord>,
    offsets: HashMap<(String, i32), i64>,
}

/// Reads up to `max_batch` records: waits 200 ms for the first, then takes what comes
/// within 2 ms of the last.
async fn fetch(
    ctx: &TaskCtx,
    consumer: &SinkConsumer,
    conv: &mut Converters,
    policy: &ErrorPolicy,
    dlq: Option<&FutureProducer>,
    max_batch: usize,
) -> Result<Fetched> {
    let mut out = Fetched {
        records: Vec::new(),
        offsets: HashMap::new(),
    };
    let mut wait = Duration::from_millis(200);
    while out.records.len() < max_batch {
        let m = match tokio::time::timeout(wait, consumer.recv()).await {
            Err(_) => break,
            Ok(Ok(m)) => m,
            // Consumption errors (a topic not there yet, a broker away) are transient
            // for a sink: librdkafka keeps retrying underneath.
            Ok(Err(e @ rdkafka::error::KafkaError::MessageConsumption(_))) => {
                tracing::warn!(connector = %ctx.connector, task = ctx.id, error = %e, "consumer error; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                break;
            }
            Ok(Err(e)) => return Err(e.into()),
        };
        wait = Duration::from_millis(2);
        out.offsets
            .insert((m.topic().to_string(), m.partition()), m.offset() + 1);
        match to_record(&m, conv) {
            Ok(Some(r)) => out.records.push(r),
            Ok(None) => {}
            Err(e) => {
                let stage = if matches!(e, Error::Transform(_)) {
                    "TRANSFORMATION"
                } else {
                    "VALUE_CONVERTER"
                };
                let f = Failure {
                    connector: &ctx.connector,
                    task: ctx.id,
                    stage,
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key(),
                    value: m.payload(),
                    error: &e,
                };
                policy.handle(f, dlq).await?;
            }
        }
    }
    Ok(out)
}

/// `put`, retried as `errors.retry.timeout` allows when it fails retriably.
async fn put(task: &mut dyn SinkTask, records: &[SinkRecord], policy: &ErrorPolicy) -> Result<()> {
    let mut retries = policy.retries();
    loop {
        match task.put(records).await {
            Err(Error::Retriable(reason)) => retries.wait("put", &reason).await?,
            other => return other,
        }
    }
}

async fn commit(
    task: &mut Box<dyn SinkTask>,
    consumer: &Arc<SinkConsumer>,
    pending: &mut HashMap<(String, i32), i64>,
) -> Result<()> {
    drop_revoked(consumer, pending, None);
    task.flush().await?;
    if pending.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), next) in pending.iter() {
        tpl.add_partition_offset(t, *p, Offset::Offset(*next))?;
    }
    // A synchronous commit blocks on the network: keep it off the async workers.
    let consumer = consumer.clone();
    match tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
        .await
        .map_err(|e| Error::Task(format!("committing offsets: {e}")))?
    {
        Ok(()) => pending.clear(),
        Err(e) if lost_to_rebalance(&e) => {
            tracing::info!(error = %e, "offsets not committed: the group is rebalancing");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Forgets the offsets of partitions a rebalance took away: in `pending`, and in the
/// batch read ahead (its records may still be written: at least once).
fn drop_revoked(
    consumer: &SinkConsumer,
    pending: &mut HashMap<(String, i32), i64>,
    ahead: Option<&mut Fetched>,
) {
    let revoked = std::mem::take(
        &mut *consumer
            .context()
            .revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let mut ahead = ahead;
    for tp in revoked {
        pending.remove(&tp);
        if let Some(f) = ahead.as_deref_mut() {
            f.offsets.remove(&tp);
        }
    }
}

async fn sink_loop(ctx: &TaskCtx, connector: Arc<dyn SinkConnector>) -> Result<()> {
    let props = &ctx.worker.config.props;
    let mut conv = Converters {
        key: converters::for_prefix("key.converter", &ctx.config, props)?,
        value: converters::for_prefix("value.converter", &ctx.config, props)?,
        chain: Chain::from_config(&ctx.config)?,
    };
    let policy = ErrorPolicy::from_config(&ctx.config);
    let mut client = ctx.client_config("consumer");
    client
        .set("group.id", group_id(&ctx.connector))
        .set(
            "client.id",
            format!("connector-consumer-{}-{}", ctx.connector, ctx.id),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // As the Java consumer Kafka Connect uses: subscribing may create the topic.
        .set("allow.auto.create.topics", "true")
        // librdkafka pauses fetching for a full second whenever its local queue holds
        // 100,000 messages; with small records that caps a sink at ~100k records/s.
        .set("fetch.queue.backoff.ms", "10")
        // Notice topics created after the subscription within seconds, not minutes.
        .set("topic.metadata.refresh.interval.ms", "10000");
    let max_batch = ctx.max_poll_records()?;
    let consumer: Arc<SinkConsumer> = Arc::new(client.create_with_context(SinkContext::default())?);
    let topics: Vec<String> = match ctx.config.get("topics.regex").filter(|r| !r.is_empty()) {
        Some(re) => vec![if re.starts_with('^') {
            re.clone()
        } else {
            format!("^{re}")
        }],
        None => crate::transforms::list(&ctx.config, "topics"),
    };
    // Ask for each named topic first: with allow.auto.create.topics a broker that
    // auto-creates makes it now, so the group join sees it. Otherwise librdkafka only
    // notices a missing topic at its next metadata refresh.
    if !topics.iter().any(|t| t.starts_with('^')) {
        let (c, names) = (consumer.clone(), topics.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for t in &names {
                let _ = c.fetch_metadata(Some(t), Duration::from_secs(10));
            }
        })
        .await;
    }
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs)?;
    let dlq: Option<FutureProducer> = match &policy.dlq_topic {
        Some(_) => Some(ctx.client_config("producer").create()?),
        None => None,
    };
    let mut task = connector.create_task();
    task.start(&ctx.config).await?;
    let flush_every = Duration::from_millis(ctx.worker.config.offset_flush_interval_ms);
    let mut last_commit = Instant::now();
    let mut pending: HashMap<(String, i32), i64> = HashMap::new();
    let mut prefetched: Option<Fetched> = None;
    let mut paused = false;
    loop {
        match ctx.target() {
            TargetState::Stopped => break,
            TargetState::Paused => {
                if !paused {
                    consumer.pause(&consumer.assignment()?)?;
                    paused = true;
                    ctx.set_state(State::Paused);
                }
            }
            TargetState::Started => {
                if paused {
                    consumer.resume(&consumer.assignment()?)?;
                    paused = false;
                }
                ctx.set_state(State::Running);
            }
        }
        let fetched = match prefetched.take() {
            Some(f) => f,
            None => fetch(ctx, &consumer, &mut conv, &policy, dlq.as_ref(), max_batch).await?,
        };
        if fetched.records.is_empty() {
            pending.extend(fetched.offsets);
        } else {
            // The next batch is read and converted while this one is written (one batch
            // ahead at most); its offsets count only once it was put in turn.
            let (put, next) = tokio::join!(
                put(task.as_mut(), &fetched.records, &policy),
                fetch(ctx, &consumer, &mut conv, &policy, dlq.as_ref(), max_batch)
            );
            put?;
            pending.extend(fetched.offsets);
            prefetched = Some(next?);
        }
        drop_revoked(&consumer, &mut pending, prefetched.as_mut());
        if last_commit.elapsed() >= flush_every {
            commit(&mut task, &consumer, &mut pending).await?;
            last_commit = Instant::now();
        }
    }
    commit(&mut task, &consumer, &mut pending).await?;
    task.stop().await
}
