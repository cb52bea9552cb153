//! The Connect runtime's error type.

/// Errors of connectors, converters, transforms and the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid value for configuration {field}: {reason}")]
    Config { field: String, reason: String },
    #[error("missing required configuration \"{0}\" which has no default value")]
    MissingConfig(String),
    #[error("failed to find any class that implements Connector and which name matches {0}")]
    UnknownClass(String),
    #[error("conversion error: {0}")]
    Conversion(String),
    #[error("transformation error: {0}")]
    Transform(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("Kafka error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("connector {0} not found")]
    NotFound(String),
    #[error("connector {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Task(String),
    /// A failure worth trying again (a connection lost, a server busy): the runtime
    /// retries the operation for `errors.retry.timeout`, as for Kafka Connect's
    /// RetriableException.
    #[error("retriable error: {0}")]
    Retriable(String),
    #[error("worker group error: {0}")]
    Group(String),
    #[error("{topic} is not readable: {reason}")]
    Storage { topic: String, reason: String },
    #[error("request timed out: {0}")]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(field: &str, reason: impl Into<String>) -> Error {
        Error::Config {
            field: field.to_string(),
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
