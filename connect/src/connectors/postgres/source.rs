//! PostgresSource, in the manner of Confluent's JDBC source: polls tables (or a query)
//! every `poll.interval.ms` — all rows (`bulk`), rows past the last incrementing id,
//! rows past the last timestamp (`COALESCE` of several columns, up to now minus
//! `timestamp.delay.interval.ms`), or both. Rows become Connect structs on topic
//! `<topic.prefix><table>`; source partitions are `{"table": ...}` (or `{"query": ...}`)
//! and offsets `{"incrementing": ...}` / `{"timestamp": ms, "timestamp_nanos": ns}`.
//! Tables are shared out over the tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::connection::describe;
use super::source_config::{Mode, SourceConfig};
use super::sql::{ident, table as table_ident};
use super::types::{schema_for, value_for};
use crate::api::config_def::ConfigDef;
use crate::api::{
    Config, ConnectRecord, ExactlyOnceSupport, Field, JsonMap, OffsetReader, Schema,
    SourceConnector, SourceRecord, SourceTask, Value,
};
use crate::error::{Error, Result};

pub struct PostgresSourceConnector;

impl SourceConnector for PostgresSourceConnector {
    fn config_def(&self) -> ConfigDef {
        super::source_config::definition()
    }
    fn validate(&self, config: &Config) -> Result<()> {
        SourceConfig::parse(config).map(|_| ())
    }
    fn task_configs(&self, config: &Config, max_tasks: usize) -> Result<Vec<Config>> {
        let c = SourceConfig::parse(config)?;
        // A query is one stream; tables are dealt out by index when the tasks list them.
        let n = if c.query.is_some() {
            1
        } else if c.whitelist.is_empty() {
            max_tasks.max(1)
        } else {
            max_tasks.clamp(1, c.whitelist.len())
        };
        Ok((0..n)
            .map(|i| {
                let mut t = config.clone();
                t.insert("task.index".into(), i.to_string());
                t.insert("task.count".into(), n.to_string());
                t
            })
            .collect())
    }
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(PostgresSourceTask::default())
    }
    /// Each query starts after the committed offset, so a restart repeats nothing —
    /// except in bulk mode, which copies whole tables every poll.
    fn exactly_once_support(&self, config: &Config) -> Option<ExactlyOnceSupport> {
        let c = SourceConfig::parse(config).ok()?;
        Some(if c.mode == Mode::Bulk {
            ExactlyOnceSupport::Unsupported
        } else {
            ExactlyOnceSupport::Supported
        })
    }
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    pg_type: String,
    nullable: bool,
    scale: Option<u32>,
}

#[derive(Debug, Clone)]
struct TableState {
    /// The table name, or the query.
    name: String,
    is_query: bool,
    incrementing: Option<i64>,
    /// Microseconds since the epoch of the last timestamp read.
    timestamp_us: Option<i64>,
}

impl TableState {
    fn partition(&self) -> JsonMap {
        let key = if self.is_query { "query" } else { "table" };
        let mut m = JsonMap::new();
        m.insert(key.into(), json!(self.name));
        m
    }
}

#[derive(Default)]
pub struct PostgresSourceTask {
    config: Option<SourceConfig>,
    client: Option<Client>,
    tables: Vec<TableState>,
    next_poll: Option<Instant>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("PostgresSource: {e}"))
}

/// The literal `TIMESTAMPTZ 'epoch' + n microseconds`.
fn ts_literal(us: i64) -> String {
    format!("(TIMESTAMPTZ 'epoch' + {us} * INTERVAL '1 microsecond')")
}

impl PostgresSourceTask {
    fn cfg(&self) -> Result<&SourceConfig> {
        self.config
            .as_ref()
            .ok_or_else(|| err("the task was not started"))
    }

