//! PostgresCdcSource, Debezium-compatible without a JVM: logical decoding with pgoutput
//! streamed over the replication protocol (`cdc_stream.rs`); the slot is confirmed only
//! up to what the broker acknowledged and the offsets committed. Change events
//! carry Debezium's envelope (`before`, `after`, `op`, `source`, `ts_ms`) on topic
//! `<topic.prefix>.<schema>.<table>`, keyed by the primary key; a delete is followed by
//! a tombstone. The initial snapshot reads the tables in one REPEATABLE READ
//! transaction; streamed transactions that snapshot already saw (by its xmin, xmax and
//! in-progress list) are skipped, so the hand-over has no gap and no duplicate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio_postgres::Client;

#[path = "cdc_snapshot.rs"]
mod snapshot;
#[path = "cdc_stream.rs"]
mod stream;

use super::cdc_config::{CdcConfig, PublicationAutocreate, SnapshotMode};
use super::connection::describe;
use super::pgoutput::{format_lsn, Datum};
use super::sql::{ident, table as table_ident};
use super::types::{schema_for, value_for};
use crate::api::config_def::ConfigDef;
use crate::api::{
    Config, ConnectRecord, ExactlyOnceSupport, Field, JsonMap, OffsetReader, Schema, SchemaType,
    SourceConnector, SourceRecord, SourceTask, Value,
};
use crate::error::{Error, Result};

pub struct PostgresCdcConnector;

impl SourceConnector for PostgresCdcConnector {
    fn config_def(&self) -> ConfigDef {
        super::cdc_config::definition()
    }
    fn validate(&self, config: &Config) -> Result<()> {
        CdcConfig::parse(config).map(|_| ())
    }
    fn task_configs(&self, config: &Config, _max_tasks: usize) -> Result<Vec<Config>> {
        // One slot, one reader.
        Ok(vec![config.clone()])
    }
    fn create_task(&self) -> Box<dyn SourceTask> {
        Box::new(PostgresCdcTask::default())
    }
    /// The stream resumes after the committed (commit LSN, change index), so it repeats
    /// nothing; an interrupted snapshot starts over (as Debezium's does) and would repeat
    /// the rows of its committed transactions.
    fn exactly_once_support(&self, config: &Config) -> Option<ExactlyOnceSupport> {
        let c = CdcConfig::parse(config).ok()?;
        Some(if c.snapshot == SnapshotMode::Never {
            ExactlyOnceSupport::Supported
        } else {
            ExactlyOnceSupport::Unsupported
        })
    }
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    type_name: String,
    key: bool,
    schema: Schema,
}

#[derive(Debug, Clone)]
struct Relation {
    schema: String,
    table: String,
    /// `<topic.prefix>.<schema>.<table>`.
    topic: String,
    columns: Vec<Column>,
    key_schema: Schema,
    envelope: Schema,
    /// In `table.include.list` (or no list is set).
    included: bool,
}

/// Which transactions the snapshot saw: `xid < xmin`, or `< xmax` and not in progress.
#[derive(Debug, Clone, Default, PartialEq)]
struct Visibility {
    xmin: u64,
    xmax: u64,
    xip: Vec<u64>,
}

impl Visibility {
    fn parse(s: &str) -> Option<Visibility> {
        let mut it = s.split(':');
        let xmin = it.next()?.parse().ok()?;
        let xmax = it.next()?.parse().ok()?;
        let xip = it
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|x| !x.is_empty())
            .filter_map(|x| x.parse().ok())
            .collect();
        Some(Visibility { xmin, xmax, xip })
    }
    /// pgoutput's xids are 32 bits; the snapshot's are epoch-extended (xid8). A streamed
    /// xid is extended with the epoch that puts it nearest the snapshot's xmax (as
    /// PostgreSQL's FullTransactionIdFromAllowableAt does): transactions in flight are
    /// within 2^31 of it, so comparisons stay right across a wraparound.
    fn full_xid(&self, xid: u32) -> u64 {
        let delta = xid.wrapping_sub(self.xmax as u32) as i32;
        self.xmax.wrapping_add_signed(i64::from(delta))
    }

    fn saw(&self, xid: u32) -> bool {
        let full = self.full_xid(xid);
        full < self.xmin || (full < self.xmax && !self.xip.contains(&full))
    }
}

