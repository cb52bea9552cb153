//! `runnel broker` and `runnel up`.

use std::path::PathBuf;

use anyhow::Context;
use runnel_broker::{Broker, BrokerConfig};

#[derive(clap::Args)]
pub struct BrokerArgs {
    /// A server.properties file with Kafka's keys.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where partition logs live (log.dirs).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on (listeners), e.g. 127.0.0.1:9092.
    #[arg(long)]
    listen: Option<String>,
    /// Host:port clients are told to connect to (advertised.listeners).
    #[arg(long)]
    advertised: Option<String>,
    /// Any server.properties key, as Kafka's --override key=value.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(clap::Args)]
pub struct UpArgs {
    /// Where the embedded broker keeps its data.
    #[arg(long, default_value = "runnel-data")]
    data_dir: PathBuf,
    /// Address of the embedded broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: String,
}

fn build_config(args: BrokerArgs) -> anyhow::Result<BrokerConfig> {
    let mut config = match &args.config {
        Some(path) => {
            BrokerConfig::load(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => BrokerConfig::default(),
    };
    if args.config.is_none()
        && args.data_dir.is_none()
        && !config.properties.contains_key("log.dirs")
    {
        config = config.with_property("log.dirs", "runnel-data")?;
    }
    if let Some(dir) = args.data_dir {
        config = config.with_property("log.dirs", dir.display().to_string())?;
    }
    if let Some(listen) = args.listen {
        config = config.with_property("listeners", format!("PLAINTEXT://{listen}"))?;
    }
    if let Some(adv) = args.advertised {
        config = config.with_property("advertised.listeners", format!("PLAINTEXT://{adv}"))?;
    }
    for o in args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o}: expected KEY=VALUE"))?;
        config = config.with_property(k.trim(), v.trim())?;
    }
    Ok(config)
}

async fn run_until_signal(config: BrokerConfig, banner: bool) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let handle = Broker::start(config).await.context("starting the broker")?;
    if banner {
        println!("Runnel is up:");
        println!(
            "  broker (Kafka protocol)  {}   data in {}",
            handle.bootstrap(),
            data_dir.display()
        );
        println!("Try: runnel topics create demo --partitions 3");
        println!("Stop with Ctrl-C.");
    } else {
        println!(
            "runnel broker listening on {} (data in {})",
            handle.bootstrap(),
            data_dir.display()
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    handle.shutdown().await.context("shutting down")?;
    Ok(())
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    run_until_signal(build_config(args)?, false).await
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let config = BrokerConfig::default()
        .with_property("log.dirs", args.data_dir.display().to_string())?
        .with_property("listeners", format!("PLAINTEXT://{}", args.listen))?;
    run_until_signal(config, true).await
}
