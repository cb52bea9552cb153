//! The Streams library's error type.

/// Errors of serdes, state stores, topologies and the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot deserialize {what}: {reason}")]
    Deserialize { what: String, reason: String },
    #[error("state store {store}: {reason}")]
    Store { store: String, reason: String },
    #[error("invalid value for configuration {key}: {reason}")]
    Config { key: String, reason: String },
    #[error("invalid topology: {0}")]
    Topology(String),
    #[error("Kafka error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no state store {0} is available here (unknown, or its tasks run elsewhere)")]
    UnknownStore(String),
    #[error("{0}")]
    Runtime(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn store(store: &str, reason: impl std::fmt::Display) -> Error {
        Error::Store {
            store: store.to_string(),
            reason: reason.to_string(),
        }
    }
    pub fn config(key: &str, reason: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
