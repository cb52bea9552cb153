//! The engine: executes statements against the catalog, starts and stops persistent
//! queries, and records every catalog change in the command topic so a restarted
//! engine replays them. Results are ksqlDB's `/ksql` response entities (JSON), which
//! the REST server returns as they are and the shell renders.

mod alter;
mod assert;
mod command_topic;
mod ddl;
mod dml;
mod show;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use runnel_streams::KafkaStreams;
use tokio::sync::Mutex;

use crate::catalog::Catalog;
use crate::entity::{Entity, QueryDescription, QueryError};
use crate::error::{Error, Result};
use crate::exec::materialized::{self, Materialized};
use crate::kafka::Kafka;
use crate::parser::ast::{ParsedStatement, Statement};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub bootstrap_servers: String,
    /// `ksql.service.id`: names the command topic and the queries' application ids.
    pub service_id: String,
    /// Where persistent queries keep their state stores.
    pub state_dir: PathBuf,
    /// Replication factor of the topics the engine creates.
    pub replication: i32,
}

impl EngineConfig {
    pub fn new(bootstrap_servers: &str, state_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            bootstrap_servers: bootstrap_servers.to_string(),
            service_id: "default_".to_string(),
            state_dir,
            replication: 1,
        }
    }

    pub fn command_topic(&self) -> String {
        format!("_confluent-ksql-{}_command_topic", self.service_id)
    }
}

pub(crate) struct Running {
    pub streams: KafkaStreams,
    pub compiled: Arc<crate::exec::compiled::Compiled>,
}

impl Inner {
    /// A persistent query's state as ksqlDB reports it (`KsqlQueryStatus`): RUNNING
    /// while its Streams application runs or rebalances, ERROR with the reason once a
    /// stream thread failed (or when it is not running at all).
    pub(crate) fn query_state(&self, id: &str) -> (&'static str, Option<String>) {
        match self.running.get(id) {
            Some(r) if r.streams.state() == runnel_streams::runtime::State::Error => {
                ("ERROR", Some(r.streams.last_error().unwrap_or_default()))
            }
            Some(_) => ("RUNNING", None),
            None => ("ERROR", Some("the query is not running".into())),
        }
    }

    /// The tables whose pull queries this instance can serve from a running
    /// aggregation's state store (see [`crate::exec::materialized`]), by name.
    pub(crate) fn materialized(&self) -> HashMap<String, Materialized> {
        let mut out = HashMap::new();
        for (name, source) in &self.catalog.sources {
            let [id] = source.written_by.as_slice() else {
                continue;
            };
            let Some(r) = self.running.get(id) else {
                continue;
            };
            if r.streams.state() != runnel_streams::runtime::State::Running
                || !materialized::serves(&r.compiled)
            {
                continue;
            }
            out.insert(
                name.clone(),
                Materialized {
                    compiled: r.compiled.clone(),
                    stores: r.streams.store_partitions(materialized::STORE),
                    partitions: r.streams.partitions_of(&r.compiled.source.topic),
                },
            );
        }
        out
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    pub catalog: Catalog,
    pub running: HashMap<String, Running>,
    /// Properties set with SET, applied to later statements.
    pub props: BTreeMap<String, String>,
    pub sequence: u64,
}

pub struct Engine {
    pub(crate) config: EngineConfig,
    pub(crate) kafka: Kafka,
    pub(crate) inner: Mutex<Inner>,
}

/// How a statement is being run: by a user, or replayed from the command topic.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// The query id the command topic recorded for this statement.
    pub query_id: Option<String>,
    pub replay: bool,
    /// The request's `streamsProperties` (or those the command topic recorded).
    pub props: std::collections::BTreeMap<String, String>,
}

impl Engine {
    /// Connects, replays the command topic and resumes its persistent queries.
    pub async fn start(config: EngineConfig) -> Result<Arc<Engine>> {
        std::fs::create_dir_all(&config.state_dir)?;
        let kafka = Kafka::new(&config.bootstrap_servers, config.replication)?;
        let engine = Arc::new(Engine {
            config,
            kafka,
            inner: Mutex::new(Inner::default()),
        });
        engine.replay().await?;
        Ok(engine)
    }

