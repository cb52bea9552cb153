//! FileStreamSource: tails a file, one record per line (`\n` or `\r\n`), the offset being
//! the byte position after the line. Waits for an unterminated last line, follows
//! rotation (a new inode at the path) and truncation. Wakes on file-system events
//! (notify) with a polling fallback. Reads stdin when no file is set.

use std::io::SeekFrom;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio::fs::File;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::config::FileSourceConfig;
use crate::api::{
    Config, ConnectRecord, JsonMap, OffsetReader, Schema, SourceRecord, SourceTask, Value,
};
use crate::error::{Error, Result};

/// How long a poll waits for new lines when nothing wakes it.
const POLL_FALLBACK: Duration = Duration::from_millis(250);
/// Bytes read per attempt.
const CHUNK: usize = 1 << 20;
/// How many of the last consumed bytes are compared to detect a rewrite.
const TAIL_BYTES: usize = 64;

enum Input {
    File(FileInput),
    Stdin(tokio::io::Lines<BufReader<tokio::io::Stdin>>),
}

struct FileInput {
    path: PathBuf,
    /// The open file (async reads), a second handle on the same inode for the
    /// rewrite check, and the inode.
    file: Option<(File, std::fs::File, u64)>,
    position: u64,
    /// Bytes read past `position` that do not end in a newline yet.
    pending: Vec<u8>,
    /// The last bytes before `position`: if the file no longer has them there, it was
    /// truncated and rewritten (even to the same length).
    tail: Vec<u8>,
    events: mpsc::UnboundedReceiver<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

pub struct FileStreamSourceTask {
    config: Option<FileSourceConfig>,
    input: Option<Input>,
}

impl FileStreamSourceTask {
    pub fn new() -> FileStreamSourceTask {
        FileStreamSourceTask {
            config: None,
            input: None,
        }
    }
}

impl Default for FileStreamSourceTask {
    fn default() -> Self {
        Self::new()
    }
}

fn partition_of(path: &Path) -> JsonMap {
    let mut m = JsonMap::new();
    m.insert("filename".into(), json!(path.display().to_string()));
    m
}

fn watch(
    path: &Path,
) -> (
    Option<notify::RecommendedWatcher>,
    mpsc::UnboundedReceiver<()>,
) {
    use notify::Watcher;
    let (tx, rx) = mpsc::unbounded_channel();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .and_then(|mut w| {
        w.watch(&dir, notify::RecursiveMode::NonRecursive)
            .map(|_| w)
    });
    match watcher {
        Ok(w) => (Some(w), rx),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "file-system events unavailable; polling");
            (None, rx)
        }
    }
}

