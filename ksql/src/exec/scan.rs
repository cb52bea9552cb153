//! A stream scanned by a query without EMIT: one DataFusion partition per Kafka
//! partition, each read by its own consumer from the partition's start to the end it
//! had when the query started, decoded into Arrow batches of up to [`BATCH_ROWS`] rows
//! and handed over through a channel of a few batches. Memory stays bounded whatever
//! the topic holds, partitions are read and decoded in parallel, and the query works
//! on the first batches while later ones are still being read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::columns::{source_cells, Columns};
use crate::catalog::Source;
use crate::error::{Error, Result};

/// Rows per batch handed to DataFusion.
pub const BATCH_ROWS: usize = 8192;
/// Batches a partition's reader may have decoded ahead of the query.
const AHEAD: usize = 4;

/// One Kafka partition of a stream, from `start` up to (not including) `end`.
#[derive(Debug)]
pub struct TopicPartition {
    source: Arc<Source>,
    schema: SchemaRef,
    bootstrap: String,
    partition: i32,
    start: i64,
    end: i64,
}

/// The stream's partitions that hold records now, each as a DataFusion partition.
pub fn partitions(
    consumer: &BaseConsumer,
    bootstrap: &str,
    source: &Source,
    schema: &SchemaRef,
) -> Result<Vec<TopicPartition>> {
    let timeout = Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(&source.topic), timeout)?;
    let source = Arc::new(source.clone());
    let mut out = Vec::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer.fetch_watermarks(&source.topic, p.id(), timeout)?;
        if high > low {
            out.push(TopicPartition {
                source: source.clone(),
                schema: schema.clone(),
                bootstrap: bootstrap.to_string(),
                partition: p.id(),
                start: low,
                end: high,
            });
        }
    }
    Ok(out)
}

impl PartitionStream for TopicPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = tokio::sync::mpsc::channel::<datafusion::common::Result<RecordBatch>>(AHEAD);
        let reader = Reader {
            source: self.source.clone(),
            schema: self.schema.clone(),
            bootstrap: self.bootstrap.clone(),
            partition: self.partition,
            range: (self.start, self.end),
        };
        std::thread::spawn(move || {
            if let Err(e) = reader.run(&tx) {
                let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
            }
        });
        let batches =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

struct Reader {
    source: Arc<Source>,
    schema: SchemaRef,
    bootstrap: String,
    partition: i32,
    range: (i64, i64),
}

type Sender = tokio::sync::mpsc::Sender<datafusion::common::Result<RecordBatch>>;

impl Reader {
    /// Reads, decodes and sends the partition's records; stops early when the query
    /// no longer wants them (the receiver is gone, e.g. after a LIMIT).
    fn run(&self, tx: &Sender) -> Result<()> {
        let topic = &self.source.topic;
        let consumer: BaseConsumer = crate::kafka::reader_config(&self.bootstrap).create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, self.partition, Offset::Offset(self.range.0))?;
        consumer.assign(&tpl)?;
        let with_headers = self.source.columns.iter().any(|c| c.header.is_some());
        let mut rows = Columns::new(&self.schema);
        let mut progress = Instant::now();
        let mut at = self.range.0;
        while at < self.range.1 {
            if progress.elapsed() > Duration::from_secs(60) {
                return Err(Error::Kafka(format!(
                    "reading {topic} partition {}: no progress for 60 s",
                    self.partition
                )));
            }
            let m = match consumer.poll(Duration::from_millis(100)) {
                Some(m) => m?,
                None => {
                    // A transactional partition may end with a marker, which is never
                    // delivered: the consumer's position moves past it.
                    if let Ok(Offset::Offset(p)) = consumer
                        .position()
                        .map(|tpl| {
                            tpl.find_partition(topic, self.partition)
                                .map(|e| e.offset())
                        })
                        .map(|o| o.unwrap_or(Offset::Invalid))
                    {
                        at = at.max(p);
                    }
                    continue;
                }
            };
            progress = Instant::now();
            at = m.offset() + 1;
            let headers: Vec<(String, Vec<u8>)> = match (with_headers, m.headers()) {
                (true, Some(hs)) => hs
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect(),
                _ => Vec::new(),
            };
            let meta = (
                m.timestamp().to_millis().unwrap_or(0),
                self.partition,
                m.offset(),
            );
            let row = source_cells(&self.source, (m.key(), m.payload()), &headers, meta)
                .and_then(|row| row.map_or(Ok(()), |(cells, _)| rows.push(cells)));
            if let Err(e) = row {
                tracing::debug!(topic = %topic, offset = m.offset(), "record skipped: {e}")
            }
            if rows.len() >= BATCH_ROWS && !self.send(tx, &mut rows)? {
                return Ok(());
            }
        }
        self.send(tx, &mut rows)?;
        Ok(())
    }

    /// Sends the rows as a batch; `false` when the query is gone.
    fn send(&self, tx: &Sender, rows: &mut Columns) -> Result<bool> {
        if rows.is_empty() {
            return Ok(true);
        }
        let batch = rows.finish()?;
        Ok(tx.blocking_send(Ok(batch)).is_ok())
    }
}
