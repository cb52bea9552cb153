//! `runnel produce`: one record per input line, optionally keyed.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::client::Connection;

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[arg(long)]
    topic: String,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long)]
    key_separator: Option<String>,
    /// Read lines from this file instead of stdin (shows a progress bar).
    #[arg(long)]
    file: Option<PathBuf>,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    #[command(flatten)]
    conn: Connection,
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = args.conn.config()?;
    config.set("acks", &args.acks).set("linger.ms", "5");
    let producer: FutureProducer = config.create().context("creating the producer")?;
    let (reader, bar): (Box<dyn BufRead>, Option<ProgressBar>) = match &args.file {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let bar = ProgressBar::new(file.metadata()?.len());
            bar.set_style(ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg}",
            )?);
            (
                Box::new(std::io::BufReader::new(bar.wrap_read(file))),
                Some(bar),
            )
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    let mut pending = Vec::new();
    let mut sent = 0u64;
    for line in reader.lines() {
        let line = line.context("reading input")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line),
            },
            None => (None, line),
        };
        let producer = producer.clone();
        let topic = args.topic.clone();
        pending.push(tokio::spawn(async move {
            let mut record = FutureRecord::<String, String>::to(&topic).payload(&value);
            if let Some(k) = &key {
                record = record.key(k);
            }
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
        }));
        sent += 1;
        if pending.len() >= 10_000 {
            for p in pending.drain(..) {
                p.await?.context("producing")?;
            }
        }
    }
    for p in pending {
        p.await?.context("producing")?;
    }
    if let Some(bar) = bar {
        bar.finish_with_message(format!("{sent} records"));
    }
    eprintln!("Produced {sent} records to {}.", args.topic);
    Ok(())
}