#[derive(Default)]
pub struct PostgresCdcTask {
    config: Option<CdcConfig>,
    client: Option<Client>,
    relations: HashMap<u32, Relation>,
    /// Resume point: (commit LSN, changes of that transaction already emitted).
    resume: Option<(u64, u64)>,
    visibility: Option<Visibility>,
    snapshot_pending: bool,
    /// The snapshot being read, chunk by chunk.
    snapshot_run: Option<snapshot::SnapshotRun>,
    snapshot_only_done: bool,
    /// The replication connection, once the snapshot is done.
    change_stream: Option<stream::ChangeStream>,
    /// Type names by oid, for relation messages.
    type_names: HashMap<i64, String>,
    /// A confirmed position not yet handed to a replication connection.
    advance_to: Option<u64>,
    /// Streamed transactions not yet confirmed: (position of the last record emitted
    /// when the transaction ended, its end LSN), in commit order.
    confirmable: std::collections::VecDeque<(Option<(u64, u64)>, u64)>,
    /// The furthest (commit LSN, change index) whose offset the runtime committed.
    committed_position: Option<(u64, u64)>,
    /// The source partition of every record, `{"server": <topic.prefix>}`.
    partition: Arc<JsonMap>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("PostgresCdcSource: {e}"))
}

fn pg(e: tokio_postgres::Error) -> Error {
    if super::connection::is_transient(&e) {
        Error::Retriable(describe(&e))
    } else {
        err(describe(&e))
    }
}

/// A source offset from its entries, built in place (no intermediate JSON value).
fn offset_map<const N: usize>(entries: [(&str, serde_json::Value); N]) -> JsonMap {
    let mut m = JsonMap::with_capacity(N);
    for (k, v) in entries {
        m.insert(k.to_string(), v);
    }
    m
}

fn source_schema() -> Schema {
    let f = |n: &str, s: Schema| Field {
        name: n.into(),
        schema: s,
    };
    let mut s = Schema::structure(vec![
        f("version", Schema::string()),
        f("connector", Schema::string()),
        f("name", Schema::string()),
        f("ts_ms", Schema::new(SchemaType::Int64)),
        f("snapshot", Schema::optional_string()),
        f("db", Schema::string()),
        f("schema", Schema::string()),
        f("table", Schema::string()),
        f("txId", Schema::new(SchemaType::Int64).optional()),
        f("lsn", Schema::new(SchemaType::Int64).optional()),
    ]);
    s.name = Some("io.debezium.connector.postgresql.Source".into());
    s
}

