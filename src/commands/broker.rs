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
    /// Address of the Connect worker's REST API.
    #[arg(long, default_value = "127.0.0.1:8083")]
    connect_listen: String,
    /// Address of the KSQL server's REST API.
    #[arg(long, default_value = "127.0.0.1:8088")]
    ksql_listen: String,
    /// Connector files (JSON or .properties) to run at start-up.
    #[arg(long = "connector")]
    connectors: Vec<PathBuf>,
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

async fn run_until_signal(config: BrokerConfig) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    let handle = Broker::start(config).await.context("starting the broker")?;
    println!(
        "runnel broker listening on {} (data in {})",
        handle.bootstrap(),
        data_dir.display()
    );
    wait_for_signal().await?;
    handle.shutdown().await.context("shutting down")?;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

pub async fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    run_until_signal(build_config(args)?).await
}

/// The embedded default: the broker, a Connect worker and the KSQL server, which
/// reach it through rdkafka like any other client.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let config = BrokerConfig::default()
        .with_property("log.dirs", args.data_dir.display().to_string())?
        .with_property("listeners", format!("PLAINTEXT://{}", args.listen))?;
    let data_dir = config.data_dir.clone();
    let broker = Broker::start(config).await.context("starting the broker")?;
    let mut worker_props = runnel_connect::api::Config::new();
    for (k, v) in [
        ("bootstrap.servers", broker.bootstrap()),
        ("listeners", format!("http://{}", args.connect_listen)),
        (
            "offset.storage.file.filename",
            data_dir.join("connect.offsets").display().to_string(),
        ),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        (
            "value.converter",
            "org.apache.kafka.connect.storage.StringConverter".into(),
        ),
        ("offset.flush.interval.ms", "10000".into()),
    ] {
        worker_props.insert(k.into(), v);
    }
    let worker_config = runnel_connect::WorkerConfig::from_props(worker_props)?;
    let mut connectors = Vec::new();
    for c in &args.connectors {
        connectors.push(
            runnel_connect::standalone::load_connector(c)
                .with_context(|| format!("reading {}", c.display()))?,
        );
    }
    let connect = runnel_connect::standalone::Standalone::start(worker_config, connectors)
        .await
        .context("starting Connect")?;
    let (ksql, ksql_addr, ksql_server) = super::ksql::start_server(
        &broker.bootstrap(),
        &args.ksql_listen,
        data_dir.join("ksql"),
        "default_",
    )
    .await?;
    println!("Runnel is up:");
    println!(
        "  broker (Kafka protocol)   {}   data in {}",
        broker.bootstrap(),
        data_dir.display()
    );
    println!("  Connect REST API          http://{}", connect.rest_addr);
    println!("  KSQL server               http://{ksql_addr}");
    println!("Try: runnel topics create demo --partitions 3");
    println!("     curl http://{}/connector-plugins", connect.rest_addr);
    println!("     runnel ksql http://{ksql_addr}");
    println!("Stop with Ctrl-C.");
    wait_for_signal().await?;
    ksql_server.abort();
    ksql.shutdown().await;
    connect.shutdown().await;
    broker.shutdown().await.context("shutting down")?;
    Ok(())
}