    async fn client(&mut self) -> Result<&Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let c = super::connection::connect_utc(&self.cfg()?.connection).await?;
            self.client = Some(c);
        }
        self.client.as_ref().ok_or_else(|| err("no connection"))
    }

    async fn columns(&mut self, t: &TableState) -> Result<Vec<Column>> {
        let client = self.client().await?;
        if t.is_query {
            let stmt = client
                .prepare(&t.name)
                .await
                .map_err(|e| err(format!("query: {}", describe(&e))))?;
            return Ok(stmt
                .columns()
                .iter()
                .map(|c| Column {
                    name: c.name().to_string(),
                    pg_type: c.type_().name().to_string(),
                    nullable: true,
                    scale: None,
                })
                .collect());
        }
        let rows = client
            .query(
                "SELECT a.attname::text, t.typname::text, NOT a.attnotnull, \
                 CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN ((a.atttypmod - 4) & 65535) END \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&t.name],
            )
            .await
            .map_err(|e| err(format!("reading the columns of {}: {}", t.name, describe(&e))))?;
        Ok(rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                pg_type: r.get(1),
                nullable: r.get(2),
                scale: r.get::<_, Option<i32>>(3).map(|s| s as u32),
            })
            .collect())
    }

    /// The tables this task polls: the whitelist, or every table of the current schema
    /// not blacklisted — dealt out over the tasks by position.
    async fn list_tables(&mut self) -> Result<Vec<String>> {
        let c = self.cfg()?.clone();
        if let Some(q) = &c.query {
            return Ok(vec![q.clone()]);
        }
        let mut names = if c.whitelist.is_empty() {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
                    &[],
                )
                .await
                .map_err(|e| err(describe(&e)))?;
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .filter(|t| !c.blacklist.contains(t))
                .collect()
        } else {
            c.whitelist.clone()
        };
        names.sort();
        let (index, count) = c.task;
        Ok(names
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % count == index)
            .map(|(_, n)| n)
            .collect())
    }

    async fn poll_table(&mut self, i: usize) -> Result<(Vec<SourceRecord>, bool)> {
        let c = self.cfg()?.clone();
        let t = self.tables[i].clone();
        let columns = self.columns(&t).await?;
        let ts_expr = (!c.timestamp_columns.is_empty()).then(|| {
            let cols: Vec<String> = c.timestamp_columns.iter().map(|n| ident(n)).collect();
            if cols.len() == 1 {
                cols[0].clone()
            } else {
                format!("COALESCE({})", cols.join(", "))
            }
        });
        let inc = c.incrementing_column.as_deref().map(ident);
        let mut select: Vec<String> = columns
            .iter()
            .map(|col| format!("{0}::text AS {0}", ident(&col.name)))
            .collect();
        if let Some(ts) = &ts_expr {
            select.push(format!(
                "(EXTRACT(EPOCH FROM {ts}) * 1000000)::bigint::text AS \"__runnel_ts_us\""
            ));
        }
        let from = if t.is_query {
            format!("({}) AS q", t.name)
        } else {
            table_ident(&t.name)
        };
        let upto = format!(
            "now() - {} * INTERVAL '1 millisecond'",
            c.timestamp_delay_ms
        );
        let (filter, order, limit) = match (c.mode, &ts_expr, &inc) {
            (Mode::Bulk, _, _) => (String::new(), String::new(), false),
            (Mode::Incrementing, _, Some(inc)) => (
                format!("WHERE {inc} > {}", t.incrementing.unwrap_or(-1)),
                format!("ORDER BY {inc}"),
                true,
            ),
            (Mode::Timestamp, Some(ts), _) => {
                let after = t
                    .timestamp_us
                    .map(|us| format!(" AND {ts} > {}", ts_literal(us)))
                    .unwrap_or_default();
                (
                    format!("WHERE {ts} < {upto}{after}"),
                    format!("ORDER BY {ts}"),
                    false,
                )
            }
            (Mode::TimestampIncrementing, Some(ts), Some(inc)) => {
                let after = match t.timestamp_us {
                    Some(us) => format!(
                        " AND ({ts} > {l} OR ({ts} = {l} AND {inc} > {}))",
                        t.incrementing.unwrap_or(-1),
                        l = ts_literal(us)
                    ),
                    None => String::new(),
                };
                (
                    format!("WHERE {ts} < {upto}{after}"),
                    format!("ORDER BY {ts}, {inc}"),
                    true,
                )
            }
            _ => return Err(err("the mode's columns are not set")),
        };
        let limit_sql = if limit {
            format!(" LIMIT {}", c.batch_max_rows)
        } else {
            String::new()
        };
        let sql = format!(
            "SELECT {} FROM {from} {filter} {order}{limit_sql}",
            select.join(", ")
        );
        let messages = self
            .client()
            .await?
            .simple_query(&sql)
            .await
            .map_err(|e| err(format!("polling {}: {}", t.name, describe(&e))))?;
        let schemas: Vec<Schema> = columns
            .iter()
            .map(|col| schema_for(&col.pg_type, col.nullable, col.scale))
            .collect();
        let mut value_schema = Schema::structure(
            columns
                .iter()
                .zip(&schemas)
                .map(|(col, s)| Field {
                    name: col.name.clone(),
                    schema: s.clone(),
                })
                .collect(),
        );
        value_schema.name = Some(if t.is_query {
            "query".into()
        } else {
            t.name.clone()
        });
        let topic = if t.is_query {
            c.topic_prefix.clone()
        } else {
            format!("{}{}", c.topic_prefix, t.name)
        };
        let mut out = Vec::new();
        let mut state = t.clone();
        for m in messages {
            let SimpleQueryMessage::Row(row) = m else {
                continue;
            };
            let mut fields = Vec::with_capacity(columns.len());
            for (k, (col, s)) in columns.iter().zip(&schemas).enumerate() {
                fields.push((col.name.clone(), value_for(&col.pg_type, s, row.get(k))?));
            }
            if let Some(name) = &c.incrementing_column {
                let v = columns
                    .iter()
                    .position(|col| &col.name == name)
                    .and_then(|k| row.get(k))
                    .and_then(|v| v.parse().ok());
                state.incrementing = v.or(state.incrementing);
            }
            if ts_expr.is_some() {
                let us = row.get(columns.len()).and_then(|v| v.parse::<i64>().ok());
                state.timestamp_us = us.or(state.timestamp_us);
            }
            let mut offset = JsonMap::new();
            if let Some(i) = state
                .incrementing
                .filter(|_| c.mode != Mode::Timestamp && c.mode != Mode::Bulk)
            {
                offset.insert("incrementing".into(), json!(i));
            }
            if let Some(us) = state
                .timestamp_us
                .filter(|_| matches!(c.mode, Mode::Timestamp | Mode::TimestampIncrementing))
            {
                offset.insert("timestamp".into(), json!(us.div_euclid(1000)));
                offset.insert(
                    "timestamp_nanos".into(),
                    json!(us.rem_euclid(1_000_000) * 1000),
                );
            }
            out.push(SourceRecord {
                source_partition: Arc::new(state.partition()),
                source_offset: offset,
                record: ConnectRecord::new(
                    topic.clone(),
                    Some(value_schema.clone()),
                    Value::Struct(fields),
                ),
            });
        }
        tracing::debug!(table = %t.name, rows = out.len(), "polled: {sql}");
        let full = limit && out.len() >= c.batch_max_rows;
        self.tables[i] = state;
        Ok((out, full))
    }
}

