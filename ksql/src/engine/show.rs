//! SHOW / LIST, DESCRIBE and EXPLAIN.

use super::{Engine, Inner};
use crate::catalog::Source;
use crate::entity::{
    Entity, FieldInfo, FieldSchema, FunctionName, Property, QueryDescription, RunningQuery,
    SourceDescription, SourceInfo, TopicInfo,
};
use crate::error::{Error, Result};
use crate::parser::ast::{ShowWhat, SourceKind, Statement};

fn source_info(s: &Source) -> SourceInfo {
    SourceInfo {
        kind: s.kind.to_string(),
        name: s.name.clone(),
        topic: s.topic.clone(),
        key_format: s.key_format.name().to_string(),
        value_format: s.value_format.name().to_string(),
        is_windowed: s.windowed.is_some(),
    }
}

fn field(name: &str, sql_type: String) -> FieldInfo {
    FieldInfo {
        name: name.to_string(),
        schema: FieldSchema { sql_type },
        kind: None,
        key: None,
    }
}

pub(crate) fn functions(text: &str) -> Entity {
    let names = [
        ("ABS", "SCALAR"),
        ("AVG", "AGGREGATE"),
        ("CASE", "SCALAR"),
        ("CAST", "SCALAR"),
        ("COALESCE", "SCALAR"),
        ("COLLECT_LIST", "AGGREGATE"),
        ("COLLECT_SET", "AGGREGATE"),
        ("CONCAT", "SCALAR"),
        ("COUNT", "AGGREGATE"),
        ("COUNT_DISTINCT", "AGGREGATE"),
        ("EARLIEST_BY_OFFSET", "AGGREGATE"),
        ("IFNULL", "SCALAR"),
        ("LATEST_BY_OFFSET", "AGGREGATE"),
        ("LCASE", "SCALAR"),
        ("LEN", "SCALAR"),
        ("MAX", "AGGREGATE"),
        ("MIN", "AGGREGATE"),
        ("REPLACE", "SCALAR"),
        ("ROUND", "SCALAR"),
        ("SUBSTRING", "SCALAR"),
        ("SUM", "AGGREGATE"),
        ("TOPK", "AGGREGATE"),
        ("TRIM", "SCALAR"),
        ("UCASE", "SCALAR"),
    ];
    Entity::FunctionNames {
        statement_text: text.to_string(),
        functions: names
            .iter()
            .map(|(n, t)| FunctionName {
                name: n.to_string(),
                kind: t.to_string(),
                category: String::new(),
            })
            .collect(),
        warnings: Vec::new(),
    }
}

impl Engine {
    pub(crate) async fn show(&self, inner: &Inner, text: &str, what: ShowWhat) -> Result<Entity> {
        let c = &inner.catalog;
        let statement_text = text.to_string();
        let warnings = Vec::new();
        Ok(match what {
            ShowWhat::Streams | ShowWhat::Tables => {
                let kind = if what == ShowWhat::Streams {
                    SourceKind::Stream
                } else {
                    SourceKind::Table
                };
                let list: Vec<SourceInfo> = c
                    .sources
                    .values()
                    .filter(|s| s.kind == kind)
                    .map(source_info)
                    .collect();
                if kind == SourceKind::Stream {
                    Entity::Streams {
                        statement_text,
                        streams: list,
                        warnings,
                    }
                } else {
                    Entity::Tables {
                        statement_text,
                        tables: list,
                        warnings,
                    }
                }
            }
            ShowWhat::Topics => Entity::KafkaTopics {
                statement_text,
                topics: self
                    .kafka
                    .topics()
                    .await?
                    .into_iter()
                    .map(|(name, partitions)| TopicInfo {
                        name,
                        replica_info: vec![1; partitions.max(0) as usize],
                    })
                    .collect(),
                warnings,
            },
            ShowWhat::Queries => Entity::Queries {
                statement_text,
                queries: c
                    .queries
                    .values()
                    .map(|q| {
                        let state = inner.query_state(&q.id).0.to_string();
                        RunningQuery {
                            query_string: q.sql.clone(),
                            sinks: vec![q.sink.clone()],
                            sink_kafka_topics: vec![c
                                .sources
                                .get(&q.sink)
                                .map(|s| s.topic.clone())
                                .unwrap_or_default()],
                            id: q.id.clone(),
                            query_type: "PERSISTENT".into(),
                            status_count: [(state.clone(), 1)].into_iter().collect(),
                            state,
                        }
                    })
                    .collect(),
                warnings,
            },
            ShowWhat::Properties => {
                let property = |name: &str, scope: &str, value: String| Property {
                    name: name.to_string(),
                    scope: scope.to_string(),
                    value,
                };
                let mut properties = vec![
                    property(
                        "bootstrap.servers",
                        "KSQL",
                        self.config.bootstrap_servers.clone(),
                    ),
                    property("ksql.service.id", "KSQL", self.config.service_id.clone()),
                    property(
                        "ksql.streams.state.dir",
                        "KSQL",
                        self.config.state_dir.display().to_string(),
                    ),
                    property(
                        "auto.offset.reset",
                        "KSQL",
                        inner
                            .props
                            .get("auto.offset.reset")
                            .cloned()
                            .unwrap_or_else(|| "latest".into()),
                    ),
                ];
                for (k, v) in &inner.props {
                    if k != "auto.offset.reset" {
                        properties.push(property(k, "SESSION", v.clone()));
                    }
                }
                Entity::Properties {
                    statement_text,
                    properties,
                    warnings,
                }
            }
        })
    }

