//! `runnel consume`: print records from a topic, as a group member or standalone.

use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::client::Connection;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// The value only.
    Value,
    /// key<TAB>value
    KeyValue,
    /// One JSON object per record with topic, partition, offset, timestamp, key, value, headers.
    Json,
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    topic: String,
    /// Start at the beginning when there is no committed offset.
    #[arg(long)]
    from_beginning: bool,
    /// Consume as this group (commits offsets); without it, read every partition standalone.
    #[arg(long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop when no record arrived for this many milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    #[arg(long, value_enum, default_value = "value")]
    format: Format,
    #[command(flatten)]
    conn: Connection,
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn json_str(s: &Option<String>) -> String {
    match s {
        None => "null".to_string(),
        Some(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config = args.conn.config()?;
    let group = args
        .group
        .clone()
        .unwrap_or_else(|| format!("runnel-console-{}", std::process::id()));
    config
        .set("group.id", &group)
        .set(
            "enable.auto.commit",
            if args.group.is_some() {
                "true"
            } else {
                "false"
            },
        )
        .set(
            "auto.offset.reset",
            if args.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    let consumer: StreamConsumer = config.create().context("creating the consumer")?;
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let md = consumer.fetch_metadata(Some(&args.topic), Duration::from_secs(30))?;
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                let start = if args.from_beginning {
                    Offset::Beginning
                } else {
                    Offset::End
                };
                tpl.add_partition_offset(t.name(), p.id(), start)?;
            }
        }
        consumer.assign(&tpl)?;
    }
    let mut count = 0u64;
    loop {
        if args.max_messages.is_some_and(|m| count >= m) {
            break;
        }
        let next = match args.timeout_ms {
            Some(ms) => {
                match tokio::time::timeout(Duration::from_millis(ms), consumer.recv()).await {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            None => consumer.recv().await,
        };
        let m = next.context("consuming")?;
        let key = text(m.key());
        let value = text(m.payload());
        match args.format {
            Format::Value => println!("{}", value.unwrap_or_default()),
            Format::KeyValue => {
                println!("{}\t{}", key.unwrap_or_default(), value.unwrap_or_default())
            }
            Format::Json => {
                let headers: Vec<String> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                format!(
                                    "{}:{}",
                                    json_str(&Some(h.key.to_string())),
                                    json_str(&text(h.value))
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                println!(
                    "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{},\"key\":{},\"value\":{},\"headers\":{{{}}}}}",
                    json_str(&Some(m.topic().to_string())),
                    m.partition(),
                    m.offset(),
                    m.timestamp().to_millis().unwrap_or(-1),
                    json_str(&key),
                    json_str(&value),
                    headers.join(",")
                );
            }
        }
        count += 1;
    }
    if args.group.is_some() {
        let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    }
    eprintln!("Consumed {count} records.");
    Ok(())
}
