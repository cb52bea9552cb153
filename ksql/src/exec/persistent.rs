//! A persistent query as a Runnel Streams application: the source topic feeds a
//! `QueryProcessor` (with its state stores) whose output goes to the sink topic. The
//! application id is derived from the query id, so a restarted server resumes each
//! query from its committed offsets and restores its stores from their changelogs.

use std::path::Path;
use std::sync::Arc;

use runnel_streams::{KStream, KafkaStreams, Materialized, StreamsBuilder, StreamsConfig};

use super::compiled::{Compiled, TABLE_STORE};
use super::join::{JoinProcessor, Tagged};
use super::processor::{Bytes, QueryProcessor};
use super::rekey::{Rekey, RekeyProcessor};
use crate::error::{Error, Result};

/// ksqlDB's naming: `_confluent-ksql-<service id>query_<query id>`.
pub fn application_id(service_id: &str, query_id: &str) -> String {
    format!("_confluent-ksql-{service_id}query_{query_id}")
}

pub fn topology(q: &Arc<Compiled>) -> runnel_streams::Topology {
    let builder = StreamsBuilder::new();
    let stores = q.stores().into_iter().map(Materialized::named).collect();
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
            tagged.process(move || QueryProcessor::new(c.clone()), stores)
        }
        Some(j) if j.foreign_key => {
            // Both sides through a repartition topic keyed alike (see `foreign_key`).
            let (l, r) = (q.clone(), q.clone());
            let left: KStream<Bytes, Bytes> = builder.stream(&j.left.topic);
            let right: KStream<Bytes, Bytes> = builder.stream(&j.right.topic);
            let left: KStream<Bytes, Tagged> = left
                .process(
                    move || RekeyProcessor::new(l.clone(), Rekey::ForeignKey),
                    vec![Materialized::named(TABLE_STORE)],
                )
                .repartition(None);
            let right: KStream<Bytes, Tagged> = right
                .process(
                    move || RekeyProcessor::new(r.clone(), Rekey::JoinRight),
                    Vec::new(),
                )
                .repartition(None);
            left.merge(&right).process(
                move || JoinProcessor::new(QueryProcessor::new(c.clone())),
                stores,
            )
        }
        Some(j) => {
            let left: KStream<Bytes, Bytes> = builder.stream(&j.left.topic);
            let right: KStream<Bytes, Bytes> = builder.stream(&j.right.topic);
            let left: KStream<Bytes, Tagged> = if j.left_rekey {
                let r = q.clone();
                left.process(
                    move || RekeyProcessor::new(r.clone(), Rekey::JoinLeft),
                    Vec::new(),
                )
                .repartition(None)
            } else {
                left.map_values(|v| Tagged::of(false, v))
            };
            let merged = left.merge(&right.map_values(|v| Tagged::of(true, v)));
            merged.process(
                move || JoinProcessor::new(QueryProcessor::new(c.clone())),
                stores,
            )
        }
    };
    out.to(&q.sink.topic);
    builder.build()
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
    let mut streams = KafkaStreams::new(topology(q), config);
    streams
        .start()
        .map_err(|e| Error::Engine(format!("query {} did not start: {e}", q.query_id)))?;
    Ok(streams)
}
