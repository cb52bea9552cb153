//! `runnel perf streams`: a keyed count end to end — input topic, a Streams
//! application (`group_by_key().count()`), output topic — timed from start until the
//! output holds every key's final count.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use runnel_streams::{KafkaStreams, Materialized, StreamsBuilder, StreamsConfig};

pub struct Args {
    pub bootstrap: String,
    pub num_records: u64,
    pub keys: u64,
    pub partitions: i32,
    pub threads: usize,
    pub in_memory: bool,
    pub processing_guarantee: String,
    pub cache_max_bytes: usize,
    pub commit_interval_ms: u64,
}

/// Sends a record, waiting while the producer's queue is full.
pub fn send<K: rdkafka::message::ToBytes + ?Sized, V: rdkafka::message::ToBytes + ?Sized>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut r: BaseRecord<'_, K, V>,
) {
    loop {
        match producer.send(r) {
            Ok(()) => return,
            Err((_, back)) => {
                r = back;
                producer.poll(Duration::from_millis(1));
            }
        }
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let (input, output, app) = (
        format!("perf-streams-in-{run_id}"),
        format!("perf-streams-out-{run_id}"),
        format!("perf-streams-{run_id}"),
    );
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "topics",
            "create",
            &input,
            "--partitions",
            &a.partitions.to_string(),
        ])
        .args(["--bootstrap-server", &a.bootstrap])
        .status()?;
    anyhow::ensure!(status.success(), "creating {input} failed");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .create()?;
    let started = Instant::now();
    for i in 0..a.num_records {
        let key = format!("key-{}", i % a.keys);
        send(
            &producer,
            BaseRecord::to(&input).key(key.as_str()).payload(&b"v"[..]),
        );
    }
    producer.flush(Duration::from_secs(120))?;
    eprintln!(
        "produced {} records with {} keys in {:.1} s",
        a.num_records,
        a.keys,
        started.elapsed().as_secs_f64()
    );

    let builder = StreamsBuilder::new();
    let store = if a.in_memory {
        Materialized::named("counts").in_memory()
    } else {
        Materialized::named("counts")
    };
    builder
        .stream::<String, Vec<u8>>(&input)
        .group_by_key()
        .count(store)
        .to_stream()
        .to(&output);
    let state = tempfile::tempdir()?;
    let config = StreamsConfig::new(&app, &a.bootstrap)?
        .with("num.stream.threads", &a.threads.to_string())?
        .with("state.dir", &state.path().display().to_string())?
        .with("processing.guarantee", &a.processing_guarantee)?
        .with("statestore.cache.max.bytes", &a.cache_max_bytes.to_string())?
        .with("commit.interval.ms", &a.commit_interval_ms.to_string())?;
    let mut streams = KafkaStreams::new(builder.build(), config);
    let started = Instant::now();
    streams.start().context("starting the count")?;

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .set("group.id", format!("{app}-reader"))
        // Under exactly-once only committed counts are results.
        .set("isolation.level", "read_committed")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let per_key = a.num_records / a.keys;
    let mut assigned = false;
    let mut done: HashMap<Vec<u8>, bool> = HashMap::new();
    let mut finished = 0u64;
    while finished < a.keys {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "no final counts after 10 minutes"
        );
        if !assigned {
            let md = reader.fetch_metadata(Some(&output), Duration::from_secs(10))?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if parts.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                tpl.add_partition_offset(&output, p, Offset::Beginning)?;
            }
            reader.assign(&tpl)?;
            assigned = true;
        }
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let count = m
                .payload()
                .and_then(|v| v.try_into().ok())
                .map(i64::from_be_bytes)
                .unwrap_or(0);
            let key = m.key().unwrap_or_default().to_vec();
            let reached = count as u64 >= per_key;
            let was = done.insert(key, reached).unwrap_or(false);
            if reached && !was {
                finished += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    streams.close()?;
    println!(
        "{} records counted end to end in {:.2} s: {:.0} records/s ({} keys, {} partitions, {} thread(s), {} store, {}, cache {} bytes, commit every {} ms)",
        a.num_records,
        elapsed.as_secs_f64(),
        a.num_records as f64 / elapsed.as_secs_f64(),
        a.keys,
        a.partitions,
        a.threads,
        if a.in_memory { "in-memory" } else { "persistent" },
        a.processing_guarantee,
        a.cache_max_bytes,
        a.commit_interval_ms
    );
    Ok(())
}
