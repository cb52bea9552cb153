//! `runnel ksql` (the shell) and `runnel ksql-server`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use runnel_ksql::engine::{Engine, EngineConfig};
use runnel_ksql::shell::Shell;

#[derive(clap::Args)]
pub struct KsqlArgs {
    /// The KSQL server's URL.
    #[arg(default_value = "http://127.0.0.1:8088")]
    server: String,
    /// Run the statements of a file, then exit.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Run these statements, then exit.
    #[arg(long, short = 'e')]
    execute: Option<String>,
}

#[derive(clap::Args)]
pub struct KsqlServerArgs {
    /// The Kafka cluster to run on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    /// Address of the REST API.
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: String,
    /// Where persistent queries keep their state stores.
    #[arg(long, default_value = "runnel-data/ksql")]
    state_dir: PathBuf,
    /// ksql.service.id: names the command topic and the queries' consumer groups.
    #[arg(long, default_value = "default_")]
    service_id: String,
}

pub async fn shell(args: KsqlArgs) -> anyhow::Result<()> {
    let mut shell = Shell::new(&args.server);
    let version = shell
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.server))?;
    let mut out = std::io::stdout();
    if let Some(f) = &args.file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(shell.run_script(&text, &mut out).await?);
    }
    if let Some(sql) = &args.execute {
        return Ok(shell.run_script(sql, &mut out).await?);
    }
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(shell.run_script(&text, &mut out).await?);
    }
    println!(
        "runnel ksql shell, server {} (version {version})",
        args.server
    );
    println!("Statements end with ';'. Ctrl-C cancels a running query; Ctrl-D or 'exit' leaves.");
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".runnel_ksql_history"));
    shell.interactive(history).await?;
    Ok(())
}

/// Starts the engine and its REST API; returns them running.
pub async fn start_server(
    bootstrap: &str,
    listen: &str,
    state_dir: PathBuf,
    service_id: &str,
) -> anyhow::Result<(
    Arc<Engine>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
)> {
    let mut config = EngineConfig::new(bootstrap, state_dir);
    config.service_id = service_id.to_string();
    let engine = Engine::start(config)
        .await
        .context("starting the KSQL engine")?;
    let addr = listen
        .parse()
        .with_context(|| format!("--listen {listen}: expected host:port"))?;
    let (addr, handle) = runnel_ksql::server::serve(engine.clone(), addr)
        .await
        .with_context(|| format!("binding {listen}"))?;
    Ok((engine, addr, handle))
}

pub async fn server(args: KsqlServerArgs) -> anyhow::Result<()> {
    let (engine, addr, handle) = start_server(
        &args.bootstrap_server,
        &args.listen,
        args.state_dir,
        &args.service_id,
    )
    .await?;
    println!(
        "runnel KSQL server listening on http://{addr} (Kafka at {})",
        args.bootstrap_server
    );
    super::broker::wait_for_signal().await?;
    handle.abort();
    engine.shutdown().await;
    Ok(())
}
