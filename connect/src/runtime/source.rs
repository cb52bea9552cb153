//! The source task loop: poll -> transform -> convert -> produce; offsets are committed
//! only after the broker acknowledged every record of the batch.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::Message as _;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::errors::{ErrorPolicy, Failure};
use super::task::{State, TargetState, TaskCtx};
use crate::api::{JsonMap, OffsetReader, SourceConnector, Value};
use crate::converters::{self, Converter};
use crate::error::{Error, Result};
use crate::transforms::{Chain, RecordContext};

struct StoreReader<'a>(&'a TaskCtx);

impl OffsetReader for StoreReader<'_> {
    fn offset(&self, partition: &JsonMap) -> Option<JsonMap> {
        self.0.worker.offsets.get(&self.0.connector, partition)
    }
}

pub async fn run(ctx: TaskCtx, connector: Arc<dyn SourceConnector>) {
    let result = source_loop(&ctx, connector).await;
    ctx.finish(result);
}

/// A converted record ready to send.
struct Outgoing {
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
    let policy = ErrorPolicy::from_config(&ctx.config);
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
    loop {
        match ctx.target() {
            TargetState::Stopped => break,
            TargetState::Paused => {
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
            continue;
        }
        let mut offsets: Vec<(JsonMap, JsonMap)> = Vec::with_capacity(records.len());
        let mut deliveries = Vec::with_capacity(records.len());
        for sr in records {
            offsets.push((sr.source_partition, sr.source_offset));
            let topic = sr.record.topic.clone();
            match convert(sr.record, &chain, key_conv.as_mut(), value_conv.as_mut()) {
                Ok(Some(out)) => deliveries.push(send(&producer, out).await?),
                Ok(None) => {}
                Err(e) => {
                    let f = Failure {
                        connector: &ctx.connector,
                        task: ctx.id,
                        stage: "VALUE_CONVERTER",
                        topic: &topic,
                        partition: -1,
                        offset: -1,
                        key: None,
                        value: None,
                        error: &e,
                    };
                    policy.handle(f, None).await?;
                }
            }
        }
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, m))) => {
                    return Err(Error::Task(format!(
                        "producing to {} failed: {e}",
                        m.topic()
                    )))
                }
                Err(_) => {
                    return Err(Error::Task(
                        "producing failed: the producer went away".into(),
                    ))
                }
            }
        }
        // Everything acknowledged: the last offset per source partition is committed.
        let mut latest: Vec<(JsonMap, Option<JsonMap>)> = Vec::new();
        for (p, o) in offsets.into_iter().filter(|(p, _)| !p.is_empty()) {
            match latest.iter_mut().find(|(lp, _)| *lp == p) {
                Some(entry) => entry.1 = Some(o),
                None => latest.push((p, Some(o))),
            }
        }
        ctx.worker
            .offsets
            .commit(&ctx.connector, latest)
            .await
            .map_err(|e| Error::Task(format!("committing offsets: {e}")))?;
    }
    task.stop().await
}

fn convert(
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

async fn send(
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
