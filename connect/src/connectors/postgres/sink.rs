//! PostgresSink, in the manner of Confluent's JDBC sink: each `put` is one transaction
//! with one bulk statement per table and kind (`sink_statements.rs`: the rows streamed
//! with COPY) — INSERT, INSERT ... ON CONFLICT ... DO UPDATE for upserts, UPDATE,
//! DELETE for tombstones (`delete.enabled`). Tables are created
//! (`auto.create`) and given new nullable columns (`auto.evolve`) from the records'
//! schemas. A lost connection is retried (`max.retries`, `retry.backoff.ms`), then the
//! task fails naming the last error.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::SinkExt;
use tokio_postgres::Client;

use super::connection::Connection;
use super::connection::{describe, is_transient};
use super::sink_config::SinkConfig;
use super::sink_rows::{task_err, ColumnDef, Known, RowBuilder, Shape};
use super::sink_statements::{statements, Op, Statement};
use super::sql::{ident, table as table_ident};
use crate::api::config_def::ConfigDef;
use crate::api::{Config, SinkConnector, SinkRecord, SinkTask};
use crate::error::{Error, Result};

pub struct PostgresSinkConnector;

impl SinkConnector for PostgresSinkConnector {
    fn config_def(&self) -> ConfigDef {
        super::sink_config::definition()
    }
    fn validate(&self, config: &Config) -> Result<()> {
        SinkConfig::parse(config).map(|_| ())
    }
    fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        // Tasks share the topics' partitions through the consumer group.
        Ok(vec![config.clone(); max_tasks.max(1)])
    }
    fn create_task(&self) -> Box<dyn SinkTask> {
        Box::new(PostgresSinkTask::default())
    }
}

#[derive(Default)]
pub struct PostgresSinkTask {
    config: Option<SinkConfig>,
    client: Option<Client>,
    /// Columns of the tables seen so far.
    tables: HashMap<String, Vec<String>>,
    /// The last put's write, running: its connection comes back with its outcome.
    pending: Option<tokio::task::JoinHandle<(Option<Client>, Result<()>)>>,
}

impl PostgresSinkTask {
    fn cfg(&self) -> Result<&SinkConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| task_err("the task was not started"))
    }

    /// The connection, opened again if it was lost.
    async fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let c = self.cfg()?.connection.connect().await?;
            self.client = Some(c);
        }
        self.client
            .as_mut()
            .ok_or_else(|| task_err("no connection"))
    }

    /// Creates the table or adds missing columns, as auto.create / auto.evolve allow.
    async fn ensure_table(&mut self, table: &str, defs: &[ColumnDef], pk: &[String]) -> Result<()> {
        let (auto_create, auto_evolve) = {
            let c = self.cfg()?;
            (c.auto_create, c.auto_evolve)
        };
        if !self.tables.contains_key(table) {
            let (schema, name) = match table.split_once('.') {
                Some((s, n)) => (Some(s.to_string()), n.to_string()),
                None => (None, table.to_string()),
            };
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_name = $1 AND table_schema = COALESCE($2, current_schema())",
                    &[&name, &schema],
                )
                .await
                .map_err(pg_err)?;
            let columns: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            if columns.is_empty() {
                if !auto_create {
                    return Err(task_err(format!(
                        "table {table} does not exist and auto.create is false"
                    )));
                }
                let mut parts: Vec<String> = defs
                    .iter()
                    .map(|d| {
                        let null = if d.optional && !pk.contains(&d.name) {
                            ""
                        } else {
                            " NOT NULL"
                        };
                        format!("{} {}{null}", ident(&d.name), d.sql_type)
                    })
                    .collect();
                if !pk.is_empty() {
                    parts.push(format!(
                        "PRIMARY KEY ({})",
                        pk.iter().map(|p| ident(p)).collect::<Vec<_>>().join(", ")
                    ));
                }
                let ddl = format!(
                    "CREATE TABLE IF NOT EXISTS {} ({})",
                    table_ident(table),
                    parts.join(", ")
                );
                tracing::info!(%table, "creating table: {ddl}");
                client.batch_execute(&ddl).await.map_err(pg_err)?;
                self.tables.insert(
                    table.to_string(),
                    defs.iter().map(|d| d.name.clone()).collect(),
                );
                return Ok(());
            }
            self.tables.insert(table.to_string(), columns);
        }
        let known = self.tables.get(table);
        let missing: Vec<&ColumnDef> = defs
            .iter()
            .filter(|d| !known.is_some_and(|k| k.contains(&d.name)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !auto_evolve {
            let names: Vec<&str> = missing.iter().map(|d| d.name.as_str()).collect();
            return Err(task_err(format!(
                "table {table} has no column(s) {names:?} and auto.evolve is false"
            )));
        }
        let adds: Vec<String> = missing
            .iter()
            .map(|d| format!("ADD COLUMN IF NOT EXISTS {} {}", ident(&d.name), d.sql_type))
            .collect();
        let ddl = format!("ALTER TABLE {} {}", table_ident(table), adds.join(", "));
        tracing::info!(%table, "evolving table: {ddl}");
        self.client()
            .await?
            .batch_execute(&ddl)
            .await
            .map_err(pg_err)?;
        let entry = self.tables.entry(table.to_string()).or_default();
        entry.extend(missing.iter().map(|d| d.name.clone()));
        Ok(())
    }

    /// Waits for the write in progress, and takes its connection back.
    async fn settle(&mut self) -> Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let (client, result) = pending
            .await
            .map_err(|e| task_err(format!("the write task ended: {e}")))?;
        self.client = client;
        result
    }

    /// Creates or evolves the tables the rows need, retried as max.retries allows.
    async fn prepare(&mut self, ops: &[(Op, Vec<ColumnDef>)]) -> Result<()> {
        let (retries, backoff) = {
            let c = self.cfg()?;
            (c.max_retries, Duration::from_millis(c.retry_backoff_ms))
        };
        let mut attempt = 0;
        loop {
            let mut result = Ok(());
            // Rows of a batch mostly share their table and columns: check each shape once.
            let mut checked: Option<(&str, &[ColumnDef])> = None;
            for (op, defs) in ops {
                if let Op::Write { columns, .. } = op {
                    let (table, pk) = (&*columns.table, &columns.pk[..]);
                    if defs.is_empty() {
                        // The shape of the row before it: checked already.
                        continue;
                    }
                    let same = |(t, d): (&str, &[ColumnDef])| {
                        t == table
                            && d.len() == defs.len()
                            && d.iter().zip(defs).all(|(a, b)| a.name == b.name)
                    };
                    if checked.is_some_and(same) {
                        continue;
                    }
                    checked = Some((table, defs));
                    result = self.ensure_table(table, defs, pk).await;
                    if result.is_err() {
                        break;
                    }
                }
            }
            match result {
                Err(Error::Retriable(reason)) if attempt < retries => {
                    attempt += 1;
                    tracing::warn!(attempt, "PostgresSink: {reason}; retrying in {backoff:?}");
                    self.client = None;
                    tokio::time::sleep(backoff).await;
                }
                Err(Error::Retriable(reason)) => return Err(gave_up(retries, &reason)),
                other => return other,
            }
        }
    }
}

