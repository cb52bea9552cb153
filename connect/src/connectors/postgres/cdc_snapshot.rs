//! The initial snapshot of the CDC source, read in chunks: one REPEATABLE READ
//! transaction for the whole snapshot, a cursor per table fetched `snapshot.fetch.size`
//! rows at a time, and at most `max.batch.size` records handed out per poll (as
//! Debezium's keys mean them), so memory stays bounded whatever the table's size. One record is held back
//! between chunks, so the snapshot's very last record can carry the completion marker
//! (`snapshot_completed` and the visibility the stream then hands over with).

use std::collections::VecDeque;

use serde_json::json;
use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

use super::{err, offset_map, pg, PostgresCdcTask, Relation, Visibility};
use crate::api::{SourceRecord, Value};
use crate::connectors::postgres::pgoutput::Datum;
use crate::connectors::postgres::sql::{ident, table as table_ident};
use crate::error::Result;

const CURSOR: &str = "runnel_snapshot";

/// A snapshot in progress.
pub(super) struct SnapshotRun {
    tables: VecDeque<(String, String)>,
    /// The table whose cursor is open.
    current: Option<Relation>,
    /// Rows fetched from the cursor, not yet turned into records.
    fetched: VecDeque<SimpleQueryRow>,
    /// The last record read, not yet handed out.
    held: Option<SourceRecord>,
    now: i64,
    rows: u64,
}

impl PostgresCdcTask {
    /// Begins the snapshot's transaction and takes its visibility.
    async fn begin_snapshot(&mut self) -> Result<SnapshotRun> {
        let c = self.cfg()?.clone();
        let client = self.client().await?;
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(pg)?;
        let snap: String = client
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            .map_err(pg)?
            .get(0);
        let tables = client
            .query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", &[&c.publication])
            .await
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .filter(|(s, t): &(String, String)| c.tables.is_empty() || c.tables.contains(&format!("{s}.{t}")))
            .collect();
        self.visibility = Some(
            Visibility::parse(&snap).ok_or_else(|| err(format!("unreadable snapshot {snap}")))?,
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Ok(SnapshotRun {
            tables,
            current: None,
            fetched: VecDeque::new(),
            held: None,
            now,
            rows: 0,
        })
    }

    /// The next chunk of snapshot records, and whether the snapshot is complete (its
    /// transaction committed, its last record marked).
    pub(super) async fn snapshot_chunk(&mut self) -> Result<(Vec<SourceRecord>, bool)> {
        let mut run = match self.snapshot_run.take() {
            Some(run) => run,
            None => self.begin_snapshot().await?,
        };
        let (fetch, batch) = {
            let c = self.cfg()?;
            (c.snapshot_fetch_size, c.max_batch_size)
        };
        let mut out = Vec::new();
        while out.len() < batch {
            let rel = match run.current.take() {
                Some(rel) => rel,
                None => match run.tables.pop_front() {
                    Some((schema, table)) => self.open_cursor(&schema, &table).await?,
                    None => {
                        self.client()
                            .await?
                            .batch_execute("COMMIT")
                            .await
                            .map_err(pg)?;
                        out.extend(run.held.take().map(|last| self.mark_last(last)));
                        tracing::info!(records = run.rows, "PostgresCdcSource snapshot read");
                        return Ok((out, true));
                    }
                },
            };
            if run.fetched.is_empty() {
                let sql = format!("FETCH {fetch} FROM {CURSOR}");
                let msgs = self.client().await?.simple_query(&sql).await.map_err(pg)?;
                run.fetched.extend(msgs.into_iter().filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row),
                    _ => None,
                }));
                if run.fetched.is_empty() {
                    let close = format!("CLOSE {CURSOR}");
                    self.client()
                        .await?
                        .batch_execute(&close)
                        .await
                        .map_err(pg)?;
                    continue;
                }
            }
            let mut records = Vec::with_capacity(1);
            while out.len() < batch {
                let Some(row) = run.fetched.pop_front() else {
                    break;
                };
                run.rows += 1;
                let datums: Vec<Datum> = (0..rel.columns.len())
                    .map(|i| row.get(i).map_or(Datum::Null, |t| Datum::Text(t.into())))
                    .collect();
                let after = Self::row(&rel, &datums)?;
                let offset = offset_map([
                    ("snapshot", true.into()),
                    ("snapshot_completed", false.into()),
                ]);
                self.event(
                    &rel,
                    "r",
                    None,
                    Some(after),
                    run.now,
                    "true",
                    None,
                    offset,
                    &mut records,
                )?;
                for r in records.drain(..) {
                    out.extend(run.held.replace(r));
                }
            }
            run.current = Some(rel);
        }
        self.snapshot_run = Some(run);
        Ok((out, false))
    }

    async fn open_cursor(&mut self, schema: &str, table: &str) -> Result<Relation> {
        let rel = self.describe_table(schema, table).await?;
        let select: Vec<String> = rel
            .columns
            .iter()
            .map(|col| format!("{}::text", ident(&col.name)))
            .collect();
        let sql = format!(
            "DECLARE {CURSOR} NO SCROLL CURSOR FOR SELECT {} FROM {}",
            select.join(", "),
            table_ident(&format!("{schema}.{table}"))
        );
        self.client().await?.batch_execute(&sql).await.map_err(pg)?;
        Ok(rel)
    }

    /// The last snapshot record says the snapshot is complete, and what it saw.
    fn mark_last(&self, mut last: SourceRecord) -> SourceRecord {
        let done = json!({"snapshot_completed": true, "visibility": self.visibility_json()});
        last.source_offset = done.as_object().cloned().unwrap_or_default();
        if let Value::Struct(fields) = &mut last.record.value {
            if let Some((_, Value::Struct(src))) = fields.iter_mut().find(|(n, _)| n == "source") {
                if let Some((_, s)) = src.iter_mut().find(|(n, _)| n == "snapshot") {
                    *s = Value::String("last".into());
                }
            }
        }
        last
    }
}
