//! A compacted topic that every worker reads from the beginning and writes through a
//! producer — Kafka Connect's KafkaBasedLog. Distributed workers keep their connector
//! configs, source offsets and statuses in three of these.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// Applies one record read from the log: (offset, key, value — `None` for a tombstone).
pub type Apply = Box<dyn FnMut(i64, &[u8], Option<&[u8]>) + Send>;

/// Where and how to keep the log.
#[derive(Debug, Clone)]
pub struct LogSpec {
    pub topic: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `read_to_end` waits for the reader before giving up.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct KafkaLog {
    topic: String,
    producer: FutureProducer,
    /// Asks for the end offsets. Not the reader: its connection is often parked in a
    /// long-poll Fetch, and a broker answers one connection's requests in order.
    watermarks: Arc<BaseConsumer>,
    partitions: Vec<i32>,
    /// Next offset to read, per partition, as far as the reader has applied.
    positions: Arc<Mutex<HashMap<i32, i64>>>,
    progress: watch::Receiver<u64>,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Creates the topic, compacted, unless it exists.
async fn ensure_topic(client: &ClientConfig, spec: &LogSpec) -> Result<()> {
    let admin: AdminClient<_> = client.create()?;
    let topic = NewTopic::new(
        &spec.topic,
        spec.partitions,
        TopicReplication::Fixed(spec.replication_factor),
    )
    .set("cleanup.policy", "compact");
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(Error::Storage {
                    topic: t,
                    reason: format!("it could not be created: {code}"),
                })
            }
        }
    }
    Ok(())
}

impl KafkaLog {
    /// Creates the topic if needed and starts reading it from the beginning on a thread
    /// of its own; `apply` sees every record in partition order.
    pub async fn start(client: ClientConfig, spec: LogSpec, mut apply: Apply) -> Result<KafkaLog> {
        ensure_topic(&client, &spec).await?;
        let producer: FutureProducer = client
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        // read_committed: exactly-once source tasks write offsets in transactions, and
        // an offset is real only once its records are (Kafka's offset log does the same).
        // A log without transactions reads the same either way.
        let consumer: BaseConsumer = client
            .clone()
            .set("isolation.level", "read_committed")
            .set("group.id", format!("{}-reader", spec.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.queue.backoff.ms", "10")
            .create()?;
        let consumer = Arc::new(consumer);
        let watermarks: Arc<BaseConsumer> = Arc::new(
            client
                .clone()
                .set("isolation.level", "read_committed")
                .set("group.id", format!("{}-watermarks", spec.topic))
                .create()?,
        );
        let topic = spec.topic.clone();
        let partitions = {
            let (c, t) = (watermarks.clone(), topic.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<i32>> {
                let md = c.fetch_metadata(Some(&t), METADATA_TIMEOUT)?;
                Ok(md
                    .topics()
                    .iter()
                    .flat_map(|mt| mt.partitions().iter().map(|p| p.id()))
                    .collect())
            })
            .await
            .map_err(|e| Error::Task(e.to_string()))??
        };
        if partitions.is_empty() {
            return Err(Error::Storage {
                topic,
                reason: "the broker lists no partitions for it".into(),
            });
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(&topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let positions: Arc<Mutex<HashMap<i32, i64>>> = Arc::default();
        let (progress_tx, progress) = watch::channel(0u64);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (consumer, positions, stop, topic) = (
                consumer.clone(),
                positions.clone(),
                stop.clone(),
                topic.clone(),
            );
            std::thread::Builder::new()
                .name(format!("log-{topic}"))
                .spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match consumer.poll(Duration::from_millis(100)) {
                            Some(Ok(m)) => {
                                apply(m.offset(), m.key().unwrap_or_default(), m.payload());
                                crate::sync::lock(&positions).insert(m.partition(), m.offset() + 1);
                                n += 1;
                                progress_tx.send_replace(n);
                            }
                            Some(Err(e)) => tracing::warn!(%topic, error = %e, "reading the log"),
                            // A transaction's marker is never delivered, but the
                            // position moves past it: the end of a log may be one.
                            None => {
                                let Ok(at) = consumer.position() else {
                                    continue;
                                };
                                let mut moved = false;
                                let mut pos = crate::sync::lock(&positions);
                                for e in at.elements_for_topic(&topic) {
                                    if let Offset::Offset(o) = e.offset() {
                                        let known = pos.entry(e.partition()).or_insert(0);
                                        if o > *known {
                                            *known = o;
                                            moved = true;
                                        }
                                    }
                                }
                                drop(pos);
                                if moved {
                                    n += 1;
                                    progress_tx.send_replace(n);
                                }
                            }
                        }
                    }
                })
                .map_err(|e| Error::io(format!("reader thread for {}", spec.topic), e))?
        };
        let log = KafkaLog {
            topic,
            producer,
            watermarks,
            partitions,
            positions,
            progress,
            stop,
            reader: Some(reader),
        };
        log.read_to_end().await?;
        Ok(log)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes a record (`None`: a tombstone) and waits for the broker to acknowledge it.
    pub async fn send(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let mut record = FutureRecord::<str, [u8]>::to(&self.topic).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| Error::Kafka(e))?;
        Ok(())
    }

    /// Returns once the reader has applied everything the log held when this was called.
    pub async fn read_to_end(&self) -> Result<()> {
        let (consumer, topic, partitions) = (
            self.watermarks.clone(),
            self.topic.clone(),
            self.partitions.clone(),
        );
        let ends = tokio::task::spawn_blocking(move || -> Result<Vec<(i32, i64)>> {
            partitions
                .iter()
                .map(|p| {
                    let (_, high) = consumer.fetch_watermarks(&topic, *p, METADATA_TIMEOUT)?;
                    Ok((*p, high))
                })
                .collect()
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
        let mut progress = self.progress.clone();
        let caught_up = async {
            loop {
                let done = {
                    let pos = crate::sync::lock(&self.positions);
                    ends.iter()
                        .all(|(p, high)| *high <= 0 || pos.get(p).is_some_and(|o| o >= high))
                };
                if done {
                    return Ok(());
                }
                if progress.changed().await.is_err() {
                    return Err(Error::Storage {
                        topic: self.topic.clone(),
                        reason: "its reader stopped".into(),
                    });
                }
            }
        };
        tokio::time::timeout(READ_TIMEOUT, caught_up)
            .await
            .map_err(|_| Error::Storage {
                topic: self.topic.clone(),
                reason: format!("reading it to the end took longer than {READ_TIMEOUT:?}"),
            })?
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}
