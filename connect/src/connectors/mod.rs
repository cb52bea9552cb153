//! The connector registry: `connector.class` (Kafka's class names or short aliases) to
//! the connector; each connector defines its own keys (`config_def`).

pub mod file;
pub mod postgres;

use std::sync::Arc;

use crate::api::config_def::ConfigDef;
use crate::api::{SinkConnector, SourceConnector};
use crate::error::{Error, Result};

#[derive(Clone)]
pub enum Connector {
    Source(Arc<dyn SourceConnector>),
    Sink(Arc<dyn SinkConnector>),
}

impl Connector {
    /// The connector's own keys.
    pub fn config_def(&self) -> ConfigDef {
        match self {
            Connector::Source(c) => c.config_def(),
            Connector::Sink(c) => c.config_def(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Connector::Source(_) => "source",
            Connector::Sink(_) => "sink",
        }
    }
}

/// A connector plugin as GET /connector-plugins lists it.
pub struct Plugin {
    pub class: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: &'static str,
    make: fn() -> Connector,
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn plugins() -> Vec<Plugin> {
    vec![
        Plugin {
            class: "org.apache.kafka.connect.file.FileStreamSourceConnector",
            aliases: &["FileStreamSource", "FileStreamSourceConnector"],
            kind: "source",
            make: || Connector::Source(Arc::new(file::FileStreamSourceConnector)),
        },
        Plugin {
            class: "org.apache.kafka.connect.file.FileStreamSinkConnector",
            aliases: &["FileStreamSink", "FileStreamSinkConnector"],
            kind: "sink",
            make: || Connector::Sink(Arc::new(file::FileStreamSinkConnector)),
        },
        Plugin {
            class: "io.confluent.connect.jdbc.JdbcSourceConnector",
            aliases: &[
                "PostgresSource",
                "PostgresSourceConnector",
                "JdbcSourceConnector",
            ],
            kind: "source",
            make: || Connector::Source(Arc::new(postgres::source::PostgresSourceConnector)),
        },
        Plugin {
            class: "io.debezium.connector.postgresql.PostgresConnector",
            aliases: &[
                "PostgresCdcSource",
                "PostgresCdcSourceConnector",
                "PostgresConnector",
            ],
            kind: "source",
            make: || Connector::Source(Arc::new(postgres::cdc::PostgresCdcConnector)),
        },
        Plugin {
            class: "io.confluent.connect.jdbc.JdbcSinkConnector",
            aliases: &["PostgresSink", "PostgresSinkConnector", "JdbcSinkConnector"],
            kind: "sink",
            make: || Connector::Sink(Arc::new(postgres::sink::PostgresSinkConnector)),
        },
    ]
}

/// Finds a plugin by class name or alias.
pub fn find(class: &str) -> Result<Plugin> {
    plugins()
        .into_iter()
        .find(|p| p.class == class || p.aliases.contains(&class))
        .ok_or_else(|| Error::UnknownClass(class.to_string()))
}

impl Plugin {
    pub fn instantiate(&self) -> Connector {
        (self.make)()
    }
}
