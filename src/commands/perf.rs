//! `runnel perf produce|consume`, in the manner of kafka-producer-perf-test and
//! kafka-consumer-perf-test: records/s, MB/s and (for produce) latency percentiles;
//! `--transaction-duration-ms` produces in transactions, as Kafka's tool does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::client::Connection;

#[derive(clap::Subcommand)]
pub enum PerfCommand {
    /// Produce fixed-size records as fast as possible (or at --throughput).
    Produce {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        #[arg(long, default_value_t = 1024)]
        record_size: usize,
        /// Records per second to aim for; -1 for no limit.
        #[arg(long, default_value_t = -1)]
        throughput: i64,
        #[arg(long, default_value = "1")]
        acks: String,
        /// Produce in transactions committed after this many ms (Kafka's
        /// kafka-producer-perf-test option); 0 disables transactions.
        #[arg(long, default_value_t = 0)]
        transaction_duration_ms: u64,
        #[arg(long, default_value = "performance-producer-default-transactional-id")]
        transactional_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// KSQL persistent queries end to end (filter + projection, tumbling-window
    /// count) and a scan, over a topic filled first.
    Ksql {
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        #[arg(long, default_value_t = 1_000)]
        keys: u64,
        #[arg(long, default_value_t = 2)]
        partitions: i32,
        /// `ksql.streams.num.stream.threads` of the persistent queries.
        #[arg(long, default_value_t = 1)]
        stream_threads: usize,
        /// Run only these measurements (comma-separated): filter, count,
        /// count-uncached, push, pull, scan. All by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<super::perf_ksql::Measure>,
        #[command(flatten)]
        conn: Connection,
    },
    /// A keyed count through a Streams application, end to end (input topic -> count ->
    /// output topic): records/s from start until every key's final count is out.
    Streams {
        #[arg(long, default_value_t = 1_000_000)]
        num_records: u64,
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// An in-memory store instead of the persistent (fjall) one.
        #[arg(long)]
        in_memory: bool,
        /// `at_least_once` or `exactly_once_v2`.
        #[arg(long, default_value = "at_least_once")]
        processing_guarantee: String,
        /// `statestore.cache.max.bytes`: the record cache per task (0 turns it off).
        #[arg(long, default_value_t = 10 * 1024 * 1024)]
        cache_max_bytes: usize,
        /// `commit.interval.ms`: how often the cache is flushed and offsets committed.
        #[arg(long, default_value_t = 1000)]
        commit_interval_ms: u64,
        #[command(flatten)]
        conn: Connection,
    },
    /// The machine's limit for produce: loopback TCP into a page-cache file (MB/s).
    Loopback {
        /// Bytes to move (default 1 GiB, as 1,000,000 records of 1 KiB).
        #[arg(long, default_value_t = 1 << 30)]
        bytes: u64,
        /// Where the scratch file goes (the broker's data disk).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
    /// A minimal Kafka endpoint that only writes produced bytes to a file and acks:
    /// the machine's limit for a given producer (run until killed).
    Sink {
        #[arg(long, default_value = "127.0.0.1:9099")]
        listen: String,
        /// Where the files go (the broker's data disk).
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
    },
    /// Read records from the beginning of a topic.
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: u64,
}

struct PerfContext {
    stats: Arc<Mutex<Stats>>,
}

impl ClientContext for PerfContext {}

impl ProducerContext for PerfContext {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        let mut s = crate::sync::lock(&self.stats);
        match result {
            Ok(_) => s.latencies_us.push(sent.elapsed().as_micros() as u64),
            Err(_) => s.errors += 1,
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

pub async fn run(cmd: PerfCommand) -> anyhow::Result<()> {
    match cmd {
        PerfCommand::Streams {
            num_records,
            keys,
            partitions,
            threads,
            in_memory,
            processing_guarantee,
            cache_max_bytes,
            commit_interval_ms,
            conn,
        } => {
            let args = super::perf_streams::Args {
                bootstrap: conn.bootstrap_server.clone(),
                num_records,
                keys: keys.max(1),
                partitions,
                threads,
                in_memory,
                processing_guarantee,
                cache_max_bytes,
                commit_interval_ms,
            };
            tokio::task::spawn_blocking(move || super::perf_streams::run(args)).await?
        }
        PerfCommand::Ksql {
            num_records,
            keys,
            partitions,
            stream_threads,
            only,
            conn,
        } => {
            super::perf_ksql::run(super::perf_ksql::Args {
                only,
                bootstrap: conn.bootstrap_server.clone(),
                num_records,
                keys: keys.max(1),
                partitions,
                stream_threads: stream_threads.max(1),
            })
            .await
        }
        PerfCommand::Produce {
            topic,
            num_records,
            record_size,
            throughput,
            acks,
            transaction_duration_ms,
            transactional_id,
            conn,
        } => {
            let load = Load {
                topic,
                n: num_records,
                size: record_size,
                throughput,
                acks,
                transactions: (transaction_duration_ms > 0).then(|| {
                    (
                        transactional_id,
                        Duration::from_millis(transaction_duration_ms),
                    )
                }),
            };
            tokio::task::spawn_blocking(move || produce(&conn, &load)).await?
        }
        PerfCommand::Sink { listen, dir } => {
            tokio::task::spawn_blocking(move || super::perf_sink::run(&listen, &dir)).await?
        }
        PerfCommand::Loopback { bytes, dir } => {
            tokio::task::spawn_blocking(move || super::perf_loopback::run(bytes, &dir)).await?
        }
        PerfCommand::Consume {
            topic,
            messages,
            conn,
        } => tokio::task::spawn_blocking(move || consume(&conn, &topic, messages)).await?,
    }
}

/// What `perf produce` sends.
struct Load {
    topic: String,
    n: u64,
    size: usize,
    throughput: i64,
    acks: String,
    /// Transactional id and how long each transaction runs.
    transactions: Option<(String, Duration)>,
}

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

fn produce(conn: &Connection, load: &Load) -> anyhow::Result<()> {
    let (topic, n, size, throughput) = (&load.topic, load.n, load.size, load.throughput);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut config = conn.config()?;
    if let Some((id, _)) = &load.transactions {
        config.set("transactional.id", id);
    }
    config
        .set("acks", &load.acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "500000");
    let producer: ThreadedProducer<PerfContext> = config
        .create_with_context(PerfContext {
            stats: stats.clone(),
        })
        .context("creating the producer")?;
    let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    if load.transactions.is_some() {
        producer
            .init_transactions(TXN_TIMEOUT)
            .context("initializing transactions")?;
        producer.begin_transaction()?;
    }
    let mut transactions = 0u64;
    let start = Instant::now();
    let mut txn_start = start;
    for i in 0..n {
        if let Some((_, every)) = &load.transactions {
            if txn_start.elapsed() >= *every {
                // flush serves delivery reports on this thread; commit_transaction
                // alone waits for the poll thread's next round (100 ms).
                producer.flush(TXN_TIMEOUT).context("flushing")?;
                producer
                    .commit_transaction(TXN_TIMEOUT)
                    .context("committing")?;
                transactions += 1;
                producer.begin_transaction()?;
                txn_start = Instant::now();
            }
        }
        if throughput > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / throughput as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let mut record =
            BaseRecord::<(), [u8], Box<Instant>>::with_opaque_to(topic, Box::new(Instant::now()))
                .payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e).context("producing"),
            }
        }
    }
    if load.transactions.is_some() {
        producer
            .commit_transaction(TXN_TIMEOUT)
            .context("committing")?;
        transactions += 1;
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing")?;
    let elapsed = start.elapsed().as_secs_f64();
    if load.transactions.is_some() {
        println!(
            "{transactions} transactions committed, {:.1} per second",
            transactions as f64 / elapsed
        );
    }
    let mut s = crate::sync::lock(&stats);
    s.latencies_us.sort_unstable();
    let ok = s.latencies_us.len() as f64;
    let avg = s.latencies_us.iter().sum::<u64>() as f64 / ok.max(1.0) / 1000.0;
    println!(
        "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th. {} errors.",
        ok,
        ok / elapsed,
        ok * size as f64 / elapsed / (1024.0 * 1024.0),
        avg,
        s.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        percentile(&s.latencies_us, 0.50),
        percentile(&s.latencies_us, 0.95),
        percentile(&s.latencies_us, 0.99),
        percentile(&s.latencies_us, 0.999),
        s.errors
    );
    Ok(())
}

fn consume(conn: &Connection, topic: &str, n: u64) -> anyhow::Result<()> {
    let mut config = conn.config()?;
    config
        .set("group.id", format!("runnel-perf-{}", std::process::id()))
        .set("enable.auto.commit", "false");
    // librdkafka otherwise stops fetching for 1 s each time 100,000 messages are queued,
    // which, with small records, measures that pause rather than the broker.
    if !conn
        .properties
        .iter()
        .any(|p| p.starts_with("fetch.queue.backoff.ms="))
    {
        config.set("fetch.queue.backoff.ms", "10");
    }
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(30))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut idle = Instant::now();
    while count < n {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len()) as u64;
                idle = Instant::now();
            }
            Some(Err(e)) => return Err(e).context("consuming"),
            None if idle.elapsed() > Duration::from_secs(10) => break,
            None => {}
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{count} records consumed in {elapsed:.2} s: {:.1} records/sec, {:.2} MB/sec",
        count as f64 / elapsed,
        bytes as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(())
}
