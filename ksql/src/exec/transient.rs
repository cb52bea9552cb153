//! Transient queries, whose rows go to the client rather than a topic:
//! - push queries (`EMIT CHANGES`): the persistent query's topology run in-process
//!   by the Streams `LocalRunner` (state in memory, gone with the query) over
//!   records a consumer reads from `auto.offset.reset` on, until cancelled or LIMIT;
//! - pull queries and scans (no EMIT): the sources' current contents (a table: the
//!   latest row per key) as Arrow batches in a DataFusion `MemTable`, and the query
//!   run by DataFusion as a batch query — any SQL DataFusion runs, vectorized;
//! - PRINT: a topic's records as text.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser::ast::SetExpr;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use runnel_streams::record::RawRecord;
use runnel_streams::LocalRunner;
use serde_json::Value;
use tokio::sync::mpsc;

use super::compiled::Compiled;
use super::materialized::{self, Materialized};
use super::processor::{source_row_of, Bytes};
use crate::catalog::{Catalog, Column, Format, Source};
use crate::error::{Error, Result};
use crate::format::{self, scalar_to_json, Row};
use crate::kafka::{Fetched, Kafka};
use crate::parser::ast::{KsqlQuery, SourceKind};
use crate::parser::types::SqlType;
use crate::planner::{self, rewrite, source_schema};

/// A running transient query: its columns, then rows until it ends. Dropping it
/// cancels the query.
pub struct QueryStream {
    pub query_id: String,
    /// (name, ksql type)
    pub columns: Vec<(String, String)>,
    pub rows: mpsc::Receiver<Result<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn new_stream(
    columns: Vec<(String, String)>,
) -> (
    QueryStream,
    mpsc::Sender<Result<Vec<Value>>>,
    Arc<AtomicBool>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let stop = Arc::new(AtomicBool::new(false));
    let id = format!("transient_{}", uuid::Uuid::new_v4().simple());
    (
        QueryStream {
            query_id: id,
            columns,
            rows: rx,
            stop: stop.clone(),
        },
        tx,
        stop,
    )
}

/// One record as its source's row; `None` for a tombstone.
pub fn decode_record(source: &Source, r: &Fetched) -> Result<Option<Row>> {
    decode_parts(
        source,
        r.key.as_deref(),
        r.value.as_deref(),
        &r.headers,
        (r.timestamp, r.partition, r.offset),
    )
}

/// A record given by its parts as its source's row; `None` for a tombstone.
pub(super) fn decode_parts(
    source: &Source,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &format::Headers,
    meta: (i64, i32, i64),
) -> Result<Option<Row>> {
    let keys: Vec<_> = source.key_columns().collect();
    let values: Vec<_> = source.value_columns().collect();
    let (key, window) = format::decode_key(source.key_format, key, &keys, source.windowed)?;
    let Some(value) = format::decode_value(
        source.value_format,
        value,
        &values,
        source.wrap_single_value,
    )?
    else {
        return Ok(None);
    };
    let window = source.windowed.map(|k| match (k, window) {
        (crate::parser::ast::WindowKind::Session, Some(w)) => w,
        (_, Some((s, _))) => (s, s + source.window_size_ms.unwrap_or(0)),
        (_, None) => (0, 0),
    });
    Ok(Some(source_row_of(
        source,
        key,
        Some(value),
        headers,
        meta,
        window,
    )))
}

pub(super) fn to_batch(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    rows: &[Row],
) -> Result<RecordBatch> {
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let mut cols = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let a = super::batch::column_of(rows, i)?;
        let a = if a.data_type() != f.data_type() {
            datafusion::arrow::compute::cast(&a, f.data_type())
                .map_err(|e| Error::Engine(e.to_string()))?
        } else {
            a
        };
        cols.push(a);
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::Engine(e.to_string()))
}

/// The source's rows now: a stream's every record, a table's latest row per key.
async fn snapshot(kafka: &Kafka, source: &Source) -> Result<Vec<Row>> {
    let records = kafka.read_all(&source.topic).await?;
    let mut rows = Vec::new();
    if source.kind == SourceKind::Stream {
        for r in &records {
            match decode_record(source, r) {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(topic = %source.topic, offset = r.offset, "record skipped: {e}")
                }
            }
        }
        return Ok(rows);
    }
    let mut latest: BTreeMap<(i32, Vec<u8>), usize> = BTreeMap::new();
    let mut kept: Vec<Option<Row>> = Vec::new();
    for r in &records {
        let k = (r.partition, r.key.clone().unwrap_or_default());
        let row = decode_record(source, r).unwrap_or(None);
        if let Some(i) = latest.remove(&k) {
            kept[i] = None;
        }
        if row.is_some() {
            latest.insert(k, kept.len());
            kept.push(row);
        }
    }
    rows.extend(kept.into_iter().flatten());
    Ok(rows)
}

/// Whether the store of `m` answers `q`: this instance holds all its partitions,
/// and the query does not ask for the topic's partitions or offsets.
fn store_serves(q: &KsqlQuery, m: &Materialized) -> bool {
    let text = q.query.to_string().to_ascii_uppercase();
    m.complete() && !text.contains("ROWPARTITION") && !text.contains("ROWOFFSET")
}