fn gave_up(retries: u32, reason: &str) -> Error {
    task_err(format!(
        "giving up after {retries} retries (max.retries): {reason}"
    ))
}

/// Runs a put's statements in one transaction on `client` (a new connection when it is
/// gone), retried as max.retries allows; hands the connection back with the outcome.
async fn execute(
    mut client: Option<Client>,
    connection: Connection,
    statements: Vec<Statement>,
    retries: u32,
    backoff: Duration,
) -> (Option<Client>, Result<()>) {
    let mut attempt = 0;
    loop {
        let result = async {
            if client.as_ref().is_none_or(Client::is_closed) {
                client = Some(connection.connect().await?);
            }
            let c = client.as_mut().ok_or_else(|| task_err("no connection"))?;
            let tx = c.transaction().await.map_err(pg_err)?;
            for s in &statements {
                if let Some(setup) = &s.setup {
                    tx.batch_execute(setup).await.map_err(pg_err)?;
                }
                let copy = tx.copy_in(s.copy.as_str()).await.map_err(pg_err)?;
                let mut copy = std::pin::pin!(copy);
                for rows in &s.rows {
                    copy.send(bytes::Bytes::copy_from_slice(rows.as_bytes()))
                        .await
                        .map_err(pg_err)?;
                }
                copy.as_mut().finish().await.map_err(pg_err)?;
                if let Some(apply) = &s.apply {
                    tx.batch_execute(apply).await.map_err(pg_err)?;
                }
            }
            tx.commit().await.map_err(pg_err)
        }
        .await;
        match result {
            Err(Error::Retriable(reason)) if attempt < retries => {
                attempt += 1;
                tracing::warn!(attempt, "PostgresSink: {reason}; retrying in {backoff:?}");
                client = None;
                tokio::time::sleep(backoff).await;
            }
            Err(Error::Retriable(reason)) => return (None, Err(gave_up(retries, &reason))),
            other => return (client, other),
        }
    }
}

fn pg_err(e: tokio_postgres::Error) -> Error {
    if is_transient(&e) {
        Error::Retriable(describe(&e))
    } else {
        task_err(describe(&e))
    }
}

#[async_trait]
impl SinkTask for PostgresSinkTask {
    async fn start(&mut self, config: &Config) -> Result<()> {
        self.config = Some(SinkConfig::parse(config)?);
        Ok(())
    }

    /// Turns the records into statements, then writes them in the background: the
    /// next batch is read while PostgreSQL works. The next put or flush waits for that
    /// write and reports its failure, so offsets are committed only after it succeeded.
    async fn put(&mut self, records: &[SinkRecord]) -> Result<()> {
        let mut ops = Vec::with_capacity(records.len());
        let mut rows = RowBuilder {
            config: self.cfg()?,
            known: Known::default(),
        };
        let mut last: Option<Shape> = None;
        for r in records {
            let shape = Shape::of(r);
            if last.as_ref() != Some(&shape) {
                rows.known = Known::default();
            }
            if let Some(op) = rows.row(r)? {
                ops.push(op);
            }
            last = Some(shape);
        }
        // Built while the previous write may still run: only then wait for it.
        let statements = {
            let c = self.cfg()?;
            statements(c.insert_mode, ops.iter().map(|(o, _)| o), c.batch_size)
        };
        self.settle().await?;
        self.prepare(&ops).await?;
        let client = self.client.take();
        let c = self.cfg()?;
        let write = execute(
            client,
            c.connection.clone(),
            statements,
            c.max_retries,
            Duration::from_millis(c.retry_backoff_ms),
        );
        self.pending = Some(tokio::spawn(write));
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.settle().await
    }

    async fn stop(&mut self) -> Result<()> {
        self.settle().await
    }
}
