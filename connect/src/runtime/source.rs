//! The source task loop: poll -> transform -> convert -> produce; offsets are committed
//! only after the broker acknowledged every record of the batch.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rdkafka::message::Message as _;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::error_handling::{ErrorPolicy, Failure};
use super::task::{State, TargetState, TaskCtx};
use crate::api::{JsonMap, OffsetReader, SourceConnector, SourceTask, Value};
use crate::converters::{self, Converter};
use crate::error::{Error, Result};
use crate::transforms::{Chain, RecordContext};

pub(super) struct StoreReader<'a>(pub(super) &'a TaskCtx);

impl OffsetReader for StoreReader<'_> {
    fn offset(&self, partition: &JsonMap) -> Option<JsonMap> {
        self.0.worker.offsets.get(&self.0.connector, partition)
    }
}

pub async fn run(ctx: TaskCtx, connector: Arc<dyn SourceConnector>) {
    let result = match ctx.worker.exactly_once_group.clone() {
        Some(group) => super::source_transactional::source_loop(&ctx, connector, &group).await,
        None => source_loop(&ctx, connector).await,
    };
    ctx.finish(result);
}

/// A converted record ready to send.
pub(super) struct Outgoing {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn header_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::Bytes(b) => Some(b.clone()),
        other => Some(other.to_string().into_bytes()),
    }
}

async fn source_loop(ctx: &TaskCtx, connector: Arc<dyn SourceConnector>) -> Result<()> {
    let props = &ctx.worker.config.props;
    let mut key_conv = converters::for_prefix("key.converter", &ctx.config, props)?;
    let mut value_conv = converters::for_prefix("value.converter", &ctx.config, props)?;
    let chain = Chain::from_config(&ctx.config)?;
    let policy = ErrorPolicy::from_config(&ctx.config)?;
    // Offsets another worker committed before this task moved here.
    ctx.worker.offsets.read_to_end().await?;
    let mut client = ctx.client_config("producer");
    client
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true");
    for (k, v) in super::config::with_prefix(&ctx.config, "producer.override.") {
        client.set(k, v);
    }
    let producer: FutureProducer = client.create()?;
    let mut task = connector.create_task();
    task.start(&ctx.config, &StoreReader(ctx)).await?;
    let mut target = ctx.target.clone();
    let mut flight = InFlight::default();
    let flush_every = Duration::from_millis(ctx.worker.config.offset_flush_interval_ms);
    let mut last_commit = Instant::now();
    loop {
        match ctx.target() {
            TargetState::Stopped => break,
            TargetState::Paused => {
                // Everything sent so far is acknowledged and committed before pausing.
                flight.settle_all().await?;
                flight.commit(ctx, task.as_mut()).await?;
                ctx.set_state(State::Paused);
                if target.changed().await.is_err() {
                    break;
                }
                continue;
            }
            TargetState::Started => ctx.set_state(State::Running),
        }
        let mut retries = policy.retries();
        let records = loop {
            match task.poll().await {
                Err(Error::Retriable(reason)) => retries.wait("poll", &reason).await?,
                other => break other?,
            }
        };
        if records.is_empty() {
            // Idle: give the oldest record a moment, and commit what is acknowledged now
            // rather than at the next interval, so a quiet source's offsets are never
            // far behind. A record that is not acknowledged does not stop the polls.
            flight.wait_oldest(IDLE_WAIT).await?;
            flight.settle_ready()?;
            if flight.has_uncommitted() || last_commit.elapsed() >= flush_every {
                flight.commit(ctx, task.as_mut()).await?;
                last_commit = Instant::now();
            }
            continue;
        }
        for sr in records {
            let topic = sr.record.topic.clone();
            let delivery = match convert(sr.record, &chain, key_conv.as_mut(), value_conv.as_mut())
            {
                Ok(Some(out)) => Some(send(&producer, out).await?),
                Ok(None) => None,
                Err(e) => {
                    let f = Failure::source_conversion(&ctx.connector, ctx.id, &topic, &e);
                    policy.handle(f, None).await?;
                    None
                }
            };
            flight.push(sr.source_partition, sr.source_offset, delivery);
        }
        // Not waiting for the acknowledgements (as Kafka Connect's WorkerSourceTask):
        // the next poll overlaps them. Only a full window waits.
        flight.settle_ready()?;
        while flight.len() > MAX_IN_FLIGHT {
            flight.settle_one().await?;
        }
        if last_commit.elapsed() >= flush_every {
            flight.commit(ctx, task.as_mut()).await?;
            last_commit = Instant::now();
        }
    }
    flight.settle_all().await?;
    flight.commit(ctx, task.as_mut()).await?;
    task.stop().await
}

/// Records sent and not yet acknowledged at most; past it the loop waits for the oldest.
const MAX_IN_FLIGHT: usize = 20_000;
/// How long an idle loop waits for the oldest acknowledgement before polling again.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// A sent record's acknowledgement: awaited, or already in.
enum Ack {
    Pending(DeliveryFuture),
    Done,
}

/// Records in send order, with their source offsets: an offset becomes committable
/// only once its record and every record before it were acknowledged.
#[derive(Default)]
struct InFlight {
    queue: VecDeque<(Arc<JsonMap>, JsonMap, Ack)>,
    /// The latest acknowledged offset per source partition, not yet committed.
    acked: Vec<(Arc<JsonMap>, JsonMap)>,
}

