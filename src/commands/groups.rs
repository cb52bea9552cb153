//! `runnel groups list|describe|reset-offsets`.

use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::client::Connection;

#[derive(clap::Subcommand)]
pub enum GroupsCommand {
    /// List consumer groups.
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Show a group's state, members, committed offsets and lag per partition.
    Describe {
        group: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long, conflicts_with_all = ["to_latest", "to_offset"])]
        to_earliest: bool,
        #[arg(long, conflicts_with = "to_offset")]
        to_latest: bool,
        #[arg(long)]
        to_offset: Option<i64>,
        /// Apply the change; without it the plan is only printed (as Kafka's dry run).
        #[arg(long)]
        execute: bool,
        #[command(flatten)]
        conn: Connection,
    },
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn consumer_for(conn: &Connection, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut c = conn.config()?;
    c.set("group.id", group).set("enable.auto.commit", "false");
    c.create().context("creating a client")
}

/// Committed offsets of `group` for every partition of `topics`.
fn committed(consumer: &BaseConsumer, topics: &[String]) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let md = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    Ok(consumer.committed_offsets(tpl, TIMEOUT)?)
}

pub async fn run(cmd: GroupsCommand) -> anyhow::Result<()> {
    match cmd {
        GroupsCommand::List { conn } => {
            let consumer: BaseConsumer = conn.config()?.create()?;
            let list = consumer
                .fetch_group_list(None, TIMEOUT)
                .context("listing groups")?;
            let mut names: Vec<(String, String)> = list
                .groups()
                .iter()
                .map(|g| (g.name().to_string(), g.state().to_string()))
                .collect();
            names.sort();
            for (n, s) in names {
                println!("{n}\t{s}");
            }
        }
        GroupsCommand::Describe { group, conn } => {
            let consumer = consumer_for(&conn, &group)?;
            let list = consumer
                .fetch_group_list(Some(&group), TIMEOUT)
                .context("describing the group")?;
            let Some(g) = list.groups().first() else {
                bail!("group {group} not found")
            };
            println!(
                "Group: {}\tState: {}\tProtocol: {}\tMembers: {}",
                g.name(),
                g.state(),
                g.protocol(),
                g.members().len()
            );
            for m in g.members() {
                println!(
                    "\tMember: {}\tClient: {}\tHost: {}",
                    m.id(),
                    m.client_id(),
                    m.client_host()
                );
            }
            let md = consumer.fetch_metadata(None, TIMEOUT)?;
            let topics: Vec<String> = md
                .topics()
                .iter()
                .map(|t| t.name().to_string())
                .filter(|t| !t.starts_with("__"))
                .collect();
            let offsets = committed(&consumer, &topics)?;
            println!("TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG");
            for e in offsets.elements() {
                let Offset::Offset(current) = e.offset() else {
                    continue;
                };
                let (_, end) = consumer.fetch_watermarks(e.topic(), e.partition(), TIMEOUT)?;
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    e.topic(),
                    e.partition(),
                    current,
                    end,
                    end - current
                );
            }
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            execute,
            conn,
        } => {
            if !(to_earliest || to_latest || to_offset.is_some()) {
                bail!("say where to: --to-earliest, --to-latest or --to-offset N");
            }
            let consumer = consumer_for(&conn, &group)?;
            let current = committed(&consumer, std::slice::from_ref(&topic))?;
            let mut target = TopicPartitionList::new();
            println!("TOPIC\tPARTITION\tNEW-OFFSET");
            for e in current.elements() {
                let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), TIMEOUT)?;
                let offset = match to_offset {
                    Some(o) => o.clamp(low, high),
                    None if to_earliest => low,
                    None => high,
                };
                println!("{}\t{}\t{}", e.topic(), e.partition(), offset);
                target.add_partition_offset(e.topic(), e.partition(), Offset::Offset(offset))?;
            }
            if execute {
                consumer
                    .commit(&target, CommitMode::Sync)
                    .context("committing the new offsets (is the group still active?)")?;
                println!("Offsets of group {group} were reset.");
            } else {
                println!("Dry run: add --execute to apply.");
            }
        }
    }
    Ok(())
}