    pub(crate) async fn describe(
        &self,
        inner: &Inner,
        text: &str,
        name: &str,
        extended: bool,
    ) -> Result<Entity> {
        let s = inner.catalog.source(name)?;
        let mut fields = vec![FieldInfo {
            kind: Some("SYSTEM".into()),
            ..field("ROWTIME", "BIGINT".into())
        }];
        for c in &s.columns {
            let key_kind = if s.kind == SourceKind::Table {
                "PRIMARY_KEY"
            } else {
                "KEY"
            };
            fields.push(FieldInfo {
                kind: c.key.then(|| key_kind.to_string()),
                ..field(&c.name, c.sql_type.to_string())
            });
        }
        let read_queries: Vec<String> = inner
            .catalog
            .queries
            .values()
            .filter(|q| q.sources.iter().any(|x| x == name))
            .map(|q| q.id.clone())
            .collect();
        let (partitions, replication) = if extended {
            (
                Some(self.kafka.partitions(&s.topic).await?.unwrap_or(0)),
                Some(self.config.replication),
            )
        } else {
            (None, None)
        };
        Ok(Entity::SourceDescription {
            statement_text: text.to_string(),
            source_description: SourceDescription {
                name: s.name.clone(),
                kind: s.kind.to_string(),
                fields,
                topic: s.topic.clone(),
                key_format: s.key_format.name().to_string(),
                value_format: s.value_format.name().to_string(),
                timestamp: s.timestamp.clone().unwrap_or_default(),
                window_type: s
                    .windowed
                    .map(|w| format!("{w:?}").to_uppercase())
                    .unwrap_or_default(),
                read_queries,
                write_queries: s.written_by.clone(),
                extended,
                partitions,
                replication,
            },
            warnings: Vec::new(),
        })
    }

    pub(crate) async fn explain(
        &self,
        inner: &Inner,
        text: &str,
        statement: &Statement,
    ) -> Result<Entity> {
        let q = match statement {
            Statement::Select(q)
            | Statement::CreateAsSelect { query: q, .. }
            | Statement::InsertSelect { query: q, .. } => q,
            _ => return Err(Error::semantic("EXPLAIN takes a query or a query id")),
        };
        let plan = self.plan_query(inner, q).await?;
        let p = &plan.pipeline;
        let describe = |stages: &[crate::planner::pipeline::Stage]| -> Vec<String> {
            stages
                .iter()
                .map(|s| match s {
                    crate::planner::pipeline::Stage::Filter { predicate, .. } => {
                        format!("Filter: {predicate}")
                    }
                    crate::planner::pipeline::Stage::Project { exprs, .. } => format!(
                        "Project: {}",
                        exprs
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    crate::planner::pipeline::Stage::Unnest { lists } => {
                        format!("Unnest: columns {lists:?}")
                    }
                })
                .collect()
        };
        let mut steps = vec![format!(
            "Source: {} (topic {}, {})",
            plan.source.name, plan.source.topic, plan.source.kind
        )];
        steps.extend(describe(&p.pre));
        if let Some(a) = &p.agg {
            steps.push(format!(
                "Aggregate: group by [{}], accumulators [{}]{}",
                a.groups
                    .iter()
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.aggs
                    .iter()
                    .map(|f| f.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                plan.window
                    .map(|w| format!(", window {:?} size {} ms", w.kind, w.size_ms))
                    .unwrap_or_default()
            ));
        }
        steps.extend(describe(&p.post));
        Ok(Entity::QueryDescription {
            statement_text: text.to_string(),
            query_description: QueryDescription {
                statement_text: text.to_string(),
                sql: Some(plan.sql.clone()),
                fields: Some(
                    plan.columns
                        .iter()
                        .map(|c| FieldInfo {
                            key: Some(c.key),
                            ..field(&c.name, c.sql_type.to_string())
                        })
                        .collect(),
                ),
                result_type: Some(plan.kind.to_string()),
                execution_plan: Some(steps.join("\n")),
                ..QueryDescription::default()
            },
            warnings: Vec::new(),
        })
    }
}
