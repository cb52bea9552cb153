//! The file connectors: FileStreamSource and FileStreamSink.

pub mod config;
pub mod sink;
pub mod source;

use crate::api::config_def::ConfigDef;
use crate::api::{
    Config, ExactlyOnceSupport, SinkConnector, SinkTask, SourceConnector, SourceTask,
};
use crate::error::Result;
use config::{FileSinkConfig, FileSourceConfig};

pub struct FileStreamSourceConnector;

impl SourceConnector for FileStreamSourceConnector {
    fn config_def(&self) -> ConfigDef {
        config::source_definition()
    }
    fn validate(&self, config: &Config) -> Result<()> {
        FileSourceConfig::parse(config).map(|_| ())
    }
    fn task_configs(&self, config: &Config, _max_tasks: usize) -> Result<Vec<Config>> {
        // One file, one reader.
        Ok(vec![config.clone()])
    }
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(source::FileStreamSourceTask::new())
    }
    /// Restarted at its committed position it reads on from there, as Kafka's
    /// FileStreamSourceConnector (which answers SUPPORTED).
    fn exactly_once_support(&self, _config: &Config) -> Option<ExactlyOnceSupport> {
        Some(ExactlyOnceSupport::Supported)
    }
}

pub struct FileStreamSinkConnector;

impl SinkConnector for FileStreamSinkConnector {
    fn config_def(&self) -> ConfigDef {
        config::sink_definition()
    }
    fn validate(&self, config: &Config) -> Result<()> {
        FileSinkConfig::parse(config).map(|_| ())
    }
    fn task_configs(&self, config: &Config, _max_tasks: usize) -> Result<Vec<Config>> {
        // One writer keeps lines whole in the output file.
        Ok(vec![config.clone()])
    }
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(sink::FileStreamSinkTask::new())
    }
}
