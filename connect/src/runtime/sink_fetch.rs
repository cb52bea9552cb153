//! The reading side of a sink task: a task of its own consumes, converts and transforms
//! batches while the sink loop puts the previous one, so reading and writing run on
//! separate threads (one batch waiting, one being read: memory stays bounded). It also
//! keeps the log of partitions rebalances took away, so offsets read before a
//! revocation are never committed by this task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, MessageStream, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientContext;
use tokio::sync::mpsc;

use super::error_handling::{ErrorPolicy, Failure};
use crate::api::{ConnectRecord, Header, Schema, SinkRecord, Value};
use crate::converters::Converter;
use crate::error::{Error, Result};
use crate::transforms::{Chain, RecordContext};

/// Remembers the partitions each rebalance took from this task (rebalances numbered
/// 1, 2, ...): their offsets, consumed but not yet flushed, must not be committed by
/// it. The new owner reads them again (at least once).
#[derive(Default)]
pub(super) struct SinkContext {
    revoked: Mutex<Vec<(u64, (String, i32))>>,
    rebalances: AtomicU64,
}

impl ClientContext for SinkContext {}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.revoke(
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition())),
            );
        }
    }
}

impl SinkContext {
    fn revoke(&self, partitions: impl Iterator<Item = (String, i32)>) {
        let mut revoked = crate::sync::lock(&self.revoked);
        let n = self.rebalances.fetch_add(1, Ordering::SeqCst) + 1;
        revoked.extend(partitions.map(|tp| (n, tp)));
    }
}

pub(super) type SinkConsumer = StreamConsumer<SinkContext>;

/// The offsets not yet committed, and the last revocation already applied to them.
#[derive(Default)]
pub(super) struct PendingOffsets {
    pub offsets: HashMap<(String, i32), i64>,
    applied: u64,
}

impl PendingOffsets {
    /// Forgets the offsets of partitions revoked since the last call, here and in
    /// `batch` (read from before its revocation; its records may still be written).
    pub fn forget_revoked(&mut self, context: &SinkContext, batch: Option<&mut Fetched>) {
        let mut log = crate::sync::lock(&context.revoked);
        let mut batch = batch;
        for (n, tp) in log.iter() {
            if *n > self.applied {
                self.offsets.remove(tp);
            }
            if let Some(b) = batch.as_deref_mut().filter(|b| *n > b.rebalances) {
                b.offsets.remove(tp);
            }
        }
        self.applied = log.last().map_or(self.applied, |(n, _)| *n);
        // Later batches were read after this one began: older entries no longer matter.
        if let Some(b) = batch {
            log.retain(|(n, _)| *n > b.rebalances);
        }
    }
}

