//! A persistent query as a Runnel Streams application: the source topic feeds a
//! `QueryProcessor` (with its state stores) whose output goes to the sink topic. The
//! application id is derived from the query id, so a restarted server resumes each
//! query from its committed offsets and restores its stores from their changelogs.

use std::path::Path;
use std::sync::Arc;

use runnel_streams::{KStream, KafkaStreams, Materialized, StreamsBuilder, StreamsConfig};

use super::compiled::{Compiled, AGG_STORE, FINAL_STORE, TABLE_STORE};
use super::join::{JoinProcessor, Tagged};
use super::processor::{Bytes, QueryProcessor};
use super::rekey::{Rekey, RekeyProcessor};
use crate::error::{Error, Result};

/// ksqlDB's naming: `_confluent-ksql-<service id>query_<query id>`.
pub fn application_id(service_id: &str, query_id: &str) -> String {
    format!("_confluent-ksql-{service_id}query_{query_id}")
}

/// The query's topology; `caching` says whether the Streams record cache is on (an
/// aggregation then emits a group's result once per batch, as a cached KTable does).
pub fn topology(q: &Arc<Compiled>, caching: bool) -> runnel_streams::Topology {
    let builder = StreamsBuilder::new();
    // An aggregation writes its group's state for every record: behind the record
    // cache (`cache.max.bytes.buffering`) the store and its changelog get each key once
    // per commit. The query still emits every update itself.
    let stores = q
        .stores()
        .into_iter()
        .map(|s| {
            let m = Materialized::named(s);
            if [AGG_STORE, FINAL_STORE, TABLE_STORE].contains(&s) {
                m.with_caching_enabled()
            } else {
                m
            }
        })
        .collect();
    let c = q.clone();
    let out: KStream<Bytes, Bytes> = match &q.join {
        None => {
            let input: KStream<Bytes, Bytes> = builder.stream(&q.source.topic);
            let tagged: KStream<Bytes, Tagged> = if q.repartition {
                let r = q.clone();
                let stage1 = q
                    .rekey_stores()
                    .into_iter()
                    .map(Materialized::named)
                    .collect();
                input
                    .process(move || RekeyProcessor::new(r.clone(), Rekey::Group), stage1)
                    .repartition(None)
            } else {
                input.map_values(|v| Tagged::of(false, v))
            };
            tagged.process(
                move || QueryProcessor::new(c.clone()).with_caching(caching),
                stores,
            )
        }
        Some(j) => {
            let left: KStream<Bytes, Bytes> = builder.stream(&j.left.topic);
            let right: KStream<Bytes, Bytes> = builder.stream(&j.right.topic);
            // Sides that meet by something else than their keys both go through a
            // repartition topic keyed alike, so that equal join keys reach one task
            // whatever the input topics' partitioning.
            let (left, right) = if j.foreign_key || j.left_rekey || j.right_rekey {
                let (by, stage) = if j.foreign_key {
                    (Rekey::ForeignKey, vec![Materialized::named(TABLE_STORE)])
                } else {
                    (Rekey::JoinLeft, Vec::new())
                };
                (
                    rekeyed(&left, q, by, stage),
                    rekeyed(&right, q, Rekey::JoinRight, Vec::new()),
                )
            } else {
                (
                    left.map_values(|v| Tagged::of(false, v)),
                    right.map_values(|v| Tagged::of(true, v)),
                )
            };
            left.merge(&right).process(
                move || JoinProcessor::new(QueryProcessor::new(c.clone())),
                stores,
            )
        }
    };
    out.to(&q.sink.topic);
    builder.build()
}

/// `input` re-keyed by `by` and written through a repartition topic.
fn rekeyed(
    input: &KStream<Bytes, Bytes>,
    q: &Arc<Compiled>,
    by: Rekey,
    stores: Vec<Materialized>,
) -> KStream<Bytes, Tagged> {
    let q = q.clone();
    input
        .process(move || RekeyProcessor::new(q.clone(), by), stores)
        .repartition(None)
}

/// Builds and starts the query's Streams application (blocks while it starts).
pub fn start(
    q: &Arc<Compiled>,
    service_id: &str,
    bootstrap: &str,
    state_dir: &Path,
    props: &[(String, String)],
) -> Result<KafkaStreams> {
    let app = application_id(service_id, &q.query_id);
    let mut config = StreamsConfig::new(&app, bootstrap)
        .and_then(|c| c.with("state.dir", &state_dir.to_string_lossy()))
        .and_then(|c| c.with("commit.interval.ms", "100"))
        .map_err(|e| Error::Engine(e.to_string()))?;
    for (k, v) in props {
        config = config
            .with(k, v)
            .map_err(|e| Error::Engine(e.to_string()))?;
    }
    let caching = config.cache_max_bytes > 0;
    let mut streams = KafkaStreams::new(topology(q, caching), config);
    streams
        .start()
        .map_err(|e| Error::Engine(format!("query {} did not start: {e}", q.query_id)))?;
    Ok(streams)
}