impl InFlight {
    fn len(&self) -> usize {
        self.queue.len()
    }

    fn has_uncommitted(&self) -> bool {
        !self.acked.is_empty()
    }

    fn push(&mut self, partition: Arc<JsonMap>, offset: JsonMap, delivery: Option<DeliveryFuture>) {
        let ack = delivery.map_or(Ack::Done, Ack::Pending);
        self.queue.push_back((partition, offset, ack));
    }

    fn acknowledged(&mut self, partition: Arc<JsonMap>, offset: JsonMap) {
        if partition.is_empty() {
            return;
        }
        let same = |p: &Arc<JsonMap>| Arc::ptr_eq(p, &partition) || *p == partition;
        match self.acked.iter_mut().find(|(p, _)| same(p)) {
            Some(entry) => entry.1 = offset,
            None => self.acked.push((partition, offset)),
        }
    }

    /// Takes the acknowledged records off the front, without waiting.
    fn settle_ready(&mut self) -> Result<()> {
        while let Some((_, _, ack)) = self.queue.front_mut() {
            if let Ack::Pending(d) = ack {
                let ready = {
                    let mut cx = Context::from_waker(Waker::noop());
                    std::pin::Pin::new(d).poll(&mut cx)
                };
                match ready {
                    Poll::Pending => return Ok(()),
                    Poll::Ready(result) => delivered(result)?,
                }
            }
            if let Some((p, o, _)) = self.queue.pop_front() {
                self.acknowledged(p, o);
            }
        }
        Ok(())
    }

    /// Waits for the oldest record.
    async fn settle_one(&mut self) -> Result<()> {
        if let Some((p, o, ack)) = self.queue.pop_front() {
            if let Ack::Pending(d) = ack {
                delivered(d.await)?;
            }
            self.acknowledged(p, o);
        }
        Ok(())
    }

    /// Waits up to `limit` for the oldest record's acknowledgement, keeping it in place
    /// (settle_ready takes it off).
    async fn wait_oldest(&mut self, limit: Duration) -> Result<()> {
        if let Some((_, _, ack)) = self.queue.front_mut() {
            if let Ack::Pending(d) = ack {
                if let Ok(result) = tokio::time::timeout(limit, d).await {
                    delivered(result)?;
                    *ack = Ack::Done;
                }
            }
        }
        Ok(())
    }

    async fn settle_all(&mut self) -> Result<()> {
        while !self.queue.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    /// Commits the acknowledged offsets, then tells the task (its `commit`).
    async fn commit(&mut self, ctx: &TaskCtx, task: &mut dyn SourceTask) -> Result<()> {
        let committed: Vec<(JsonMap, JsonMap)> = std::mem::take(&mut self.acked)
            .into_iter()
            .map(|(p, o)| (Arc::unwrap_or_clone(p), o))
            .collect();
        if !committed.is_empty() {
            let updates = committed
                .iter()
                .map(|(p, o)| (p.clone(), Some(o.clone())))
                .collect();
            ctx.worker
                .offsets
                .commit(&ctx.connector, updates)
                .await
                .map_err(|e| Error::Task(format!("committing offsets: {e}")))?;
        }
        task.commit(&committed).await
    }
}

pub(super) type Delivery = <DeliveryFuture as Future>::Output;

pub(super) fn delivered(result: Delivery) -> Result<()> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, m))) => Err(Error::Task(format!(
            "producing to {} failed: {e}",
            m.topic()
        ))),
        Err(_) => Err(Error::Task(
            "producing failed: the producer went away".into(),
        )),
    }
}

pub(super) fn convert(
    r: crate::api::ConnectRecord,
    chain: &Chain,
    key_conv: &mut dyn Converter,
    value_conv: &mut dyn Converter,
) -> Result<Option<Outgoing>> {
    let Some(r) = chain.apply(r, &RecordContext::default())? else {
        return Ok(None);
    };
    let key = key_conv.to_bytes(&r.topic, r.key_schema.as_ref(), &r.key)?;
    let value = value_conv.to_bytes(&r.topic, r.value_schema.as_ref(), &r.value)?;
    let headers = r
        .headers
        .iter()
        .map(|h| (h.key.clone(), header_bytes(&h.value)))
        .collect();
    Ok(Some(Outgoing {
        topic: r.topic,
        partition: r.partition,
        key,
        value,
        timestamp: r.timestamp,
        headers,
    }))
}

pub(super) async fn send(
    producer: &FutureProducer,
    out: Outgoing,
) -> Result<rdkafka::producer::DeliveryFuture> {
    let mut record = FutureRecord::to(&out.topic);
    // librdkafka allocates a header list: only for records that have headers.
    if !out.headers.is_empty() {
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (k, v) in &out.headers {
            headers = headers.insert(KHeader {
                key: k,
                value: v.as_deref(),
            });
        }
        record = record.headers(headers);
    }
    if let Some(k) = &out.key {
        record = record.key(k);
    }
    if let Some(v) = &out.value {
        record = record.payload(v);
    }
    if let Some(p) = out.partition {
        record = record.partition(p);
    }
    if let Some(ts) = out.timestamp {
        record = record.timestamp(ts);
    }
    loop {
        match producer.send_result(record) {
            Ok(d) => return Ok(d),
            Err((e, back))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
            {
                // The queue is full: the same record again, once librdkafka sent some.
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(Error::Kafka(e)),
        }
    }
}