pub(super) struct Converters {
    pub key: Box<dyn Converter>,
    pub value: Box<dyn Converter>,
    pub chain: Chain,
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
pub(super) struct Fetched {
    pub records: Vec<SinkRecord>,
    pub offsets: HashMap<(String, i32), i64>,
    /// Rebalances that had revoked partitions when the batch began.
    rebalances: u64,
}

/// Records a batch reserves room for before reading (a larger `max.poll.records` grows).
const MAX_PRESIZE: usize = 100_000;

/// What the reading task needs.
pub(super) struct Fetcher {
    pub connector: String,
    pub task: usize,
    pub consumer: Arc<SinkConsumer>,
    pub conv: Converters,
    pub policy: ErrorPolicy,
    pub dlq: Option<FutureProducer>,
    pub max_batch: usize,
}

impl Fetcher {
    /// Reads batches until the receiver is dropped or reading fails (the error is the
    /// last item).
    pub fn spawn(mut self) -> (mpsc::Receiver<Result<Fetched>>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1);
        let handle = tokio::spawn(async move {
            // One message stream for the task's life: `recv` makes (and registers) a
            // new one for every message.
            let consumer = self.consumer.clone();
            let mut stream = consumer.stream();
            loop {
                let batch = self.fetch(&mut stream).await;
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    break;
                }
            }
        });
        (rx, handle)
    }

    /// Reads up to `max_batch` records: waits 200 ms for the first, then takes what
    /// comes within 2 ms of the last.
    async fn fetch(&mut self, stream: &mut MessageStream<'_, SinkContext>) -> Result<Fetched> {
        let mut out = Fetched {
            // Sized up front: growing moves every record read so far.
            records: Vec::with_capacity(self.max_batch.min(MAX_PRESIZE)),
            offsets: HashMap::new(),
            rebalances: self.consumer.context().rebalances.load(Ordering::SeqCst),
        };
        let mut next_offsets: Vec<(String, i32, i64)> = Vec::new();
        let mut wait = Duration::from_millis(200);
        while out.records.len() < self.max_batch {
            // A queued message needs no timer.
            let next = match stream.next().now_or_never() {
                Some(m) => Ok(m),
                None => tokio::time::timeout(wait, stream.next()).await,
            };
            let m = match next {
                // A message stream never ends; None is taken as a pause.
                Err(_) | Ok(None) => break,
                Ok(Some(Ok(m))) => m,
                // Consumption errors (a topic not there yet, a broker away) are transient
                // for a sink: librdkafka keeps retrying underneath.
                Ok(Some(Err(e @ rdkafka::error::KafkaError::MessageConsumption(_)))) => {
                    tracing::warn!(connector = %self.connector, task = self.task, error = %e, "consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Ok(Some(Err(e))) => return Err(e.into()),
            };
            wait = Duration::from_millis(2);
            // Few partitions per task: a scan, and no allocation per record.
            let (topic, partition) = (m.topic(), m.partition());
            match next_offsets
                .iter_mut()
                .find(|(t, p, _)| *p == partition && t == topic)
            {
                Some((_, _, next)) => *next = m.offset() + 1,
                None => next_offsets.push((topic.to_string(), partition, m.offset() + 1)),
            }
            match to_record(&m, &mut self.conv) {
                Ok(Some(r)) => out.records.push(r),
                Ok(None) => {}
                Err(e) => {
                    let stage = if matches!(e, Error::Transform(_)) {
                        "TRANSFORMATION"
                    } else {
                        "VALUE_CONVERTER"
                    };
                    let f = Failure {
                        connector: &self.connector,
                        task: self.task,
                        stage,
                        topic: m.topic(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key(),
                        value: m.payload(),
                        error: &e,
                    };
                    self.policy.handle(f, self.dlq.as_ref()).await?;
                }
            }
        }
        out.offsets = next_offsets
            .into_iter()
            .map(|(t, p, o)| ((t, p), o))
            .collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(context: &SinkContext, offsets: &[(&str, i32, i64)]) -> Fetched {
        Fetched {
            records: Vec::new(),
            offsets: offsets
                .iter()
                .map(|(t, p, o)| ((t.to_string(), *p), *o))
                .collect(),
            rebalances: context.rebalances.load(Ordering::SeqCst),
        }
    }

    #[test]
    fn offsets_read_before_a_revocation_are_never_committed() {
        let context = SinkContext::default();
        let mut pending = PendingOffsets::default();
        let mut first = batch(&context, &[("a", 0, 10), ("a", 1, 20)]);
        pending.forget_revoked(&context, Some(&mut first));
        pending.offsets.extend(first.offsets);
        // Read ahead before the rebalance that takes partition 1, handed over after it.
        let mut ahead = batch(&context, &[("a", 0, 15), ("a", 1, 25)]);
        context.revoke([("a".to_string(), 1)].into_iter());
        // Read after the rebalance, which gave partition 1 back.
        let mut after = batch(&context, &[("a", 1, 30)]);
        pending.forget_revoked(&context, Some(&mut ahead));
        assert_eq!(pending.offsets.get(&("a".into(), 1)), None);
        assert_eq!(ahead.offsets.get(&("a".into(), 1)), None);
        assert_eq!(ahead.offsets.get(&("a".into(), 0)), Some(&15));
        pending.offsets.extend(ahead.offsets);
        pending.forget_revoked(&context, Some(&mut after));
        assert_eq!(after.offsets.get(&("a".into(), 1)), Some(&30));
        pending.offsets.extend(after.offsets);
        assert_eq!(pending.offsets.get(&("a".into(), 1)), Some(&30));
        assert_eq!(pending.offsets.get(&("a".into(), 0)), Some(&15));
        // The log keeps nothing a later batch could need.
        assert!(context.revoked.lock().unwrap().is_empty());
    }
}
