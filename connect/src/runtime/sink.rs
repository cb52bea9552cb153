//! The sink task loop: consume as group `connect-<name>` -> convert -> transform -> put;
//! every `offset.flush.interval.ms` (and on stop) the task flushes, then the consumed
//! offsets are committed — never before the flush succeeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::error_handling::ErrorPolicy;
use super::sink_fetch::{Converters, Fetcher, PendingOffsets, SinkConsumer, SinkContext};
use super::task::{State, TargetState, TaskCtx};
use crate::api::{SinkConnector, SinkRecord, SinkTask};
use crate::converters;
use crate::error::{Error, Result};
use crate::transforms::Chain;

pub fn group_id(connector: &str) -> String {
    format!("connect-{connector}")
}

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
    pending: &mut PendingOffsets,
) -> Result<()> {
    pending.forget_revoked(consumer.context(), None);
    task.flush().await?;
    if pending.offsets.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), next) in pending.offsets.iter() {
        tpl.add_partition_offset(t, *p, Offset::Offset(*next))?;
    }
    // A synchronous commit blocks on the network: keep it off the async workers.
    let consumer = consumer.clone();
    match tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
        .await
        .map_err(|e| Error::Task(format!("committing offsets: {e}")))?
    {
        Ok(()) => pending.offsets.clear(),
        Err(e) if lost_to_rebalance(&e) => {
            tracing::info!(error = %e, "offsets not committed: the group is rebalancing");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn sink_loop(ctx: &TaskCtx, connector: Arc<dyn SinkConnector>) -> Result<()> {
    let props = &ctx.worker.config.props;
    let conv = Converters {
        key: converters::for_prefix("key.converter", &ctx.config, props)?,
        value: converters::for_prefix("value.converter", &ctx.config, props)?,
        chain: Chain::from_config(&ctx.config)?,
    };
    let policy = ErrorPolicy::from_config(&ctx.config)?;
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
        None => crate::runtime::connector_config::sink_topics(&ctx.config),
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
    let (mut batches, reader) = Fetcher {
        connector: ctx.connector.clone(),
        task: ctx.id,
        consumer: consumer.clone(),
        conv,
        policy: policy.clone(),
        dlq,
        max_batch,
    }
    .spawn();
    // The reader stops with the loop, however it ends.
    let _reader = AbortOnDrop(reader);
    let mut last_commit = Instant::now();
    let mut pending = PendingOffsets::default();
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
        // The next batch is read and converted while this one is put (one batch ahead
        // at most); its offsets count only once it was put in turn.
        let mut fetched = batches
            .recv()
            .await
            .ok_or_else(|| Error::Task("the sink's reader stopped".into()))??;
        pending.forget_revoked(consumer.context(), Some(&mut fetched));
        if !fetched.records.is_empty() {
            put(task.as_mut(), &fetched.records, &policy).await?;
        }
        pending.offsets.extend(fetched.offsets);
        if last_commit.elapsed() >= flush_every {
            commit(&mut task, &consumer, &mut pending).await?;
            last_commit = Instant::now();
        }
    }
    commit(&mut task, &consumer, &mut pending).await?;
    task.stop().await
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
