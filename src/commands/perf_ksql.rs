//! `runnel perf ksql`: KSQL persistent queries over a pre-filled topic, end to end
//! (input topic -> query -> output topic): a filter with a projection, and a
//! tumbling-window count with record caching on (ksqlDB's default: a group's result
//! once per batch) and off (every update); then a vectorized scan of the same topic.
//! Each is timed from the statement until the query has committed every input record
//! (Kafka Streams commits after its output is written). Last, pull queries by key and
//! over a whole table, served from an aggregation's state store and, for reference,
//! from the table's topic.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use runnel_ksql::engine::{Engine, EngineConfig};

/// One of the measurements `runnel perf ksql` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Filter + projection (CREATE STREAM AS SELECT ... WHERE).
    Filter,
    /// Tumbling-window count with the record cache on.
    Count,
    /// The same count with the record cache off.
    CountUncached,
    /// A scan (SELECT ... GROUP BY without EMIT).
    Scan,
    /// Pull queries on a table a GROUP BY count maintains: from its state store, and
    /// the same queries over the table's topic.
    Pull,
    /// A push query (SELECT ... WHERE ... EMIT CHANGES) from the earliest offset.
    Push,
}

pub struct Args {
    /// The measurements to make; empty for all.
    pub only: Vec<Measure>,
    pub bootstrap: String,
    pub num_records: u64,
    pub keys: u64,
    pub partitions: i32,
    pub stream_threads: usize,
}

/// Records in a topic: the sum of its partitions' high watermarks.
fn count(client: &BaseConsumer, topic: &str) -> anyhow::Result<i64> {
    let md = client.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut n = 0;
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        n += client
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))?
            .1;
    }
    Ok(n)
}

/// Input records the query's consumer group has committed, over every partition.
fn committed(group: &BaseConsumer, topic: &str) -> anyhow::Result<i64> {
    let md = group.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition(topic, p.id());
    }
    let offsets = group.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        })
        .sum())
}

