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
    /// A failure of the query engine itself (DataFusion's internal, I/O, resource and
    /// task errors): not the statement's fault; the server answers 500 / 50000.
    #[error("internal error: {0}")]
    Internal(String),
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
        let text = e.strip_backtrace();
        if !is_statement_error(&e) {
            return Error::Internal(text);
        }
        // DataFusion's planning errors are the user's semantic errors; strip its
        // internal prefixes so the message reads as ksqlDB's would.
        let text = text
            .trim_start_matches("Error during planning: ")
            .trim_start_matches("Schema error: ")
            .to_string();
        Error::Semantic(text)
    }
}

/// Whether DataFusion blames the statement (planning, schema, SQL, an unsupported
/// feature, a value that fails to evaluate) rather than itself (internal errors,
/// I/O, exhausted resources, failed tasks, external sources).
fn is_statement_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    match e {
        E::Plan(_)
        | E::SchemaError(..)
        | E::SQL(..)
        | E::NotImplemented(_)
        | E::Configuration(_)
        | E::Execution(_) => true,
        E::Context(_, inner) | E::Diagnostic(_, inner) => is_statement_error(inner),
        E::Shared(inner) => is_statement_error(inner),
        E::Collection(all) => all.first().is_some_and(is_statement_error),
        _ => false,
    }
}

impl From<rdkafka::error::KafkaError> for Error {
    fn from(e: rdkafka::error::KafkaError) -> Error {
        Error::Kafka(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::error::DataFusionError;

    use super::Error;

    #[test]
    fn datafusion_errors_split_into_the_statement_s_and_the_engine_s() {
        let plan: Error = DataFusionError::Plan("no such column X".into()).into();
        assert!(
            matches!(&plan, Error::Semantic(m) if m == "no such column X"),
            "{plan:?}"
        );
        let wrapped: Error = DataFusionError::Plan("bad".into())
            .context("while planning")
            .into();
        assert!(matches!(wrapped, Error::Semantic(_)), "{wrapped:?}");
        let internal: Error = DataFusionError::Internal("bug".into()).into();
        assert!(matches!(internal, Error::Internal(_)), "{internal:?}");
        let tired: Error = DataFusionError::ResourcesExhausted("memory".into()).into();
        assert!(matches!(tired, Error::Internal(_)), "{tired:?}");
    }
}
