//! The interactive shell (`runnel ksql [URL]`): statements typed over as many lines as
//! they need (a statement ends at `;`), with history; each goes to the server's REST
//! API — `/query-stream` for SELECT and PRINT, whose rows print as they arrive, and
//! `/ksql` for the rest, whose results print as tables. Ctrl-C cancels a running
//! query, not the shell. `--file` and piped input run scripts non-interactively.

pub mod render;

use std::io::Write;

use futures::StreamExt;
use rustyline::error::ReadlineError;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::parser::ast::Statement;

pub struct Shell {
    server: String,
    http: reqwest::Client,
    /// Properties set with SET in this shell, sent with every request.
    props: serde_json::Map<String, Value>,
}

fn http_err(e: reqwest::Error) -> Error {
    Error::Engine(format!("the KSQL server did not answer: {e}"))
}

/// Whether `buf` holds a complete statement: a `;` outside quotes and comments.
pub fn complete(buf: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut last = None;
    let mut chars = buf.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '-') if chars.peek() == Some(&'-') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            (None, c) if !c.is_whitespace() => last = Some(c),
            _ => {}
        }
    }
    quote.is_none() && last == Some(';')
}

impl Shell {
    pub fn new(server: &str) -> Shell {
        Shell {
            server: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            props: serde_json::Map::new(),
        }
    }

    /// Checks the server answers, returning its version.
    pub async fn connect(&self) -> Result<String> {
        let info: Value = self
            .http
            .get(format!("{}/info", self.server))
            .send()
            .await
            .map_err(http_err)?
            .json()
            .await
            .map_err(http_err)?;
        Ok(info["KsqlServerInfo"]["version"]
            .as_str()
            .unwrap_or("?")
            .to_string())
    }

    /// Runs every statement of `text`, printing results to `out`; stops at the first
    /// error.
    pub async fn run_script(&mut self, text: &str, out: &mut dyn Write) -> Result<()> {
        for s in crate::parser::parse(text)? {
            self.run_statement(&s.statement, &s.text, out).await?;
        }
        Ok(())
    }

    async fn run_statement(
        &mut self,
        statement: &Statement,
        text: &str,
        out: &mut dyn Write,
    ) -> Result<()> {
        match statement {
            Statement::Select(_) | Statement::Print { .. } => self.stream(text, out).await,
            Statement::Set { name, value } => {
                self.props.insert(name.clone(), json!(value));
                writeln!(
                    out,
                    "Successfully changed local property '{name}' to '{value}'."
                )?;
                Ok(())
            }
            Statement::Unset { name } => {
                self.props.remove(name);
                writeln!(out, "Successfully unset local property '{name}'.")?;
                Ok(())
            }
            Statement::RunScript { path } => {
                let script = std::fs::read_to_string(path)
                    .map_err(|e| Error::semantic(format!("Failed to read script {path}: {e}")))?;
                Box::pin(self.run_script(&script, out)).await
            }
            _ => {
                let resp = self
                    .http
                    .post(format!("{}/ksql", self.server))
                    .json(&json!({"ksql": format!("{text};"), "streamsProperties": self.props}))
                    .send()
                    .await
                    .map_err(http_err)?;
                let ok = resp.status().is_success();
                let body: Value = resp.json().await.map_err(http_err)?;
                if !ok {
                    return Err(Error::semantic(
                        body["message"].as_str().unwrap_or("error").to_string(),
                    ));
                }
                for e in body.as_array().into_iter().flatten() {
                    writeln!(out, "{}", render::entity(e))?;
                }
                Ok(())
            }
        }
    }

    /// A query's rows as they arrive, until it ends or Ctrl-C.
    async fn stream(&mut self, text: &str, out: &mut dyn Write) -> Result<()> {
        let resp = self
            .http
            .post(format!("{}/query-stream", self.server))
            .json(&json!({"sql": format!("{text};"), "properties": self.props}))
            .send()
            .await
            .map_err(http_err)?;
        if !resp.status().is_success() {
            let body: Value = resp.json().await.map_err(http_err)?;
            return Err(Error::semantic(
                body["message"].as_str().unwrap_or("error").to_string(),
            ));
        }
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut widths = Vec::new();
        let mut header_seen = false;
        let mut query_id = String::new();
        let mut rule = String::new();
        let mut rows = 0usize;
        loop {
            let chunk = tokio::select! {
                c = body.next() => c,
                _ = tokio::signal::ctrl_c() => {
                    let _ = self.http.post(format!("{}/close-query", self.server)).json(&json!({"queryId": query_id})).send().await;
                    writeln!(out, "{rule}\nQuery terminated")?;
                    return Ok(());
                }
            };
            let Some(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk.map_err(http_err)?);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                if !header_seen {
                    header_seen = true;
                    query_id = v["queryId"].as_str().unwrap_or_default().to_string();
                    let cols: Vec<String> = v["columnNames"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|c| c.as_str().unwrap_or_default().to_string())
                        .collect();
                    let (h, w) = render::row_header(&cols);
                    rule = h.lines().next().unwrap_or_default().to_string();
                    widths = w;
                    writeln!(out, "{h}")?;
                } else if let Some(values) = v.as_array() {
                    rows += 1;
                    writeln!(out, "{}", render::row(values, &widths))?;
                } else if let Some(msg) = v["message"].as_str() {
                    writeln!(out, "{rule}")?;
                    return Err(Error::Engine(msg.to_string()));
                }
                out.flush()?;
            }
        }
        writeln!(
            out,
            "{rule}\n{rows} row{} in set",
            if rows == 1 { "" } else { "s" }
        )?;
        Ok(())
    }

    /// The interactive loop, with history in `history`.
    pub async fn interactive(&mut self, history: Option<std::path::PathBuf>) -> Result<()> {
        let mut editor =
            rustyline::DefaultEditor::new().map_err(|e| Error::Engine(e.to_string()))?;
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        let mut out = std::io::stdout();
        let mut buf = String::new();
        loop {
            let prompt = if buf.is_empty() { "ksql> " } else { "   > " };
            match editor.readline(prompt) {
                Ok(line) => {
                    if buf.is_empty()
                        && matches!(line.trim().to_ascii_lowercase().as_str(), "exit" | "quit")
                    {
                        break;
                    }
                    buf.push_str(&line);
                    buf.push('\n');
                    if !complete(&buf) {
                        continue;
                    }
                    let _ = editor.add_history_entry(buf.trim_end());
                    let text = std::mem::take(&mut buf);
                    if let Err(e) = self.run_script(&text, &mut out).await {
                        println!("{e}");
                    }
                }
                Err(ReadlineError::Interrupted) => buf.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(Error::Engine(e.to_string())),
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        Ok(())
    }
}