/// Waits until the query (consumer group `group`) has committed `want` records of
/// `input`: the time from `started`, and the time since the first record of `output`
/// was seen (the query's processing without its start: topic creation, group join and
/// rebalances).
fn wait_until(
    client: &BaseConsumer,
    (bootstrap, group): (&str, &str),
    (input, output): (&str, &str),
    want: i64,
    started: Instant,
) -> anyhow::Result<(Duration, Duration)> {
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()?;
    let mut last = (0, Instant::now());
    let mut first_output: Option<Instant> = None;
    loop {
        if first_output.is_none() && count(client, output).unwrap_or(0) > 0 {
            first_output = Some(Instant::now());
        }
        let n = committed(&group, input).unwrap_or(0);
        if n >= want {
            let since_first = first_output.map_or(Duration::ZERO, |f| f.elapsed());
            return Ok((started.elapsed(), since_first));
        }
        if n != last.0 {
            last = (n, Instant::now());
        }
        anyhow::ensure!(
            last.1.elapsed() < Duration::from_secs(60),
            "{input}: the query stuck at {n} of {want} records for 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(what: &str, n: u64, took: Duration) {
    println!(
        "{what}: {n} records in {:.1} s = {:.0} records/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

/// A persistent query's figures: end to end, and from its first output on.
fn report_query(what: &str, n: u64, (took, since_first): (Duration, Duration)) {
    println!(
        "{what}: {n} records in {:.1} s = {:.0} records/s ({:.0} records/s from the first output on, {:.1} s before it)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        n as f64 / since_first.as_secs_f64().max(0.001),
        (took - since_first).as_secs_f64(),
    );
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let input = format!("perf-ksql-{run_id}");
    let state = tempfile::tempdir()?;
    let mut config = EngineConfig::new(&a.bootstrap, state.path().to_path_buf());
    let service_id = format!("perf_{run_id}_");
    config.service_id = service_id.clone();
    let engine = Engine::start(config)
        .await
        .context("starting the KSQL engine")?;
    engine
        .kafka()
        .create_topic(&input, a.partitions, &[])
        .await?;

    // Fill the input: JSON values, one key per sensor, event time 1 ms apart.
    let (bootstrap, topic, n, keys) = (a.bootstrap.clone(), input.clone(), a.num_records, a.keys);
    let produced = tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .create()?;
        let started = Instant::now();
        for i in 0..n {
            let key = format!("sensor-{}", i % keys);
            let value = format!("{{\"READING\":{},\"SITE\":\"site-{}\"}}", i % 100, i % 7);
            super::perf_streams::send(
                &producer,
                BaseRecord::<'_, str, str>::to(&topic)
                    .key(key.as_str())
                    .payload(value.as_str())
                    .timestamp(1_000 + i as i64),
            );
        }
        producer.flush(Duration::from_secs(120))?;
        Ok(started.elapsed())
    })
    .await??;
    report("produce (JSON input)", n, produced);

    engine
        .execute(&format!(
            "CREATE STREAM perf_in (sensor STRING KEY, reading INT, site STRING) WITH (KAFKA_TOPIC='{input}', VALUE_FORMAT='JSON');
             SET 'auto.offset.reset'='earliest';
             SET 'ksql.streams.num.stream.threads'='{}';",
            a.stream_threads
        ))
        .await?;
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &a.bootstrap)
        .create()?;
    let client = std::sync::Arc::new(client);

    let wanted = |m: Measure| a.only.is_empty() || a.only.contains(&m);
    let queries = [
        (
            Measure::Filter,
            "filter + projection (CREATE STREAM AS SELECT ... WHERE)",
            None,
            format!("CREATE STREAM perf_filtered_{run_id} AS SELECT sensor, UCASE(site) AS site, reading * 2 AS doubled FROM perf_in WHERE reading >= 50;"),
        ),
        (
            Measure::Count,
            "tumbling-window count, record cache on (CREATE TABLE AS SELECT ... WINDOW TUMBLING)",
            Some(10_485_760),
            format!("CREATE TABLE perf_counts_{run_id} AS SELECT sensor, COUNT(*) AS n FROM perf_in WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor;"),
        ),
        (
            Measure::CountUncached,
            "tumbling-window count, record cache off (every update emitted)",
            Some(0),
            format!("CREATE TABLE perf_counts_all_{run_id} AS SELECT sensor, COUNT(*) AS n FROM perf_in WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor;"),
        ),
    ];
    for (_, what, cache, sql) in queries.into_iter().filter(|q| wanted(q.0)) {
        if let Some(bytes) = cache {
            engine
                .execute(&format!(
                    "SET 'ksql.streams.cache.max.bytes.buffering'='{bytes}';"
                ))
                .await?;
        }
        let started = Instant::now();
        let out = engine.execute(&sql).await?;
        let query_id = out
            .iter()
            .find_map(|e| e.command_status().and_then(|c| c.query_id.clone()))
            .context("the statement started no query")?;
        let sink = sql
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_uppercase();
        let group = runnel_ksql::exec::persistent::application_id(&service_id, &query_id);
        let (c, bootstrap, input) = (client.clone(), a.bootstrap.clone(), input.clone());
        let out = sink.clone();
        let took = tokio::task::spawn_blocking(move || {
            wait_until(&c, (&bootstrap, &group), (&input, &out), n as i64, started)
        })
        .await??;
        report_query(what, n, took);
        println!("  {} output records", count(&client, &sink)?);
    }

    if wanted(Measure::Push) {
        // `reading` is i % 100: half of the records pass, and LIMIT ends the query at the
        // last of them.
        let want = (0..n).filter(|i| i % 100 >= 50).count();
        let props = [("auto.offset.reset".to_string(), "earliest".to_string())].into();
        let started = Instant::now();
        let mut q = engine
            .query(
                &format!("SELECT sensor, reading FROM perf_in WHERE reading >= 50 EMIT CHANGES LIMIT {want};"),
                &props,
            )
            .await?;
        let mut rows = 0;
        while let Some(r) = q.rows.recv().await {
            r?;
            rows += 1;
        }
        anyhow::ensure!(rows == want, "the push query gave {rows} rows, not {want}");
        report(
            &format!("push query (SELECT ... WHERE ... EMIT CHANGES from earliest, {rows} rows)"),
            n,
            started.elapsed(),
        );
    }
    if wanted(Measure::Pull) {
        pull(&engine, &client, &a, (&service_id, run_id), &input).await?;
    }
    if !wanted(Measure::Scan) {
        engine.shutdown().await;
        return Ok(());
    }
    let started = Instant::now();
    let mut q = engine
        .query(
            "SELECT site, COUNT(*) AS n, AVG(reading) AS avg_reading FROM perf_in GROUP BY site;",
            &Default::default(),
        )
        .await?;
    let mut rows = 0;
    while let Some(r) = q.rows.recv().await {
        r?;
        rows += 1;
    }
    report(
        &format!("scan (SELECT ... GROUP BY over the topic, {rows} groups)"),
        n,
        started.elapsed(),
    );
    engine.shutdown().await;
    Ok(())
}

/// Pull queries on a per-key count table: `queries` lookups by key then one read of
/// the whole table, from the aggregation's state store and from the table's topic
/// (a second table declared over it), each timed.
async fn pull(
    engine: &Engine,
    client: &std::sync::Arc<BaseConsumer>,
    a: &Args,
    (service_id, run_id): (&str, u128),
    input: &str,
) -> anyhow::Result<()> {
    let table = format!("PERF_TOTALS_{run_id}");
    engine
        .execute("SET 'ksql.streams.cache.max.bytes.buffering'='10485760';")
        .await?;
    let started = Instant::now();
    let out = engine
        .execute(&format!(
            "CREATE TABLE {table} AS SELECT sensor, COUNT(*) AS n, MAX(reading) AS top FROM perf_in GROUP BY sensor;"
        ))
        .await?;
    let query_id = out
        .iter()
        .find_map(|e| e.command_status().and_then(|c| c.query_id.clone()))
        .context("the statement started no query")?;
    let group = runnel_ksql::exec::persistent::application_id(service_id, &query_id);
    let (c, bootstrap, input, out, n) = (
        client.clone(),
        a.bootstrap.clone(),
        input.to_string(),
        table.clone(),
        a.num_records,
    );
    let took = tokio::task::spawn_blocking(move || {
        wait_until(&c, (&bootstrap, &group), (&input, &out), n as i64, started)
    })
    .await??;
    report_query(
        "count per key (CREATE TABLE AS SELECT ... GROUP BY), the pull queries' table",
        n,
        took,
    );
    engine
        .execute(&format!(
            "CREATE TABLE {table}_TOPIC (sensor STRING PRIMARY KEY, n BIGINT, top INT) WITH (KAFKA_TOPIC='{table}', VALUE_FORMAT='JSON');"
        ))
        .await?;
    println!(
        "  pull queries: {} keys; the table's topic holds {} records",
        a.keys,
        count(client, &table)?
    );
    let select = |sql: String| async move {
        let mut q = engine.query(&sql, &Default::default()).await?;
        let mut rows = 0u64;
        while let Some(r) = q.rows.recv().await {
            r?;
            rows += 1;
        }
        anyhow::Ok(rows)
    };
    let mut per_query = Vec::new();
    for (what, from, queries) in [
        ("state store", table.clone(), 2_000u64),
        ("topic (reference)", format!("{table}_TOPIC"), 20),
    ] {
        let mut took = Vec::new();
        for i in 0..queries {
            let key = format!("sensor-{}", (i * 7_919) % a.keys);
            let t = Instant::now();
            let rows = select(format!("SELECT * FROM {from} WHERE sensor = '{key}';")).await?;
            anyhow::ensure!(rows == 1, "{from}: {key} gave {rows} rows, not 1");
            took.push(t.elapsed());
        }
        let total: Duration = took.iter().sum();
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "pull by key from the {what}: {queries} queries = {:.0} queries/s, median {:.2} ms, p99 {:.2} ms",
            queries as f64 / total.as_secs_f64(),
            ms(took[took.len() / 2]),
            ms(took[(took.len() * 99 / 100).min(took.len() - 1)]),
        );
        per_query.push(total / queries as u32);
        let t = Instant::now();
        let rows = select(format!("SELECT * FROM {from};")).await?;
        println!(
            "pull of the whole table from the {what}: {rows} rows in {:.1} ms",
            ms(t.elapsed())
        );
    }
    println!(
        "  pull by key: the store answers {:.0}x faster than the topic",
        per_query[1].as_secs_f64() / per_query[0].as_secs_f64()
    );
    Ok(())
}
