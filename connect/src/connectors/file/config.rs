//! Typed configs of the file connectors, with Kafka's keys and defaults.

use std::path::PathBuf;

use crate::api::Config;
use crate::error::{Error, Result};

/// FileStreamSource: `file` (stdin when unset), `topic`, `batch.size` (2000).
#[derive(Debug, Clone, PartialEq)]
pub struct FileSourceConfig {
    pub file: Option<PathBuf>,
    pub topic: String,
    pub batch_size: usize,
}

/// FileStreamSink: `file` (stdout when unset); the topics come from `topics` / `topics.regex`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSinkConfig {
    pub file: Option<PathBuf>,
}

pub const SOURCE_KEYS: &[&str] = &["file", "topic", "batch.size"];
pub const SINK_KEYS: &[&str] = &["file"];

fn file(config: &Config) -> Option<PathBuf> {
    config
        .get("file")
        .filter(|f| !f.trim().is_empty())
        .map(PathBuf::from)
}

impl FileSourceConfig {
    pub fn parse(config: &Config) -> Result<FileSourceConfig> {
        let topic = config
            .get("topic")
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        if topic.is_empty() {
            return Err(Error::MissingConfig("topic".into()));
        }
        if topic.contains(',') {
            return Err(Error::config(
                "topic",
                "FileStreamSource writes to exactly one topic",
            ));
        }
        let batch_size = match config.get("batch.size") {
            None => 2000,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::config("batch.size", format!("{v} is not a positive integer"))
                })?,
        };
        Ok(FileSourceConfig {
            file: file(config),
            topic,
            batch_size,
        })
    }
}

impl FileSinkConfig {
    pub fn parse(config: &Config) -> Result<FileSinkConfig> {
        Ok(FileSinkConfig { file: file(config) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_config_checks_fields() {
        let mut c = Config::new();
        assert!(
            matches!(FileSourceConfig::parse(&c), Err(Error::MissingConfig(f)) if f == "topic")
        );
        c.insert("topic".into(), "lines".into());
        c.insert("batch.size".into(), "zero".into());
        assert!(FileSourceConfig::parse(&c)
            .unwrap_err()
            .to_string()
            .contains("batch.size"));
        c.insert("batch.size".into(), "10".into());
        c.insert("file".into(), "/tmp/x".into());
        let parsed = FileSourceConfig::parse(&c).unwrap();
        assert_eq!(
            (parsed.batch_size, parsed.file.unwrap()),
            (10, PathBuf::from("/tmp/x"))
        );
    }
}
