//! The exactly-once source task loop (KIP-618): poll -> transform -> convert -> produce
//! inside a transaction that also carries the records' source offsets, written to the
//! offsets topic by the same transactional producer. The transaction commits after each
//! poll's records (`transaction.boundary=poll`) or every interval; a read_committed
//! consumer sees a record exactly when its offset is committed, and a crash aborts both,
//! so the task's successor resumes exactly after what was delivered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::error_handling::{ErrorPolicy, Failure};
use super::exactly_once::{transactional_id, TransactionBoundary};
use super::source::{convert, delivered, send, StoreReader};
use super::task::{State, TargetState, TaskCtx};
use crate::api::{JsonMap, SourceConnector, SourceTask};
use crate::converters;
use crate::error::{Error, Result};
use crate::transforms::Chain;

/// How long a transaction call (init, flush, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a blocking producer call off the async threads.
async fn blocking<T: Send + 'static>(
    producer: &FutureProducer,
    what: &'static str,
    call: impl FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<T> + Send + 'static,
) -> Result<T> {
    let p = producer.clone();
    tokio::task::spawn_blocking(move || call(&p))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
        .map_err(|e| Error::Task(format!("{what} the source task's transaction failed: {e}")))
}

/// The open transaction: what was sent and the latest offset per source partition.
#[derive(Default)]
struct Transaction {
    open: bool,
    began: Option<Instant>,
    deliveries: Vec<DeliveryFuture>,
    offsets: Vec<(Arc<JsonMap>, JsonMap)>,
}

impl Transaction {
    fn offset(&mut self, partition: Arc<JsonMap>, offset: JsonMap) {
        if partition.is_empty() {
            return;
        }
        let same = |p: &Arc<JsonMap>| Arc::ptr_eq(p, &partition) || *p == partition;
        match self.offsets.iter_mut().find(|(p, _)| same(p)) {
            Some(entry) => entry.1 = offset,
            None => self.offsets.push((partition, offset)),
        }
    }
}

/// What turns a polled record into bytes to send.
struct Pipeline {
    chain: Chain,
    policy: ErrorPolicy,
    key_conv: Box<dyn converters::Converter>,
    value_conv: Box<dyn converters::Converter>,
    boundary: TransactionBoundary,
}

/// The task's transactional producer, where its offsets go, and its open transaction.
struct Txn<'a> {
    ctx: &'a TaskCtx,
    producer: FutureProducer,
    offsets_topic: String,
    open: Transaction,
}

pub(super) async fn source_loop(
    ctx: &TaskCtx,
    connector: Arc<dyn SourceConnector>,
    group_id: &str,
) -> Result<()> {
    let props = &ctx.worker.config.props;
    let mut pipeline = Pipeline {
        key_conv: converters::for_prefix("key.converter", &ctx.config, props)?,
        value_conv: converters::for_prefix("value.converter", &ctx.config, props)?,
        chain: Chain::from_config(&ctx.config)?,
        policy: ErrorPolicy::from_config(&ctx.config)?,
        boundary: TransactionBoundary::from_config(
            &ctx.config,
            ctx.worker.config.offset_flush_interval_ms,
        )?,
    };
    let offsets_topic = ctx
        .worker
        .offsets
        .topic()
        .ok_or_else(|| Error::Task("exactly-once source tasks need an offsets topic".into()))?
        .to_string();
    ctx.worker.offsets.read_to_end().await?;
    let id = transactional_id(group_id, &ctx.connector, ctx.id);
    let mut client = ctx.client_config("producer");
    client.set("acks", "all").set("linger.ms", "5");
    for (k, v) in super::config::with_prefix(&ctx.config, "producer.override.") {
        client.set(k, v);
    }
    // The runtime's, whatever the overrides say: they are what fencing relies on.
    client
        .set("enable.idempotence", "true")
        .set("transactional.id", &id);
    let producer: FutureProducer = client.create()?;
    // Fences this task's previous instance (a zombie on a worker that lost its place)
    // and aborts what it left open, before reading anything.
    blocking(&producer, "initializing", |p| {
        p.init_transactions(TXN_TIMEOUT)
    })
    .await?;
    tracing::info!(connector = %ctx.connector, task = ctx.id, transactional_id = %id, boundary = ?pipeline.boundary, "exactly-once source task starting");
    let mut task = connector.create_task();
    task.start(&ctx.config, &StoreReader(ctx)).await?;
    let mut txn = Txn {
        ctx,
        producer,
        offsets_topic,
        open: Transaction::default(),
    };
    let result = pump(&mut txn, &mut pipeline, task.as_mut()).await;
    if result.is_err() && txn.open.open {
        // Nothing of the failed transaction may become visible; the broker would abort
        // it at its timeout anyway, this makes it immediate.
        let aborted = blocking(&txn.producer, "aborting", |p| {
            p.abort_transaction(TXN_TIMEOUT)
        });
        if let Err(e) = aborted.await {
            tracing::warn!(connector = %ctx.connector, task = ctx.id, error = %e, "aborting");
        }
    }
    result?;
    task.stop().await
}

