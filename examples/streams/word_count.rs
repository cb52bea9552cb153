//! Word count, as Kafka Streams' WordCountDemo: reads lines from
//! `streams-plaintext-input`, counts words (lower-cased), writes each new count as text
//! to `streams-wordcount-output` (key: the word).
//!
//! ```sh
//! cargo run --release -- up                                        # terminal 1
//! cargo run --release -- topics create streams-plaintext-input --partitions 4
//! cargo run --release --example word_count                         # terminal 2
//! echo "all streams lead to kafka" | cargo run --release -- produce --topic streams-plaintext-input
//! cargo run --release -- consume --topic streams-wordcount-output --from-beginning --format key-value
//! ```
//!
//! Options: `--bootstrap-server`, `--input`, `--output`, `--application-id`,
//! `--state-dir`, `--commit-interval-ms`, `--processing-guarantee` (`at_least_once` or
//! `exactly_once_v2`), `--cache-max-bytes` (the record cache, 10 MiB; with it a word's
//! updates between two commits are one output record, 0 writes every count). Ctrl-C (or
//! SIGTERM) commits and stops.

#[path = "common.rs"]
mod common;

use anyhow::Context;
use common::arg;
use runnel::streams::{KafkaStreams, Materialized, StreamsBuilder, StreamsConfig};

fn main() -> anyhow::Result<()> {
    common::init_logging();
    let input = arg("--input", "streams-plaintext-input");
    let output = arg("--output", "streams-wordcount-output");
    let config = StreamsConfig::new(
        &arg("--application-id", "streams-wordcount"),
        &arg("--bootstrap-server", "127.0.0.1:9092"),
    )?
    .with("commit.interval.ms", &arg("--commit-interval-ms", "1000"))?
    .with(
        "processing.guarantee",
        &arg("--processing-guarantee", "at_least_once"),
    )?
    .with(
        "state.dir",
        &arg("--state-dir", &common::default_state_dir()),
    )?
    .with(
        "statestore.cache.max.bytes",
        &arg("--cache-max-bytes", "10485760"),
    )?;

    let builder = StreamsBuilder::new();
    builder
        .stream::<(), String>(&input)
        .flat_map_values(|line: String| line.split_whitespace().map(str::to_lowercase).collect())
        .group_by(|_, word: &String| word.clone())
        .count(Materialized::named("counts"))
        .to_stream()
        .map_values(|count: Option<i64>| count.unwrap_or(0).to_string())
        .to(&output);
    let mut streams = KafkaStreams::new(builder.build(), config);
    streams.start().context("starting the word count")?;
    eprintln!("word count running: {input} -> {output}");
    common::wait_for_shutdown()?;
    streams.close().context("stopping the word count")?;
    Ok(())
}