impl PostgresCdcTask {
    fn cfg(&self) -> Result<&CdcConfig> {
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

    /// A relation's columns, types and key, from the catalog.
    async fn describe_table(&mut self, schema: &str, table: &str) -> Result<Relation> {
        let qualified = format!("{}.{}", ident(schema), ident(table));
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.attname::text, t.typname::text, NOT a.attnotnull, \
                 COALESCE(a.attnum = ANY(i.indkey), false), \
                 CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN ((a.atttypmod - 4) & 65535) END \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&qualified],
            )
            .await
            .map_err(pg)?;
        let columns = rows
            .iter()
            .map(|r| {
                let type_name: String = r.get(1);
                let schema = schema_for(
                    &type_name,
                    r.get(2),
                    r.get::<_, Option<i32>>(4).map(|s| s as u32),
                );
                Column {
                    name: r.get(0),
                    type_name,
                    key: r.get(3),
                    schema,
                }
            })
            .collect();
        Ok(self.relation(schema, table, columns))
    }

    fn relation(&self, schema: &str, table: &str, columns: Vec<Column>) -> Relation {
        let prefix = self
            .config
            .as_ref()
            .map(|c| c.topic_prefix.clone())
            .unwrap_or_default();
        let qualified = format!("{schema}.{table}");
        let included = self
            .config
            .as_ref()
            .is_none_or(|c| c.tables.is_empty() || c.tables.contains(&qualified));
        let name = format!("{prefix}.{qualified}");
        let mut row_schema = Schema::structure(
            columns
                .iter()
                .map(|c| Field {
                    name: c.name.clone(),
                    schema: c.schema.clone(),
                })
                .collect(),
        );
        row_schema.name = Some(format!("{name}.Value"));
        let mut key_schema = Schema::structure(
            columns
                .iter()
                .filter(|c| c.key)
                .map(|c| Field {
                    name: c.name.clone(),
                    schema: c.schema.clone(),
                })
                .collect(),
        );
        key_schema.name = Some(format!("{name}.Key"));
        let f = |n: &str, s: Schema| Field {
            name: n.into(),
            schema: s,
        };
        let mut envelope = Schema::structure(vec![
            f("before", row_schema.clone().optional()),
            f("after", row_schema.clone().optional()),
            f("source", source_schema()),
            f("op", Schema::string()),
            f("ts_ms", Schema::new(SchemaType::Int64).optional()),
        ]);
        envelope.name = Some(format!("{name}.Envelope"));
        Relation {
            topic: name,
            schema: schema.into(),
            table: table.into(),
            columns,
            key_schema,
            envelope,
            included,
        }
    }

    fn row(rel: &Relation, datums: &[Datum]) -> Result<Value> {
        let mut fields = Vec::with_capacity(rel.columns.len());
        for (i, c) in rel.columns.iter().enumerate() {
            let v = match datums.get(i) {
                Some(Datum::Text(t)) => value_for(&c.type_name, &c.schema, Some(t))?,
                _ => Value::Null,
            };
            fields.push((c.name.clone(), v));
        }
        Ok(Value::Struct(fields))
    }

    fn key_of(rel: &Relation, row: &Value) -> Value {
        Value::Struct(
            rel.columns
                .iter()
                .filter(|c| c.key)
                .map(|c| {
                    (
                        c.name.clone(),
                        row.get(&c.name).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        rel: &Relation,
        op: &str,
        before: Option<Value>,
        after: Option<Value>,
        ts_ms: i64,
        snapshot: &str,
        tx: Option<(u32, u64)>,
        offset: JsonMap,
        out: &mut Vec<SourceRecord>,
    ) -> Result<()> {
        let c = self.cfg()?;
        let key = Self::key_of(
            rel,
            after.as_ref().or(before.as_ref()).unwrap_or(&Value::Null),
        );
        let source = Value::Struct(vec![
            (
                "version".into(),
                Value::String(env!("CARGO_PKG_VERSION").into()),
            ),
            ("connector".into(), Value::String("postgresql".into())),
            ("name".into(), Value::String(c.topic_prefix.clone())),
            ("ts_ms".into(), Value::Int64(ts_ms)),
            ("snapshot".into(), Value::String(snapshot.into())),
            ("db".into(), Value::String(c.dbname.clone())),
            ("schema".into(), Value::String(rel.schema.clone())),
            ("table".into(), Value::String(rel.table.clone())),
            (
                "txId".into(),
                tx.map_or(Value::Null, |(x, _)| Value::Int64(i64::from(x))),
            ),
            (
                "lsn".into(),
                tx.map_or(Value::Null, |(_, l)| Value::Int64(l as i64)),
            ),
        ]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let value = Value::Struct(vec![
            ("before".into(), before.unwrap_or(Value::Null)),
            ("after".into(), after.unwrap_or(Value::Null)),
            ("source".into(), source),
            ("op".into(), Value::String(op.into())),
            ("ts_ms".into(), Value::Int64(now)),
        ]);
        let mut rec = ConnectRecord::new(rel.topic.clone(), Some(rel.envelope.clone()), value);
        rec.key_schema = Some(rel.key_schema.clone());
        // A delete is followed by its tombstone, with the same key and offset.
        let tombstone = (op == "d").then(|| {
            let mut tomb = ConnectRecord::new(rel.topic.clone(), None, Value::Null);
            tomb.key_schema = Some(rel.key_schema.clone());
            tomb.key = key.clone();
            SourceRecord {
                source_partition: self.partition.clone(),
                source_offset: offset.clone(),
                record: tomb,
            }
        });
        rec.key = key;
        out.push(SourceRecord {
            source_partition: self.partition.clone(),
            source_offset: offset,
            record: rec,
        });
        out.extend(tombstone);
        Ok(())
    }

    fn visibility_json(&self) -> serde_json::Value {
        match &self.visibility {
            Some(v) => json!({"xmin": v.xmin, "xmax": v.xmax, "xip": v.xip}),
            None => serde_json::Value::Null,
        }
    }
}

#[async_trait]
impl SourceTask for PostgresCdcTask {
    async fn start(&mut self, config: &Config, offsets: &dyn OffsetReader) -> Result<()> {
        let c = CdcConfig::parse(config)?;
        let partition = json!({"server": c.topic_prefix})
            .as_object()
            .cloned()
            .unwrap_or_default();
        self.config = Some(c.clone());
        let stored = offsets.offset(&partition);
        self.partition = Arc::new(partition);
        let client = self.client().await?;
        let has_pub = client
            .query(
                "SELECT 1 FROM pg_publication WHERE pubname = $1",
                &[&c.publication],
            )
            .await
            .map_err(pg)?;
        if has_pub.is_empty() {
            let ddl = match c.autocreate {
                PublicationAutocreate::Disabled => {
                    return Err(err(format!(
                        "publication {} does not exist and publication.autocreate.mode is disabled",
                        c.publication
                    )))
                }
                PublicationAutocreate::AllTables => format!(
                    "CREATE PUBLICATION {} FOR ALL TABLES",
                    ident(&c.publication)
                ),
                PublicationAutocreate::Filtered => format!(
                    "CREATE PUBLICATION {} FOR TABLE {}",
                    ident(&c.publication),
                    c.tables
                        .iter()
                        .map(|t| table_ident(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            client.batch_execute(&ddl).await.map_err(pg)?;
        }
        let has_slot = client
            .query(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&c.slot],
            )
            .await
            .map_err(pg)?;
        if has_slot.is_empty() {
            // Its own statement: a slot cannot be created in a transaction that wrote.
            client
                .query(
                    "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                    &[&c.slot],
                )
                .await
                .map_err(pg)?;
        }
        let completed = stored
            .as_ref()
            .and_then(|o| o.get("snapshot_completed"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if let Some(o) = &stored {
            if let (Some(l), Some(n)) = (
                o.get("lsn_commit").and_then(|v| v.as_u64()),
                o.get("lsn_proc").and_then(|v| v.as_u64()),
            ) {
                self.resume = Some((l, n));
                // Stored offsets were committed: what lies before them is confirmable.
                self.committed_position = Some((l, n));
            }
            if let Some(v) = o.get("visibility").filter(|v| !v.is_null()) {
                self.visibility = Some(Visibility {
                    xmin: v["xmin"].as_u64().unwrap_or(0),
                    xmax: v["xmax"].as_u64().unwrap_or(0),
                    xip: v["xip"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                        .unwrap_or_default(),
                });
            }
        }
        self.snapshot_pending = c.snapshot != SnapshotMode::Never && !completed;
        tracing::info!(slot = %c.slot, publication = %c.publication, snapshot = self.snapshot_pending, resume = ?self.resume.map(|(l, n)| (format_lsn(l), n)), "PostgresCdcSource starting");
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>> {
        if self.snapshot_pending {
            // Cleared only once the whole snapshot was read: a failure (a retriable one
            // is polled again) rolls back its transaction and the snapshot starts over.
            let (records, done) = match self.snapshot_chunk().await {
                Ok(chunk) => chunk,
                Err(e) => {
                    if let Some(client) = self.client.take() {
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    self.snapshot_run = None;
                    self.visibility = None;
                    return Err(e);
                }
            };
            if done {
                self.snapshot_pending = false;
                if self.cfg()?.snapshot == SnapshotMode::InitialOnly {
                    self.snapshot_only_done = true;
                }
            }
            return Ok(records);
        }
        if self.snapshot_only_done {
            tokio::time::sleep(Duration::from_millis(200)).await;
            return Ok(Vec::new());
        }
        self.stream().await
    }

    async fn commit(&mut self, committed: &[(JsonMap, JsonMap)]) -> Result<()> {
        self.confirm(committed);
        Ok(())
    }

    async fn stop(&mut self) -> Result<()> {
        self.close_stream().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_visibility() {
        let v = Visibility::parse("100:105:101,103").unwrap();
        assert!(v.saw(99) && v.saw(102) && v.saw(104));
        assert!(!v.saw(101) && !v.saw(103) && !v.saw(105) && !v.saw(200));
    }

    #[test]
    fn snapshot_visibility_across_xid_wraparound() {
        // The snapshot was taken just after the 32-bit xid counter wrapped (epoch 1).
        let e1 = 1u64 << 32;
        let v = Visibility::parse(&format!("{}:{}:{}", e1 - 6, e1 + 3, e1 - 2)).unwrap();
        // Committed before it, in either epoch: seen.
        assert!(v.saw(u32::MAX - 10) && v.saw(u32::MAX - 3) && v.saw(1));
        // In progress at the snapshot, or after it (low xids of epoch 1): not seen.
        // On the low 32 bits alone, 7 < xmin's low bits counted as seen, and its
        // changes were skipped.
        assert!(!v.saw(u32::MAX - 1) && !v.saw(3) && !v.saw(7) && !v.saw(1000));
        // Taken before the wrap, streamed xids after it are not seen.
        let v = Visibility::parse(&format!("{}:{}:", e1 - 100, e1 - 50)).unwrap();
        assert!(v.saw(u32::MAX - 200) && !v.saw(u32::MAX - 10) && !v.saw(5));
    }
}
