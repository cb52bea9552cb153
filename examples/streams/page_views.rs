//! Page views per region per minute: a stream-table join (each view is enriched with
//! its user's region from the `users` table) and a windowed count (one-minute tumbling
//! windows, 10 s grace), written as text to `page-views-per-region` with the key
//! `<region>@<window start ms>`.
//!
//! ```sh
//! cargo run --release -- up                                        # terminal 1
//! cargo run --release -- topics create page-views --partitions 4
//! cargo run --release -- topics create users --partitions 4
//! cargo run --release --example page_views                         # terminal 2
//! printf 'alice:eu\nbob:us\n' | cargo run --release -- produce --topic users --key-separator :
//! printf 'alice:/home\nbob:/cart\nalice:/cart\n' | cargo run --release -- produce --topic page-views --key-separator :
//! cargo run --release -- consume --topic page-views-per-region --from-beginning --format key-value
//! ```
//!
//! Options: `--bootstrap-server`, `--application-id`, `--state-dir`. Ctrl-C stops.

use std::time::Duration;

#[path = "common.rs"]
mod common;

use anyhow::Context;
use common::arg;
use runnel::streams::{
    KafkaStreams, Materialized, StreamsBuilder, StreamsConfig, TimeWindows, Windowed,
};

fn main() -> anyhow::Result<()> {
    common::init_logging();
    let config = StreamsConfig::new(
        &arg("--application-id", "page-views"),
        &arg("--bootstrap-server", "127.0.0.1:9092"),
    )?
    .with("commit.interval.ms", "1000")?
    .with(
        "state.dir",
        &arg("--state-dir", &common::default_state_dir()),
    )?;

    let builder = StreamsBuilder::new();
    let users = builder.table::<String, String>("users", Materialized::named("user-regions"));
    builder
        .stream::<String, String>("page-views")
        .left_join_table(&users, |_page, region| {
            region.cloned().unwrap_or_else(|| "unknown".into())
        })
        .group_by(|_user, region: &String| region.clone())
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count(Materialized::named("views-per-region"))
        .to_stream()
        .map(|w: Windowed<String>, count: Option<i64>| {
            (
                format!("{}@{}", w.key, w.window.start),
                count.unwrap_or(0).to_string(),
            )
        })
        .to("page-views-per-region");
    let mut streams = KafkaStreams::new(builder.build(), config);
    streams.start().context("starting page views")?;
    eprintln!("page views running: page-views + users -> page-views-per-region");
    common::wait_for_shutdown()?;
    streams.close().context("stopping page views")?;
    Ok(())
}