#[async_trait]
impl SourceTask for PostgresSourceTask {
    async fn start(&mut self, config: &Config, offsets: &dyn OffsetReader) -> Result<()> {
        self.config = Some(SourceConfig::parse(config)?);
        let is_query = self.cfg()?.query.is_some();
        let names = self.list_tables().await?;
        for name in names {
            let mut t = TableState {
                name,
                is_query,
                incrementing: None,
                timestamp_us: None,
            };
            if let Some(o) = offsets.offset(&t.partition()) {
                t.incrementing = o.get("incrementing").and_then(|v| v.as_i64());
                let ms = o.get("timestamp").and_then(|v| v.as_i64());
                let ns = o
                    .get("timestamp_nanos")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                t.timestamp_us = ms.map(|ms| ms.div_euclid(1000) * 1_000_000 + ns / 1000);
            }
            self.tables.push(t);
        }
        tracing::info!(tables = ?self.tables.iter().map(|t| &t.name).collect::<Vec<_>>(), "PostgresSource polling");
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if let Some(at) = self.next_poll {
            let now = Instant::now();
            if at > now {
                // Sleep in short steps so a stop request is seen promptly.
                tokio::time::sleep((at - now).min(Duration::from_millis(200))).await;
                return Ok(Vec::new());
            }
        }
        let mut out = Vec::new();
        let mut more = false;
        for i in 0..self.tables.len() {
            match self.poll_table(i).await {
                Ok((records, full)) => {
                    out.extend(records);
                    more |= full;
                }
                Err(Error::Retriable(reason)) => {
                    self.client = None;
                    return Err(Error::Retriable(reason));
                }
                Err(e) => return Err(e),
            }
        }
        let interval = Duration::from_millis(self.cfg()?.poll_interval_ms);
        self.next_poll = Some(if more {
            Instant::now()
        } else {
            Instant::now() + interval
        });
        Ok(out)
    }
}
