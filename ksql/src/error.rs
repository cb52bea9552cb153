//! The KSQL layer's one error type.

use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement that does not parse; `line`/`column` are 1-based. Printed as
    /// ksqlDB prints its parser's errors: the position and `Syntax Error`, then why.
    #[error("line {line}:{column}: Syntax Error\n{message}")]
    Syntax {
        line: u64,
        column: u64,
        message: String,
    },
    /// A statement that parses but cannot run: an unknown column or source, a type
    /// mismatch, a rule of the language broken.
    #[error("{0}")]
    Semantic(String),
    /// A record or value that does not match its declared format.
    #[error("{0}")]
    Serde(String),
    #[error("Kafka: {0}")]
    Kafka(String),
    #[error("{0}")]
    Engine(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A syntax error at a token: names the line, the column and the token, in
    /// ksqlDB's words, then what was expected there.
    pub fn at(t: &TokenWithSpan, message: &str) -> Error {
        let (line, column) = (t.span.start.line, t.span.start.column);
        Error::Syntax {
            line,
            column,
            message: format!(
                "Syntax error at or near '{}' at line {line}:{column} ({message})",
                t.token
            ),
        }
    }

    /// A syntax error at the end of the statement.
    pub fn eof(message: &str) -> Error {
        Error::Syntax {
            line: 0,
            column: 0,
            message: format!("{message}, found the end of the statement"),
        }
    }

    /// sqlparser's errors end in "at Line: L, Column: C"; keep the position as ours.
    pub fn syntax_from(message: &str) -> Error {
        let message = message
            .trim_start_matches("sql parser error: ")
            .trim_start_matches("sql tokenizer error: ");
        if let Some(at) = message.rfind(" at Line: ") {
            let pos = &message[at + " at Line: ".len()..];
            let mut parts = pos.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| {
                c.trim()
                    .trim_end_matches(|ch: char| !ch.is_ascii_digit())
                    .parse()
                    .ok()
            });
            if let (Some(line), Some(column)) = (line, column) {
                return Error::Syntax {
                    line,
                    column,
                    message: message[..at].to_string(),
                };
            }
        }
        Error::Syntax {
            line: 0,
            column: 0,
            message: message.to_string(),
        }
    }

    pub fn semantic(message: impl Into<String>) -> Error {
        Error::Semantic(message.into())
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Error {
        // DataFusion's planning errors are the user's semantic errors; strip its
        // internal prefixes so the message reads as ksqlDB's would.
        let text = e.strip_backtrace();
        let text = text
            .trim_start_matches("Error during planning: ")
            .trim_start_matches("Schema error: ")
            .to_string();
        Error::Semantic(text)
    }
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Error {
        Error::Kafka(e.to_string())
    }
}
