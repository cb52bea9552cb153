//! The Connect runtime's error type.

/// Errors of connectors, converters, transforms and the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid value for configuration {field}: {reason}")]
    Config { field: String, reason: String },
    /// Kafka's ConfigException for a key without a value or default.
    #[error("Missing required configuration \"{0}\" which has no default value.")]
    MissingConfig(String),
    /// Kafka's ConfigException for a value its definition refuses.
    #[error("Invalid value {value} for configuration {field}: {message}")]
    InvalidValue {
        field: String,
        value: String,
        message: String,
    },
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
    /// A config error as the key it concerns and Kafka Connect's message for it, as
    /// the validate endpoint and a refused connector config show it.
    pub fn field_message(self) -> (String, String) {
        match self {
            Error::Config { field, reason } => {
                let message = format!("Invalid value for configuration {field}: {reason}");
                (field, message)
            }
            Error::MissingConfig(ref field) | Error::InvalidValue { ref field, .. } => {
                (field.clone(), self.to_string())
            }
            e => ("connector.class".into(), e.to_string()),
        }
    }
    /// The same error with `prefix` before the key it names (a transform's or
    /// converter's own key inside a connector config: `transforms.<alias>.`).
    pub fn under(self, prefix: &str) -> Error {
        match self {
            Error::Config { field, reason } => Error::Config {
                field: format!("{prefix}{field}"),
                reason,
            },
            Error::MissingConfig(field) => Error::MissingConfig(format!("{prefix}{field}")),
            Error::InvalidValue {
                field,
                value,
                message,
            } => Error::InvalidValue {
                field: format!("{prefix}{field}"),
                value,
                message,
            },
            other => other,
        }
    }
    pub fn io(path: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}
