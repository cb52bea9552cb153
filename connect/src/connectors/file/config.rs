//! Typed configs of the file connectors, with Kafka's keys and defaults.

use std::path::PathBuf;

use crate::api::config_def::{key, ConfigDef, ConfigKey, Type, Validator, Values};
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

/// FileStreamSourceConnector's keys, as Kafka defines them.
pub fn source_definition() -> ConfigDef {
    ConfigDef::new().define([
        file_key("Source filename. If not specified, the standard input will be used."),
        key("topic", Type::String, "The topic to publish data to.")
            .required()
            .validator(Validator::NonEmpty)
            .high(),
        key(
            "batch.size",
            Type::Int,
            "The maximum number of records the source task can read from the file each time it is polled.",
        )
        .default("2000")
        .validator(Validator::AtLeast(1))
        .low(),
    ])
}

/// FileStreamSinkConnector's keys, as Kafka defines them.
pub fn sink_definition() -> ConfigDef {
    ConfigDef::new().define([file_key(
        "Destination filename. If not specified, the standard output will be used.",
    )])
}

fn file_key(documentation: &'static str) -> ConfigKey {
    key("file", Type::String, documentation).high()
}

fn file(values: &Values) -> Option<PathBuf> {
    values.non_empty("file").map(PathBuf::from)
}

impl FileSourceConfig {
    pub fn parse(config: &Config) -> Result<FileSourceConfig> {
        let values = source_definition().parse(config)?;
        let topic = values.string("topic").unwrap_or_default().to_string();
        if topic.contains(',') {
            return Err(Error::config(
                "topic",
                "FileStreamSource writes to exactly one topic",
            ));
        }
        Ok(FileSourceConfig {
            file: file(&values),
            topic,
            batch_size: values.number("batch.size")?,
        })
    }
}

impl FileSinkConfig {
    pub fn parse(config: &Config) -> Result<FileSinkConfig> {
        let values = sink_definition().parse(config)?;
        Ok(FileSinkConfig {
            file: file(&values),
        })
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
