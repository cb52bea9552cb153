//! `runnel topics create|list|describe|alter|delete` through rdkafka's admin client.

use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;

use super::client::{parse_pairs, Connection};

#[derive(clap::Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create {
        topic: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, e.g. --config retention.ms=3600000
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List topics.
    List {
        #[command(flatten)]
        conn: Connection,
    },
    /// Show partitions, offsets and configs of topics (all when none is named).
    Describe {
        topic: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Change topic configs or add partitions.
    Alter {
        topic: String,
        #[arg(long)]
        partitions: Option<usize>,
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Delete a topic.
    Delete {
        topic: String,
        #[command(flatten)]
        conn: Connection,
    },
}

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(conn: &Connection) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    conn.config()?.create().context("creating the admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT))
}

fn check<T>(
    results: Vec<Result<String, (T, rdkafka::types::RDKafkaErrorCode)>>,
    what: &str,
) -> anyhow::Result<()>
where
    T: std::fmt::Display,
{
    for r in results {
        if let Err((name, code)) = r {
            bail!("{what} {name}: {code}");
        }
    }
    Ok(())
}

pub async fn run(cmd: TopicsCommand) -> anyhow::Result<()> {
    match cmd {
        TopicsCommand::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            conn,
        } => {
            let pairs = parse_pairs(&configs, "--config")?;
            let mut new = NewTopic::new(
                &topic,
                partitions,
                TopicReplication::Fixed(replication_factor),
            );
            for (k, v) in &pairs {
                new = new.set(k, v);
            }
            check(
                admin(&conn)?.create_topics([&new], &opts()).await?,
                "creating topic",
            )?;
            println!("Created topic {topic} with {partitions} partition(s).");
        }
        TopicsCommand::List { conn } => {
            use rdkafka::consumer::Consumer;
            let consumer: rdkafka::consumer::BaseConsumer = conn.config()?.create()?;
            let md = consumer
                .fetch_metadata(None, TIMEOUT)
                .context("fetching metadata")?;
            let mut names: Vec<&str> = md.topics().iter().map(|t| t.name()).collect();
            names.sort_unstable();
            for n in names {
                println!("{n}");
            }
        }
        TopicsCommand::Describe { topic, conn } => describe(&conn, topic.as_deref()).await?,
        TopicsCommand::Alter {
            topic,
            partitions,
            configs,
            conn,
        } => {
            let client = admin(&conn)?;
            if let Some(n) = partitions {
                check(
                    client
                        .create_partitions([&NewPartitions::new(&topic, n)], &opts())
                        .await?,
                    "adding partitions to",
                )?;
                println!("Topic {topic} now has {n} partitions.");
            }
            let pairs = parse_pairs(&configs, "--config")?;
            if !pairs.is_empty() {
                // AlterConfigs replaces the overrides: start from the current ones.
                let res = client
                    .describe_configs([&ResourceSpecifier::Topic(&topic)], &opts())
                    .await?;
                let current = res
                    .into_iter()
                    .next()
                    .context("no DescribeConfigs result")??;
                let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&topic));
                for e in current.entries.iter().filter(|e| {
                    !e.is_default && e.source == rdkafka::admin::ConfigSource::DynamicTopic
                }) {
                    if let Some(v) = &e.value {
                        alter = alter.set(&e.name, v);
                    }
                }
                for (k, v) in &pairs {
                    alter = alter.set(k, v);
                }
                for r in client.alter_configs([&alter], &opts()).await? {
                    if let Err((_, code)) = r {
                        bail!("altering configs of {topic}: {code}");
                    }
                }
                println!("Updated configs of {topic}.");
            }
        }
        TopicsCommand::Delete { topic, conn } => {
            check(
                admin(&conn)?.delete_topics(&[&topic], &opts()).await?,
                "deleting topic",
            )?;
            println!("Deleted topic {topic}.");
        }
    }
    Ok(())
}

async fn describe(conn: &Connection, topic: Option<&str>) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = conn.config()?.create()?;
    let md = consumer
        .fetch_metadata(topic, TIMEOUT)
        .context("fetching metadata")?;
    let client = admin(conn)?;
    for t in md.topics() {
        if let Some(err) = t.error() {
            bail!(
                "topic {}: {:?}",
                t.name(),
                rdkafka::types::RDKafkaErrorCode::from(err)
            );
        }
        println!("Topic: {}\tPartitions: {}", t.name(), t.partitions().len());
        let res = client
            .describe_configs([&ResourceSpecifier::Topic(t.name())], &opts())
            .await?;
        if let Some(Ok(cfg)) = res.into_iter().next() {
            let overrides: Vec<String> = cfg
                .entries
                .iter()
                .filter(|e| e.source == rdkafka::admin::ConfigSource::DynamicTopic)
                .map(|e| format!("{}={}", e.name, e.value.clone().unwrap_or_default()))
                .collect();
            println!("\tConfigs: {}", overrides.join(","));
        }
        for p in t.partitions() {
            let (low, high) = consumer.fetch_watermarks(t.name(), p.id(), TIMEOUT)?;
            println!(
                "\tPartition: {}\tLeader: {}\tStart offset: {low}\tEnd offset: {high}",
                p.id(),
                p.leader()
            );
        }
    }
    Ok(())
}