impl FileInput {
    /// Opens the file if needed; detects rotation (new inode) and truncation.
    async fn refresh(&mut self) -> Result<()> {
        let meta = match tokio::fs::metadata(&self.path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(self.path.display(), e)),
        };
        let rotated = self
            .file
            .as_ref()
            .is_some_and(|(_, _, ino)| *ino != meta.ino());
        if rotated {
            // Finish the old file first: lines appended before the rotation still count.
            if self.read_available().await? > 0 {
                return Ok(());
            }
            tracing::info!(file = %self.path.display(), "file rotated; reading the new one from the start");
            self.file = None;
            self.position = 0;
            self.pending.clear();
            self.tail.clear();
        }
        if self.file.is_none() {
            let checker =
                std::fs::File::open(&self.path).map_err(|e| Error::io(self.path.display(), e))?;
            let ino = checker
                .metadata()
                .map_err(|e| Error::io(self.path.display(), e))?
                .ino();
            let reader = checker
                .try_clone()
                .map_err(|e| Error::io(self.path.display(), e))?;
            let mut f = File::from_std(reader);
            if meta.len() < self.position {
                tracing::info!(file = %self.path.display(), "file is shorter than the committed offset; starting over");
                self.position = 0;
            }
            f.seek(SeekFrom::Start(self.position))
                .await
                .map_err(|e| Error::io(self.path.display(), e))?;
            self.file = Some((f, checker, ino));
            self.pending.clear();
        } else if self.handle_len() < self.position + self.pending.len() as u64
            || !self.tail_matches()
        {
            tracing::info!(file = %self.path.display(), "file was truncated; reading from the start");
            if let Some((f, _, _)) = self.file.as_mut() {
                f.seek(SeekFrom::Start(0))
                    .await
                    .map_err(|e| Error::io(self.path.display(), e))?;
            }
            self.position = 0;
            self.pending.clear();
            self.tail.clear();
        }
        Ok(())
    }

    /// The length of the file we have open (not of whatever the path now names).
    fn handle_len(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|(_, c, _)| c.metadata().ok())
            .map_or(0, |m| m.len())
    }

    fn tail_matches(&self) -> bool {
        use std::os::unix::fs::FileExt;
        if self.tail.is_empty() {
            return true;
        }
        let Some((_, checker, _)) = &self.file else {
            return true;
        };
        // Read through our own handle: a rename of the path does not matter here.
        let mut buf = vec![0u8; self.tail.len()];
        let at = self.position - self.tail.len() as u64;
        checker.read_exact_at(&mut buf, at).is_ok() && buf == self.tail
    }

    async fn read_available(&mut self) -> Result<usize> {
        let Some((f, _, _)) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = vec![0u8; CHUNK];
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Error::io(self.path.display(), e))?;
        self.pending.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Complete lines from the pending bytes, with the offset after each.
    fn take_lines(&mut self, max: usize, topic: &str) -> Vec<SourceRecord> {
        let partition = Arc::new(partition_of(&self.path));
        let mut out = Vec::new();
        let mut consumed = 0usize;
        while out.len() < max {
            let Some(nl) = self.pending[consumed..].iter().position(|b| *b == b'\n') else {
                break;
            };
            let mut line = &self.pending[consumed..consumed + nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            consumed += nl + 1;
            let text = String::from_utf8_lossy(line).into_owned();
            let mut offset = JsonMap::new();
            offset.insert("position".into(), json!(self.position + consumed as u64));
            out.push(SourceRecord {
                source_partition: partition.clone(),
                source_offset: offset,
                record: ConnectRecord::new(topic, Some(Schema::string()), Value::String(text)),
            });
        }
        let taken: Vec<u8> = self.pending.drain(..consumed).collect();
        self.tail.extend_from_slice(&taken);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
        self.position += consumed as u64;
        out
    }
}

#[async_trait]
impl SourceTask for FileStreamSourceTask {
    async fn start(&mut self, config: &Config, offsets: &dyn OffsetReader) -> Result<()> {
        let cfg = FileSourceConfig::parse(config)?;
        self.input = Some(match &cfg.file {
            None => Input::Stdin(BufReader::new(tokio::io::stdin()).lines()),
            Some(path) => {
                let position = offsets
                    .offset(&partition_of(path))
                    .and_then(|o| o.get("position").and_then(serde_json::Value::as_u64))
                    .unwrap_or(0);
                let (watcher, events) = watch(path);
                tracing::info!(file = %path.display(), position, "FileStreamSource starting");
                Input::File(FileInput {
                    path: path.clone(),
                    file: None,
                    position,
                    pending: Vec::new(),
                    tail: Vec::new(),
                    events,
                    _watcher: watcher,
                })
            }
        });
        self.config = Some(cfg);
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        let (Some(cfg), Some(input)) = (&self.config, &mut self.input) else {
            return Err(Error::Task("FileStreamSource polled before start".into()));
        };
        match input {
            Input::Stdin(lines) => {
                let mut out = Vec::new();
                let first = tokio::time::timeout(POLL_FALLBACK, lines.next_line()).await;
                if let Ok(Ok(Some(line))) = first {
                    out.push(SourceRecord {
                        source_partition: Arc::default(),
                        source_offset: JsonMap::new(),
                        record: ConnectRecord::new(
                            &cfg.topic,
                            Some(Schema::string()),
                            Value::String(line),
                        ),
                    });
                }
                Ok(out)
            }
            Input::File(f) => {
                f.refresh().await?;
                let records = f.take_lines(cfg.batch_size, &cfg.topic);
                if !records.is_empty() {
                    return Ok(records);
                }
                if f.read_available().await? > 0 {
                    return Ok(f.take_lines(cfg.batch_size, &cfg.topic));
                }
                // Nothing new: wait for an event or the fallback interval.
                tokio::select! {
                    _ = f.events.recv() => {}
                    _ = tokio::time::sleep(POLL_FALLBACK) => {}
                }
                while f.events.try_recv().is_ok() {}
                Ok(Vec::new())
            }
        }
    }
}