async fn pump(txn: &mut Txn<'_>, pipeline: &mut Pipeline, task: &mut dyn SourceTask) -> Result<()> {
    let ctx = txn.ctx;
    let mut target = ctx.target.clone();
    loop {
        match ctx.target() {
            TargetState::Stopped => break,
            TargetState::Paused => {
                txn.commit(task).await?;
                ctx.set_state(State::Paused);
                if target.changed().await.is_err() {
                    break;
                }
                continue;
            }
            TargetState::Started => ctx.set_state(State::Running),
        }
        let mut retries = pipeline.policy.retries();
        let records = loop {
            match task.poll().await {
                Err(Error::Retriable(reason)) => retries.wait("poll", &reason).await?,
                other => break other?,
            }
        };
        if !records.is_empty() && !txn.open.open {
            txn.producer.begin_transaction().map_err(|e| {
                Error::Task(format!(
                    "beginning the source task's transaction failed: {e}"
                ))
            })?;
            txn.open.open = true;
            txn.open.began = Some(Instant::now());
        }
        for sr in records {
            let topic = sr.record.topic.clone();
            let p = &mut *pipeline;
            match convert(
                sr.record,
                &p.chain,
                p.key_conv.as_mut(),
                p.value_conv.as_mut(),
            ) {
                Ok(Some(out)) => txn.open.deliveries.push(send(&txn.producer, out).await?),
                Ok(None) => {}
                Err(e) => {
                    let f = Failure::source_conversion(&ctx.connector, ctx.id, &topic, &e);
                    p.policy.handle(f, None).await?;
                }
            }
            txn.open.offset(sr.source_partition, sr.source_offset);
        }
        let due = match pipeline.boundary {
            TransactionBoundary::Interval(every) => {
                txn.open.began.is_some_and(|b| b.elapsed() >= every)
            }
            TransactionBoundary::Poll | TransactionBoundary::Connector => true,
        };
        if due {
            txn.commit(task).await?;
        }
    }
    txn.commit(task).await
}

impl Txn<'_> {
    /// Adds the offsets to the transaction, commits it, then tells the task.
    async fn commit(&mut self, task: &mut dyn SourceTask) -> Result<()> {
        let (ctx, producer, offsets_topic, txn) = (
            self.ctx,
            &self.producer,
            self.offsets_topic.as_str(),
            &mut self.open,
        );
        if !txn.open {
            return Ok(());
        }
        let committed: Vec<(JsonMap, JsonMap)> = std::mem::take(&mut txn.offsets)
            .into_iter()
            .map(|(p, o)| (Arc::unwrap_or_clone(p), o))
            .collect();
        for (partition, offset) in &committed {
            let key = super::offsets::key(&ctx.connector, partition);
            let value = serde_json::Value::Object(offset.clone()).to_string();
            let record = FutureRecord::to(offsets_topic).key(&key).payload(&value);
            let d = producer
                .send_result(record)
                .map_err(|(e, _)| Error::Task(format!("writing source offsets failed: {e}")))?;
            txn.deliveries.push(d);
        }
        // The acknowledgements, as the producer's poll thread hands them over. Not
        // `flush`: with that thread taking the delivery reports, rust-rdkafka's flush
        // waits out its poll timeout (measured: 100 ms per transaction).
        for d in txn.deliveries.drain(..) {
            delivered(d.await)?;
        }
        blocking(producer, "committing", |p| {
            p.commit_transaction(TXN_TIMEOUT)
        })
        .await?;
        txn.open = false;
        txn.began = None;
        ctx.worker.offsets.remember(&ctx.connector, &committed);
        task.commit(&committed).await
    }
}
