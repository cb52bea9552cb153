//! FileStreamSink: appends each record's value as a line; `flush` makes it durable.

use std::io::Write;

use async_trait::async_trait;

use super::config::FileSinkConfig;
use crate::api::{Config, SinkRecord, SinkTask, Value};
use crate::error::{Error, Result};

pub struct FileStreamSinkTask {
    out: Option<(String, Box<dyn Write + Send>, Option<std::fs::File>)>,
}

impl FileStreamSinkTask {
    pub fn new() -> FileStreamSinkTask {
        FileStreamSinkTask { out: None }
    }
}

impl Default for FileStreamSinkTask {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl SinkTask for FileStreamSinkTask {
    async fn start(&mut self, config: &Config) -> Result<()> {
        let cfg = FileSinkConfig::parse(config)?;
        self.out = Some(match cfg.file {
            None => ("stdout".into(), Box::new(std::io::stdout()), None),
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| Error::io(path.display(), e))?;
                let sync = file.try_clone().map_err(|e| Error::io(path.display(), e))?;
                (
                    path.display().to_string(),
                    Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
                    Some(sync),
                )
            }
        });
        Ok(())
    }

    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let Some((name, out, _)) = self.out.as_mut() else {
            return Err(Error::Task("put before start".into()));
        };
        for r in records {
            let line = match &r.record.value {
                Value::Null => "null".to_string(),
                v => v.to_string(),
            };
            out.write_all(line.as_bytes())
                .and_then(|_| out.write_all(b"\n"))
                .map_err(|e| Error::io(&*name, e))?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        let Some((name, out, sync)) = self.out.as_mut() else {
            return Ok(());
        };
        out.flush().map_err(|e| Error::io(&*name, e))?;
        if let Some(f) = sync {
            f.sync_data().map_err(|e| Error::io(&*name, e))?;
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        self.flush().await
    }
}