/// The rows of a materialized table `q` can match: by key when `q` reads this one
/// source and its WHERE names the key, else all.
async fn table_rows(m: &Materialized, q: &KsqlQuery, n_sources: usize) -> Result<Vec<Row>> {
    let keys = match q.query.body.as_ref() {
        SetExpr::Select(select) if n_sources == 1 => {
            materialized::key_lookups(select.selection.as_ref(), &m.compiled.sink)
        }
        _ => None,
    };
    let m = m.clone();
    tokio::task::spawn_blocking(move || m.rows(keys.as_deref()))
        .await
        .map_err(|e| Error::Engine(e.to_string()))?
}

fn column_list(schema: &datafusion::arrow::datatypes::Schema) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let t = SqlType::from_arrow(f.data_type())
                .map(|t| t.to_string())
                .unwrap_or_else(|| f.data_type().to_string());
            (f.name().clone(), t)
        })
        .collect()
}

/// A pull query or scan: runs to the end of what the sources hold now. A table in
/// `materialized` is read from its aggregation's state store (see `materialized`).
pub async fn pull(
    kafka: &Kafka,
    catalog: &Catalog,
    q: &KsqlQuery,
    materialized: &HashMap<String, Materialized>,
) -> Result<QueryStream> {
    if q.window.is_some() {
        return Err(Error::semantic(
            "WINDOW needs EMIT CHANGES: windowed aggregation is a push query",
        ));
    }
    let sources = planner::from_sources(q, catalog)?;
    let ctx = planner::session(8192)?;
    let mut from = Vec::new();
    for (source, alias) in &sources {
        let schema = source_schema(source, false);
        let name = datafusion::common::TableReference::bare(source.name.as_str());
        if source.kind == SourceKind::Stream {
            // A stream is read as it is scanned, one DataFusion partition per Kafka
            // partition (see `scan`).
            let (c, bs) = (kafka.consumer()?, kafka.bootstrap.clone());
            let (s, sc) = ((*source).clone(), schema.clone());
            let parts =
                tokio::task::spawn_blocking(move || super::scan::partitions(&c, &bs, &s, &sc))
                    .await
                    .map_err(|e| Error::Engine(e.to_string()))??;
            let table: Arc<dyn datafusion::catalog::TableProvider> = if parts.is_empty() {
                Arc::new(MemTable::try_new(schema, vec![Vec::new()])?)
            } else {
                let parts = parts
                    .into_iter()
                    .map(|p| {
                        Arc::new(p)
                            as Arc<dyn datafusion::physical_plan::streaming::PartitionStream>
                    })
                    .collect();
                Arc::new(datafusion::catalog::streaming::StreamingTable::try_new(
                    schema, parts,
                )?)
            };
            ctx.register_table(name, table)?;
        } else {
            let rows = match materialized.get(&source.name) {
                Some(m) if store_serves(q, m) => table_rows(m, q, sources.len()).await?,
                _ => snapshot(kafka, source).await?,
            };
            let batches: Vec<RecordBatch> = rows
                .chunks(super::scan::BATCH_ROWS)
                .map(|c| to_batch(&schema, c))
                .collect::<Result<_>>()?;
            ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
        }
        from.push(rewrite::FromSource {
            source,
            alias: alias.clone(),
            window_bounds: true,
        });
    }
    let mut query = q.query.clone();
    if let SetExpr::Select(select) = query.body.as_mut() {
        rewrite::expand_select(select, &from);
        planner::datestring::rewrite(select)?;
        rewrite::ksql_forms(select);
        rewrite::distinct_aggregates(select);
    }
    let df = ctx
        .sql(&query.to_string())
        .await
        .map_err(|e| planner::explain_error(e.into()))?;
    let columns = column_list(df.schema().as_arrow());
    let batches = df.collect().await?;
    let (stream, tx, _) = new_stream(columns);
    tokio::spawn(async move {
        for b in batches {
            for i in 0..b.num_rows() {
                let row: Vec<Value> = b
                    .columns()
                    .iter()
                    .map(|c| {
                        ScalarValue::try_from_array(c, i)
                            .map(|v| scalar_to_json(&v))
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                if tx.send(Ok(row)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(stream)
}

/// Records a push query hands its topology at once (what the consumer has queued, up
/// to this many): one batch for the vectorized stream operators.
const PUSH_BATCH: usize = 4096;

/// A push query: the query's topology over records from `auto.offset.reset` on.
pub fn push(
    kafka: &Kafka,
    plan: &planner::QueryPlan,
    props: &BTreeMap<String, String>,
) -> Result<QueryStream> {
    let sink = Source {
        name: "TRANSIENT".into(),
        kind: plan.kind,
        topic: "_transient_out".into(),
        key_format: Format::Kafka,
        value_format: Format::Json,
        columns: plan
            .columns
            .iter()
            .map(|c| Column {
                key: false,
                ..c.clone()
            })
            .collect(),
        timestamp: None,
        timestamp_format: None,
        wrap_single_value: true,
        windowed: plan.window.map(|w| w.kind),
        window_size_ms: plan.window.map(|w| w.size_ms),
        written_by: Vec::new(),
        read_only: false,
    };
    let columns = plan
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.sql_type.to_string()))
        .collect();
    let (stream, tx, stop) = new_stream(columns);
    let compiled = Compiled::new(&stream.query_id, plan, &sink)?;
    let topics: Vec<String> = match &plan.join {
        Some(j) => vec![j.left.topic.clone(), j.right.topic.clone()],
        None => vec![plan.source.topic.clone()],
    };
    let bootstrap = kafka.bootstrap.clone();
    let group = format!("_confluent-ksql-{}", stream.query_id);
    let earliest = props
        .get("auto.offset.reset")
        .is_some_and(|v| v == "earliest");
    let limit = plan.limit;
    let value_cols: Vec<Column> = sink.columns.clone();
    std::thread::Builder::new()
        .name(stream.query_id.clone())
        .spawn(move || {
            let run = || -> Result<()> {
                // Blocking client calls stay off the async runtime's threads.
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("group.id", &group)
                    .set("enable.auto.commit", "false")
                    .set("fetch.wait.max.ms", "100")
                    .set("fetch.queue.backoff.ms", "10")
                    .create()?;
                let mut tpl = TopicPartitionList::new();
                for t in &topics {
                    let md = consumer.fetch_metadata(Some(t), Duration::from_secs(10))?;
                    for p in md.topics().iter().flat_map(|mt| mt.partitions()) {
                        tpl.add_partition_offset(
                            t,
                            p.id(),
                            if earliest {
                                Offset::Beginning
                            } else {
                                Offset::End
                            },
                        )?;
                    }
                }
                consumer.assign(&tpl)?;
                let topology = super::persistent::topology(&compiled, false);
                let mut driver =
                    LocalRunner::new(topology).map_err(|e| Error::Engine(e.to_string()))?;
                let mut sent = 0usize;
                let cols: Vec<&Column> = value_cols.iter().collect();
                let mut batch = Vec::with_capacity(PUSH_BATCH);
                while !stop.load(Ordering::Relaxed) {
                    let Some(m) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    // The records' own partitions, offsets and headers: ROWPARTITION,
                    // ROWOFFSET and header columns are the source's.
                    batch.push(RawRecord::of_message(&m?));
                    while batch.len() < PUSH_BATCH {
                        match consumer.poll(Duration::ZERO) {
                            Some(m) => batch.push(RawRecord::of_message(&m?)),
                            None => break,
                        }
                    }
                    driver
                        .pipe_records(&batch)
                        .map_err(|e| Error::Engine(e.to_string()))?;
                    batch.clear();
                    let out = driver
                        .read_all::<Bytes, Bytes>(&compiled.sink.topic)
                        .map_err(|e| Error::Engine(e.to_string()))?;
                    for r in out {
                        let Some(v) = r.value else { continue };
                        let Some(row) = format::decode_value(Format::Json, Some(&v), &cols, true)?
                        else {
                            continue;
                        };
                        if tx
                            .blocking_send(Ok(row.iter().map(scalar_to_json).collect()))
                            .is_err()
                        {
                            return Ok(());
                        }
                        sent += 1;
                        if limit.is_some_and(|l| sent >= l) {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            };
            if let Err(e) = run() {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .map_err(Error::Io)?;
    Ok(stream)
}

/// PRINT: a topic's records as text, from the end (or the beginning) on.
pub fn print(
    kafka: &Kafka,
    topic: &str,
    from_beginning: bool,
    limit: Option<u64>,
) -> Result<QueryStream> {
    let columns = vec![("LINE".to_string(), "STRING".to_string())];
    let (stream, tx, stop) = new_stream(columns);
    let consumer = kafka.consumer()?;
    let topic = topic.to_string();
    std::thread::spawn(move || {
        let assign = || -> Result<()> {
            let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if parts.is_empty() {
                return Err(Error::semantic(format!("Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive.")));
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                tpl.add_partition_offset(
                    &topic,
                    p,
                    if from_beginning {
                        Offset::Beginning
                    } else {
                        Offset::End
                    },
                )?;
            }
            consumer.assign(&tpl)?;
            Ok(())
        };
        if let Err(e) = assign() {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut n = 0u64;
        let text = |b: Option<&[u8]>| {
            b.map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_else(|| "<null>".into())
        };
        while !stop.load(Ordering::Relaxed) && limit.is_none_or(|l| n < l) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let line = format!(
                        "rowtime: {}, key: {}, value: {}, partition: {}",
                        m.timestamp().to_millis().unwrap_or(0),
                        text(m.key()),
                        text(m.payload()),
                        m.partition()
                    );
                    if tx.blocking_send(Ok(vec![Value::String(line)])).is_err() {
                        return;
                    }
                    n += 1;
                }
                Some(Err(e)) => {
                    let _ = tx.blocking_send(Err(e.into()));
                    return;
                }
                None => {}
            }
        }
    });
    Ok(stream)
}
