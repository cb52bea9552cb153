//! Shared rdkafka set-up for the client commands.

use rdkafka::config::ClientConfig;

/// Flags every client command takes.
#[derive(clap::Args, Clone)]
pub struct Connection {
    /// Kafka bootstrap servers (host:port[,host:port...]).
    #[arg(
        long,
        default_value = "127.0.0.1:9092",
        env = "RUNNEL_BOOTSTRAP_SERVER"
    )]
    pub bootstrap_server: String,
    /// Extra client properties (librdkafka names), e.g. --property compression.type=lz4.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

impl Connection {
    pub fn config(&self) -> anyhow::Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_server);
        for p in &self.properties {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--property {p}: expected KEY=VALUE"))?;
            c.set(k.trim(), v.trim());
        }
        Ok(c)
    }
}

/// Parses `k=v` pairs from repeated flags.
pub fn parse_pairs(pairs: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow::anyhow!("{flag} {p}: expected KEY=VALUE"))
        })
        .collect()
}