    pub fn kafka(&self) -> &Kafka {
        &self.kafka
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs a script; stops at the first failing statement.
    pub async fn execute(&self, sql: &str) -> Result<Vec<Entity>> {
        let statements = crate::parser::parse(sql)?;
        let mut out = Vec::new();
        for s in &statements {
            out.push(self.execute_statement(s).await?);
        }
        Ok(out)
    }

    pub async fn execute_statement(&self, s: &ParsedStatement) -> Result<Entity> {
        self.execute_statement_with(s, &Default::default()).await
    }

    /// [`Engine::execute_statement`] with a request's `streamsProperties`, which
    /// configure a persistent query it starts (ksqlDB's overwrite properties).
    pub async fn execute_statement_with(
        &self,
        s: &ParsedStatement,
        props: &std::collections::BTreeMap<String, String>,
    ) -> Result<Entity> {
        let mut inner = self.inner.lock().await;
        let origin = Origin {
            props: props.clone(),
            ..Origin::default()
        };
        self.execute_locked(&mut inner, s, origin).await
    }

    pub(crate) async fn execute_locked(
        &self,
        inner: &mut Inner,
        s: &ParsedStatement,
        origin: Origin,
    ) -> Result<Entity> {
        let text = &s.text;
        match &s.statement {
            Statement::CreateSource { .. } => self.create_source(inner, s, &origin).await,
            Statement::CreateAsSelect { .. } | Statement::InsertSelect { .. } => {
                self.create_query(inner, s, &origin).await
            }
            Statement::InsertValues {
                target,
                columns,
                values,
            } => {
                self.insert_values(inner, target, columns, values).await?;
                Ok(status(text, "Inserted", None))
            }
            Statement::Drop { .. } => self.drop_source(inner, s, &origin).await,
            Statement::Alter { .. } => self.alter_source(inner, s, &origin).await,
            Statement::Terminate { query_id } => {
                let ids: Vec<String> = match query_id {
                    Some(id) => {
                        if !inner.catalog.queries.contains_key(id) {
                            return Err(Error::semantic(format!(
                                "Unknown queryId: {id}"
                            )));
                        }
                        vec![id.clone()]
                    }
                    None => inner.catalog.queries.keys().cloned().collect(),
                };
                for id in &ids {
                    self.terminate(inner, id).await?;
                }
                if !origin.replay {
                    self.record(inner, s, None, &Default::default()).await?;
                }
                Ok(status(text, "Query terminated.", None))
            }
            Statement::Show(what) => self.show(inner, text, *what).await,
            Statement::ShowFunctions => Ok(show::functions(text)),
            Statement::Describe { name, extended } => self.describe(inner, text, name, *extended).await,
            Statement::Explain(inner_stmt) => self.explain(inner, text, inner_stmt).await,
            Statement::ExplainQueryId(id) => {
                let q = inner
                    .catalog
                    .queries
                    .get(id)
                    .ok_or_else(|| Error::semantic(format!("Query with id:{id} does not exist, use SHOW QUERIES to view the full set of running queries.")))?;
                let (state, error) = inner.query_state(id);
                let errors: Vec<QueryError> = error
                    .map(|e| QueryError {
                        timestamp: now_ms(),
                        error_message: e,
                        kind: "UNKNOWN".into(),
                    })
                    .into_iter()
                    .collect();
                Ok(Entity::QueryDescription {
                    statement_text: text.clone(),
                    query_description: QueryDescription {
                        id: Some(q.id.clone()),
                        statement_text: q.sql.clone(),
                        sources: Some(q.sources.clone()),
                        sinks: Some(vec![q.sink.clone()]),
                        query_type: Some("PERSISTENT".into()),
                        state: Some(state.to_string()),
                        query_errors: Some(errors),
                        ..QueryDescription::default()
                    },
                    warnings: Vec::new(),
                })
            }
            Statement::Set { name, value } => {
                inner.props.insert(name.clone(), value.clone());
                Ok(status(text, &format!("Successfully changed local property '{name}' to '{value}'."), None))
            }
            Statement::Unset { name } => {
                inner.props.remove(name);
                Ok(status(text, &format!("Successfully unset local property '{name}'."), None))
            }
            // As ksqlDB's server: RUN SCRIPT is the CLI's, which sends the file's
            // statements; a server reading files named by clients would be a hole.
            Statement::RunScript { .. } => Err(Error::Syntax {
                line: 1,
                column: 1,
                message: "RUN SCRIPT is a command of the ksql shell: send the script's statements instead".into(),
            }),
            Statement::AssertTopic {
                topic,
                exists,
                props,
                timeout_ms,
            } => self.assert_topic(text, topic, *exists, props, *timeout_ms).await,
            Statement::AssertSchema => Err(Error::semantic(
                "ASSERT SCHEMA needs a Schema Registry, and Runnel's formats (JSON, DELIMITED, KAFKA) use none.",
            )),
            Statement::Select(_) | Statement::Print { .. } => Err(Error::semantic(
                "SELECT and PRINT statements stream their results: send them to /query-stream (the shell does).",
            )),
        }
    }

    /// Starts a transient query: a push query (EMIT CHANGES), a pull query or scan
    /// (no EMIT), or PRINT. `props` are the request's properties over the SET ones.
    pub async fn query(
        &self,
        sql: &str,
        props: &BTreeMap<String, String>,
    ) -> Result<crate::exec::transient::QueryStream> {
        use crate::exec::transient;
        let s = crate::parser::parse_one(sql)?;
        let inner = self.inner.lock().await;
        let mut all = inner.props.clone();
        all.extend(props.clone());
        match &s.statement {
            Statement::Select(q) if q.emit.is_some() => {
                let plan = self.plan_query(&inner, q).await?;
                transient::push(&self.kafka, &plan, &all)
            }
            Statement::Select(q) => {
                let catalog = inner.catalog.clone();
                let materialized = inner.materialized();
                drop(inner);
                transient::pull(&self.kafka, &catalog, q, &materialized).await
            }
            Statement::Print {
                topic,
                from_beginning,
                limit,
            } => {
                let earliest = *from_beginning
                    || all
                        .get("auto.offset.reset")
                        .is_some_and(|v| v == "earliest");
                transient::print(&self.kafka, topic, earliest, *limit)
            }
            _ => Err(Error::semantic(
                "only SELECT and PRINT statements stream rows; send other statements to /ksql",
            )),
        }
    }

    /// The catalog as it is now (a copy).
    pub async fn catalog(&self) -> Catalog {
        self.inner.lock().await.catalog.clone()
    }

    /// Properties set with SET.
    pub async fn properties(&self) -> BTreeMap<String, String> {
        self.inner.lock().await.props.clone()
    }

    pub(crate) async fn terminate(&self, inner: &mut Inner, id: &str) -> Result<()> {
        if let Some(q) = inner.catalog.queries.remove(id) {
            if let Some(src) = inner.catalog.sources.get_mut(&q.sink) {
                src.written_by.retain(|w| w != id);
            }
        }
        if let Some(mut r) = inner.running.remove(id) {
            tokio::task::spawn_blocking(move || r.streams.close())
                .await
                .map_err(|e| Error::Engine(e.to_string()))?
                .map_err(|e| Error::Engine(e.to_string()))?;
        }
        Ok(())
    }

    /// Stops every persistent query (their state stays for a restart).
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        let running: Vec<_> = inner.running.drain().collect();
        for (_, mut r) in running {
            let _ = tokio::task::spawn_blocking(move || r.streams.close()).await;
        }
    }
}

pub(crate) fn status(text: &str, message: &str, query_id: Option<&str>) -> Entity {
    Entity::status(text, message, query_id)
}

/// Milliseconds since the epoch, now (0 if the clock is before it).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
