//! SHOW / LIST, DESCRIBE and EXPLAIN.

use serde_json::{json, Value};

use super::{Engine, Inner};
use crate::catalog::Source;
use crate::error::{Error, Result};
use crate::parser::ast::{ShowWhat, SourceKind, Statement};

fn source_json(s: &Source) -> Value {
    json!({
        "type": s.kind.to_string(),
        "name": s.name,
        "topic": s.topic,
        "keyFormat": s.key_format.name(),
        "valueFormat": s.value_format.name(),
        "isWindowed": s.windowed.is_some(),
    })
}

pub(crate) fn functions(text: &str) -> Value {
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
    json!({
        "@type": "function_names",
        "statementText": text,
        "functions": names.iter().map(|(n, t)| json!({"name": n, "type": t, "category": ""})).collect::<Vec<_>>(),
        "warnings": [],
    })
}

impl Engine {
    pub(crate) async fn show(&self, inner: &Inner, text: &str, what: ShowWhat) -> Result<Value> {
        let c = &inner.catalog;
        Ok(match what {
            ShowWhat::Streams | ShowWhat::Tables => {
                let kind = if what == ShowWhat::Streams {
                    SourceKind::Stream
                } else {
                    SourceKind::Table
                };
                let list: Vec<Value> = c
                    .sources
                    .values()
                    .filter(|s| s.kind == kind)
                    .map(source_json)
                    .collect();
                let field = if kind == SourceKind::Stream {
                    "streams"
                } else {
                    "tables"
                };
                json!({"@type": field, "statementText": text, field: list, "warnings": []})
            }
            ShowWhat::Topics => {
                let topics = self.kafka.topics().await?;
                json!({
                    "@type": "kafka_topics",
                    "statementText": text,
                    "topics": topics.iter().map(|(n, p)| json!({"name": n, "replicaInfo": vec![1; *p as usize]})).collect::<Vec<_>>(),
                    "warnings": [],
                })
            }
            ShowWhat::Queries => json!({
                "@type": "queries",
                "statementText": text,
                "queries": c.queries.values().map(|q| json!({
                    "queryString": q.sql,
                    "sinks": [q.sink],
                    "sinkKafkaTopics": [c.sources.get(&q.sink).map(|s| s.topic.clone()).unwrap_or_default()],
                    "id": q.id,
                    "queryType": "PERSISTENT",
                    "state": inner.query_state(&q.id).0,
                    "statusCount": {inner.query_state(&q.id).0: 1},
                })).collect::<Vec<_>>(),
                "warnings": [],
            }),
            ShowWhat::Properties => {
                let mut props = vec![
                    json!({"name": "bootstrap.servers", "scope": "KSQL", "value": self.config.bootstrap_servers}),
                    json!({"name": "ksql.service.id", "scope": "KSQL", "value": self.config.service_id}),
                    json!({"name": "ksql.streams.state.dir", "scope": "KSQL", "value": self.config.state_dir.display().to_string()}),
                    json!({"name": "auto.offset.reset", "scope": "KSQL", "value": inner.props.get("auto.offset.reset").cloned().unwrap_or_else(|| "latest".into())}),
                ];
                for (k, v) in &inner.props {
                    if k != "auto.offset.reset" {
                        props.push(json!({"name": k, "scope": "SESSION", "value": v}));
                    }
                }
                json!({"@type": "properties", "statementText": text, "properties": props, "warnings": []})
            }
        })
    }

    pub(crate) async fn describe(
        &self,
        inner: &Inner,
        text: &str,
        name: &str,
        extended: bool,
    ) -> Result<Value> {
        let s = inner.catalog.source(name)?;
        let mut fields =
            vec![json!({"name": "ROWTIME", "schema": {"type": "BIGINT"}, "type": "SYSTEM"})];
        for c in &s.columns {
            let mut f = json!({"name": c.name, "schema": {"type": c.sql_type.to_string()}});
            if c.key {
                f["type"] = json!(if s.kind == SourceKind::Table {
                    "PRIMARY_KEY"
                } else {
                    "KEY"
                });
            }
            fields.push(f);
        }
        let reads: Vec<&String> = inner
            .catalog
            .queries
            .values()
            .filter(|q| q.sources.iter().any(|x| x == name))
            .map(|q| &q.id)
            .collect();
        let mut d = json!({
            "name": s.name,
            "type": s.kind.to_string(),
            "fields": fields,
            "topic": s.topic,
            "keyFormat": s.key_format.name(),
            "valueFormat": s.value_format.name(),
            "timestamp": s.timestamp.clone().unwrap_or_default(),
            "windowType": s.windowed.map(|w| format!("{w:?}").to_uppercase()).unwrap_or_default(),
            "readQueries": reads,
            "writeQueries": s.written_by,
            "extended": extended,
        });
        if extended {
            d["partitions"] = json!(self.kafka.partitions(&s.topic).await?.unwrap_or(0));
            d["replication"] = json!(self.config.replication);
        }
        Ok(
            json!({"@type": "sourceDescription", "statementText": text, "sourceDescription": d, "warnings": []}),
        )
    }

    pub(crate) async fn explain(
        &self,
        inner: &Inner,
        text: &str,
        statement: &Statement,
    ) -> Result<Value> {
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
        Ok(json!({
            "@type": "queryDescription",
            "statementText": text,
            "queryDescription": {
                "statementText": text,
                "sql": plan.sql,
                "fields": plan.columns.iter().map(|c| json!({"name": c.name, "schema": {"type": c.sql_type.to_string()}, "key": c.key})).collect::<Vec<_>>(),
                "resultType": plan.kind.to_string(),
                "executionPlan": steps.join("\n"),
            },
            "warnings": [],
        }))
    }
}
