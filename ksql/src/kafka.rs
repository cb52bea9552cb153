//! The engine's Kafka client: topic administration, producing (INSERT VALUES, the
//! command topic), and reading a topic's current contents (pull queries, scans, PRINT,
//! command-topic replay). Everything goes through rdkafka, so any Kafka cluster works.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

pub struct Kafka {
    pub bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    producer: FutureProducer,
    replication: i32,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Engine(e.to_string()))?
}

/// A consumer that reads partitions it assigns itself, committing nothing.
pub fn reader_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", format!("_ksql-reader-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "50")
        // librdkafka's default (1 s) pauses fetching each time 100,000 records are
        // queued, which with small records makes a scan wait most of its time.
        .set("fetch.queue.backoff.ms", "10");
    c
}

impl Kafka {
    pub fn new(bootstrap: &str, replication: i32) -> Result<Kafka> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap);
        Ok(Kafka {
            bootstrap: bootstrap.to_string(),
            admin: c.create()?,
            producer: c
                .clone()
                .set("acks", "all")
                .set("linger.ms", "0")
                // Kafka's Java clients (and so Kafka Streams) partition by murmur2.
                .set("partitioner", "murmur2_random")
                .create()?,
            replication,
        })
    }

    pub fn consumer(&self) -> Result<BaseConsumer> {
        Ok(reader_config(&self.bootstrap).create()?)
    }

    /// The topic's partition count, `None` if it does not exist.
    pub async fn partitions(&self, topic: &str) -> Result<Option<i32>> {
        Ok(self.shape(topic).await?.map(|(partitions, _)| partitions))
    }

    /// A topic's partition count and replication factor; `None` if it does not exist.
    pub async fn shape(&self, topic: &str) -> Result<Option<(i32, i32)>> {
        let c = self.consumer()?;
        let t = topic.to_string();
        blocking(move || {
            let md = c.fetch_metadata(Some(&t), TIMEOUT)?;
            Ok(md.topics().iter().find(|mt| mt.name() == t).and_then(|mt| {
                let first = mt.partitions().first()?;
                if mt.error().is_some() {
                    return None;
                }
                Some((mt.partitions().len() as i32, first.replicas().len() as i32))
            }))
        })
        .await
    }

    /// Every topic with its partition count, internal ones (`_`/`__` prefix) left out.
    pub async fn topics(&self) -> Result<Vec<(String, i32)>> {
        let c = self.consumer()?;
        blocking(move || {
            let md = c.fetch_metadata(None, TIMEOUT)?;
            let mut out: Vec<_> = md
                .topics()
                .iter()
                .filter(|t| !t.name().starts_with('_'))
                .map(|t| (t.name().to_string(), t.partitions().len() as i32))
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let mut t = NewTopic::new(topic, partitions, TopicReplication::Fixed(self.replication));
        for (k, v) in configs {
            t = t.set(k, v);
        }
        let results = self
            .admin
            .create_topics([&t], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
            .await?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(Error::Kafka(format!("could not create topic {t}: {code}")))
                }
            }
        }
        // Metadata propagates asynchronously; wait until the topic is visible.
        let deadline = Instant::now() + TIMEOUT;
        while self.partitions(topic).await?.is_none() {
            if Instant::now() > deadline {
                return Err(Error::Kafka(format!("topic {topic} did not appear")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub async fn delete_topic(&self, topic: &str) -> Result<()> {
        let results = self
            .admin
            .delete_topics(
                &[topic],
                &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
            )
            .await?;
        for r in results {
            if let Err((t, code)) = r {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    return Err(Error::Kafka(format!("could not delete topic {t}: {code}")));
                }
            }
        }
        Ok(())
    }

    /// Produces one record and waits for the acknowledgement (acks=all).
    pub async fn produce(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: &[(&str, &[u8])],
    ) -> Result<(i32, i64)> {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = key {
            r = r.key(k);
        }
        if let Some(v) = value {
            r = r.payload(v);
        }
        if let Some(ts) = timestamp {
            r = r.timestamp(ts);
        }
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(*v),
                });
            }
            r = r.headers(h);
        }
        self.producer
            .send(r, TIMEOUT)
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| Error::Kafka(format!("producing to {topic}: {e}")))
    }

    /// Everything the topic holds now, in partition then offset order.
    pub async fn read_all(&self, topic: &str) -> Result<Vec<Fetched>> {
        let c = self.consumer()?;
        let t = topic.to_string();
        blocking(move || read_to_end(&c, &t)).await
    }
}

fn read_to_end(c: &BaseConsumer, topic: &str) -> Result<Vec<Fetched>> {
    let md = c.fetch_metadata(Some(topic), TIMEOUT)?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = std::collections::HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        let (low, high) = c.fetch_watermarks(topic, *p, TIMEOUT)?;
        if high > low {
            ends.insert(*p, high);
            tpl.add_partition_offset(topic, *p, Offset::Offset(low))?;
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    c.assign(&tpl)?;
    let mut progress = Instant::now();
    while !ends.is_empty() {
        if progress.elapsed() > Duration::from_secs(60) {
            return Err(Error::Kafka(format!(
                "reading {topic}: no progress for 60 s"
            )));
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                progress = Instant::now();
                let p = m.partition();
                out.push(Fetched {
                    partition: p,
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis().unwrap_or(0),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|hs| {
                            hs.iter()
                                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                if ends.get(&p).is_some_and(|end| m.offset() + 1 >= *end) {
                    ends.remove(&p);
                }
                let _ = m.headers().map(|h| h.count());
            }
            Some(Err(e)) => return Err(e.into()),
            // A transactional topic may end with a marker, which is never delivered;
            // the consumer's position moves past it.
            None => {
                let positions = c.position()?;
                ends.retain(|p, end| {
                    let at = positions
                        .find_partition(topic, *p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                    at.is_none_or(|at| at < *end)
                });
            }
        }
    }
    out.sort_by_key(|f| (f.partition, f.offset));
    Ok(out)
}
