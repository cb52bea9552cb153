//! Subcommands of `runnel`, one file each.

mod broker;
mod client;
mod connect;
mod consume;
mod groups;
mod ksql;
mod perf;
mod perf_ksql;
mod perf_loopback;
mod perf_sink;
mod perf_streams;
mod produce;
mod topics;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "An event streaming platform that speaks the Kafka protocol"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (Kafka wire protocol) in the foreground.
    Broker(broker::BrokerArgs),
    /// Run the embedded default: the broker with its data under ./runnel-data.
    Up(broker::UpArgs),
    /// Run Kafka Connect workers.
    #[command(subcommand)]
    Connect(connect::ConnectCommand),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Produce lines from stdin or a file.
    Produce(produce::ProduceArgs),
    /// Consume records and print them.
    Consume(consume::ConsumeArgs),
    /// List and describe consumer groups, reset their offsets.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// The KSQL shell: SQL over streams and tables, against a KSQL server.
    Ksql(ksql::KsqlArgs),
    /// Run the KSQL server (REST API, persistent queries) against a Kafka cluster.
    KsqlServer(ksql::KsqlServerArgs),
    /// Measure produce and consume throughput and latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
}

impl Cli {
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Broker(_) | Command::Up(_) | Command::Connect(_) | Command::KsqlServer(_) => {
                "info"
            }
            _ => "warn",
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Broker(args) => broker::broker(args).await,
        Command::Up(args) => broker::up(args).await,
        Command::Connect(cmd) => connect::run(cmd).await,
        Command::Topics(cmd) => topics::run(cmd).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Groups(cmd) => groups::run(cmd).await,
        Command::Perf(cmd) => perf::run(cmd).await,
        Command::Ksql(args) => ksql::shell(args).await,
        Command::KsqlServer(args) => ksql::server(args).await,
    }
}
