//! The broker's error type and Kafka's error codes.

use std::io;

/// Errors raised inside the broker. Protocol handlers turn them into [`ErrorCode`]s.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    #[error("unknown config key {0}")]
    UnknownConfig(String),
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopic { name: String, reason: String },
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("unknown topic or partition {0}")]
    UnknownTopicOrPartition(String),
    #[error("{1} ({0:?})")]
    Kafka(ErrorCode, String),
}

/// Library result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl std::fmt::Display, source: io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }

    /// The Kafka error code a client should see for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Io { .. } => ErrorCode::KafkaStorageError,
            Error::CorruptBatch(_) => ErrorCode::CorruptMessage,
            Error::InvalidConfig { .. } | Error::UnknownConfig(_) => ErrorCode::InvalidConfig,
            Error::InvalidTopic { .. } => ErrorCode::InvalidTopicException,
            Error::TopicExists(_) => ErrorCode::TopicAlreadyExists,
            Error::UnknownTopicOrPartition(_) => ErrorCode::UnknownTopicOrPartition,
            Error::Kafka(code, _) => *code,
        }
    }
}

/// Kafka's protocol error codes, as numbered by Apache Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum ErrorCode {
    UnknownServerError = -1,
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    InvalidFetchSize = 4,
    NotLeaderOrFollower = 6,
    MessageTooLarge = 10,
    InvalidRequiredAcks = 21,
    OffsetMetadataTooLarge = 12,
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    InvalidCommitOffsetSize = 28,
    UnsupportedVersion = 35,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidRequest = 42,
    PolicyViolation = 44,
    OutOfOrderSequenceNumber = 45,
    DuplicateSequenceNumber = 46,
    InvalidProducerEpoch = 47,
    InvalidTxnState = 48,
    InvalidProducerIdMapping = 49,
    InvalidTransactionTimeout = 50,
    ConcurrentTransactions = 51,
    OperationNotAttempted = 55,
    InvalidConfig = 40,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    NonEmptyGroup = 68,
    GroupIdNotFound = 69,
    MemberIdRequired = 79,
    InvalidRecord = 87,
    UnstableOffsetCommit = 88,
    UnknownTopicId = 100,
    TransactionalIdAuthorizationFailed = 53,
    GroupMaxSizeReached = 81,
    ProducerFenced = 90,
    TransactionalIdNotFound = 105,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }
}
