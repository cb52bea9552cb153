//! Persistent queries (CREATE ... AS SELECT, INSERT INTO ... SELECT) and
//! INSERT INTO ... VALUES.

use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast::Expr as SqlExpr;

use super::ddl::{check_name, validate};
use super::{status, Engine, Inner, Origin, Running};
use crate::catalog::{formats, prop, QueryInfo, Source, ROWTIME};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::exec::compiled::Compiled;
use crate::exec::persistent;
use crate::format::{self, null_of};
use crate::parser::ast::{KsqlQuery, ParsedStatement, SourceKind, Statement};
use crate::planner::{self, QueryPlan};

fn kind_word(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Stream => "STREAM",
        SourceKind::Table => "TABLE",
    }
}

impl Engine {
    pub(crate) async fn plan_query(&self, inner: &Inner, q: &KsqlQuery) -> Result<QueryPlan> {
        planner::plan(q, &inner.catalog).await
    }

    pub(crate) async fn create_query(
        &self,
        inner: &mut Inner,
        s: &ParsedStatement,
        origin: &Origin,
    ) -> Result<Entity> {
        let (kind, name, props, query, insert) = match &s.statement {
            Statement::CreateAsSelect {
                kind,
                or_replace,
                if_not_exists,
                name,
                props,
                query,
            } => {
                if check_name(inner, *kind, name, *or_replace, *if_not_exists)? {
                    return Ok(status(
                        &s.text,
                        &format!("Cannot add {kind} {name}: it already exists."),
                        None,
                    ));
                }
                (*kind, name.clone(), props.clone(), query, false)
            }
            Statement::InsertSelect { target, query } => {
                let t = inner.catalog.source(target)?;
                if t.read_only {
                    return Err(Error::semantic(format!(
                        "Cannot insert into read-only {}: {target}",
                        t.kind.to_string().to_lowercase()
                    )));
                }
                if t.kind == SourceKind::Table {
                    return Err(Error::semantic(format!(
                        "INSERT INTO can only be used to insert into a stream. {target} is a table."
                    )));
                }
                // A query's rows have no headers to fill those columns with.
                if t.header_columns().next().is_some() {
                    return Err(Error::semantic(format!(
                        "Cannot insert into {target} because it has header columns"
                    )));
                }
                (t.kind, target.clone(), Default::default(), query, true)
            }
            _ => return Err(Error::Engine("not a persistent query".into())),
        };
        reserved_in_projection(query)?;
        let plan = self.plan_query(inner, query).await?;
        if plan.join.is_none()
            && plan.source.kind == SourceKind::Table
            && plan.source.windowed.is_some()
        {
            return Err(Error::semantic(
                "KSQL does not support persistent queries on windowed tables.",
            ));
        }
        if plan.kind != kind {
            return Err(Error::semantic(format!(
                "Invalid result type. Your SELECT query produces a {}. Please use CREATE {} AS SELECT statement instead.",
                kind_word(plan.kind),
                kind_word(plan.kind)
            )));
        }
        if let Some(ts) = prop(&props, "TIMESTAMP").map(|t| t.to_ascii_uppercase()) {
            if !plan.columns.iter().any(|c| c.name == ts) {
                return Err(Error::semantic(format!(
                    "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
                )));
            }
        }
        if let (false, Some(j)) = (
            plan.missing_key.is_empty(),
            plan.join.as_ref().filter(|j| j.foreign_key),
        ) {
            let names: Vec<String> = plan
                .missing_key
                .iter()
                .map(|k| format!("`{}`", k.rsplit('.').next().unwrap_or(k)))
                .collect();
            let s = if names.len() > 1 { "s" } else { "" };
            return Err(Error::semantic(format!(
                "Primary key column{s} missing in projection. For foreign-key table-table joins, the projection must include all primary key columns from the left input table (`{}`). Missing column{s}: {}.",
                j.left.name,
                names.join(", ")
            )));
        }
        if !plan.missing_key.is_empty() {
            let keys = &plan.missing_key;
            let listed = match keys.split_last() {
                Some((last, [])) => last.clone(),
                Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
                None => String::new(),
            };
            let plural = if keys.len() > 1 { "s" } else { "" };
            return Err(Error::semantic(format!(
                "Key missing from projection (ie, SELECT). The query used to build `{name}` must include the {}{plural} {listed} in its projection (eg, SELECT {}...).",
                plan.key_word,
                keys.join(", ")
            )));
        }
        check_aggregation(&plan)?;
        if !insert && plan.columns.iter().all(|c| c.key) {
            return Err(Error::semantic("The projection contains no value columns."));
        }
        if plan.limit.is_some() {
            return Err(Error::semantic(
                "LIMIT is not supported in persistent queries",
            ));
        }
        let sink = if insert {
            let target = inner.catalog.source(&name)?.clone();
            let result = sink_columns(&plan);
            let mut expected: Vec<_> = target.key_columns().cloned().collect();
            expected.extend(target.value_columns().cloned());
            let same = result.len() == expected.len()
                && result
                    .iter()
                    .zip(&expected)
                    .all(|(r, e)| r.name == e.name && r.sql_type == e.sql_type && r.key == e.key);
            if !same {
                return Err(Error::semantic(format!(
                    "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                    schema_text(&result),
                    schema_text(&expected)
                )));
            }
            if target.windowed != plan.window.map(|w| w.kind) {
                return Err(Error::semantic(format!(
                    "Incompatible window type: {name} and the query's result"
                )));
            }
            target
        } else {
            let input = plan.join.as_ref().map(|j| &j.left).unwrap_or(&plan.source);
            let (key_format, value_format) = formats(&props, Some(input))?;
            let sink = Source {
                name: name.clone(),
                kind,
                topic: prop(&props, "KAFKA_TOPIC").unwrap_or_else(|| name.clone()),
                key_format,
                value_format,
                columns: sink_columns(&plan),
                timestamp: prop(&props, "TIMESTAMP").map(|t| t.to_ascii_uppercase()),
                timestamp_format: prop(&props, "TIMESTAMP_FORMAT"),
                wrap_single_value: super::ddl::wrap_single_value(
                    &props,
                    plan.columns.iter().filter(|c| !c.key).count(),
                )?,
                windowed: plan.window.map(|w| w.kind),
                window_size_ms: plan.window.map(|w| w.size_ms),
                written_by: Vec::new(),
                read_only: false,
            };
            validate(&sink)?;
            sink
        };
        // CREATE OR REPLACE over a running query: the new query takes over the old
        // one's id, and so its consumer group's offsets (ksqlDB's in-place upgrade).
        let mut replaced = None;
        if !insert {
            if let Some(existing) = inner.catalog.sources.get(&name) {
                if let [only] = existing.written_by.as_slice() {
                    replaced = Some(only.clone());
                }
            }
        }
        if let Some(old) = &replaced {
            self.terminate(inner, old).await?;
        }
        let query_id = match (&origin.query_id, replaced) {
            (Some(id), _) => id.clone(),
            (None, Some(old)) => old,
            (None, None) if insert => inner
                .catalog
                .next_query_id("INSERTQUERY", "")
                .replace("INSERTQUERY__", "INSERTQUERY_"),
            (None, None) => {
                let prefix = if kind == SourceKind::Stream {
                    "CSAS"
                } else {
                    "CTAS"
                };
                inner.catalog.next_query_id(prefix, &name)
            }
        };
        inner.catalog.note_query_id(&query_id);
        let compiled = Compiled::new(&query_id, &plan, &sink)?;
        if self.kafka.partitions(&sink.topic).await?.is_none() {
            let partitions = match prop(&props, "PARTITIONS") {
                Some(p) => p.parse().map_err(|_| {
                    Error::semantic(format!("PARTITIONS must be a number, not {p}"))
                })?,
                None => {
                    let input = plan
                        .join
                        .as_ref()
                        .map(|j| &j.left.topic)
                        .unwrap_or(&plan.source.topic);
                    self.kafka.partitions(input).await?.unwrap_or(1)
                }
            };
            let compact: &[(&str, &str)] = if kind == SourceKind::Table && sink.windowed.is_none() {
                &[("cleanup.policy", "compact")]
            } else {
                &[]
            };
            self.kafka
                .create_topic(&sink.topic, partitions, compact)
                .await?;
        }
        let query_props = streams_props(&inner.props, &origin.props);
        let streams = {
            let (c, service, bootstrap, dir) = (
                compiled.clone(),
                self.config.service_id.clone(),
                self.config.bootstrap_servers.clone(),
                self.config.state_dir.clone(),
            );
            let props: Vec<(String, String)> = query_props.clone().into_iter().collect();
            tokio::task::spawn_blocking(move || {
                persistent::start(&c, &service, &bootstrap, &dir, &props)
            })
            .await
            .map_err(|e| Error::Engine(e.to_string()))??
        };
        let mut sink = sink;
        sink.written_by.push(query_id.clone());
        let sources = match &plan.join {
            Some(j) => vec![j.left.name.clone(), j.right.name.clone()],
            None => vec![plan.source.name.clone()],
        };
        inner.catalog.sources.insert(name.clone(), sink.clone());
        inner.catalog.queries.insert(
            query_id.clone(),
            QueryInfo {
                id: query_id.clone(),
                sql: s.text.clone(),
                sink: name.clone(),
                sources,
            },
        );
        inner
            .running
            .insert(query_id.clone(), Running { streams, compiled });
        if !origin.replay {
            self.record(inner, s, Some(&query_id), &query_props).await?;
        }
        Ok(status(
            &s.text,
            &format!("Created query with ID {query_id}"),
            Some(&query_id),
        ))
    }

    pub(crate) async fn insert_values(
        &self,
        inner: &mut Inner,
        target: &str,
        columns: &[String],
        values: &[SqlExpr],
    ) -> Result<()> {
        let source = inner.catalog.source(target).map_err(|_| {
            Error::semantic(format!(
                "Cannot insert values into an unknown stream/table: `{target}`"
            ))
        })?;
        if source.read_only {
            return Err(Error::semantic(format!(
                "Cannot insert values into read-only {}: {target}",
                source.kind.to_string().to_lowercase()
            )));
        }
        let source = source.clone();
        let names: Vec<String> = if columns.is_empty() {
            source.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.to_vec()
        };
        let headers: Vec<&str> = names
            .iter()
            .filter(|n| source.column(n).is_some_and(|c| c.header.is_some()))
            .map(String::as_str)
            .collect();
        if !headers.is_empty() {
            return Err(Error::semantic(format!(
                "Cannot insert into HEADER columns: {}",
                headers.join(", ")
            )));
        }
        if names.len() != values.len() {
            return Err(Error::semantic(format!(
                "Expected a value for each column. Expected Columns: {names:?}. Got {} values",
                values.len()
            )));
        }
        for n in &names {
            if n != ROWTIME && source.column(n).is_none() {
                return Err(Error::semantic(format!("Column name {n} does not exist.")));
            }
        }
        let ctx = planner::session(1)?;
        // Each value aliased by position: equal values ('a', 1, 'a') would otherwise be
        // two projections of the same name, which DataFusion refuses.
        let select = format!(
            "SELECT {}",
            values
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{v} AS v{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let batches = ctx.sql(&select).await?.collect().await?;
        let batch = batches
            .first()
            .ok_or_else(|| Error::Engine("VALUES produced no row".into()))?;
        let mut timestamp = None;
        let mut row = std::collections::HashMap::new();
        for (i, n) in names.iter().enumerate() {
            let v = ScalarValue::try_from_array(batch.column(i), 0)?;
            if n == ROWTIME {
                let t = v.cast_to(&datafusion::arrow::datatypes::DataType::Int64)?;
                if let ScalarValue::Int64(Some(t)) = t {
                    timestamp = Some(t);
                }
                continue;
            }
            let c = source
                .column(n)
                .ok_or_else(|| Error::semantic(format!("Column name {n} does not exist.")))?;
            let v = if v.is_null() {
                null_of(&c.sql_type)
            } else {
                v.cast_to(&c.sql_type.to_arrow()).map_err(|_| {
                    Error::semantic(format!(
                        "Expected type {} for field {n} but got {v:?}",
                        c.sql_type
                    ))
                })?
            };
            row.insert(n.clone(), v);
        }
        let pick = |cols: &[&crate::catalog::Column]| -> Vec<ScalarValue> {
            cols.iter()
                .map(|c| {
                    row.get(&c.name)
                        .cloned()
                        .unwrap_or_else(|| null_of(&c.sql_type))
                })
                .collect()
        };
        let keys: Vec<_> = source.key_columns().collect();
        let vals: Vec<_> = source.value_columns().collect();
        let key = format::encode_key(source.key_format, &pick(&keys), &keys, None)?;
        let value = format::encode_value(
            source.value_format,
            &pick(&vals),
            &vals,
            source.wrap_single_value,
        )?;
        self.kafka
            .produce(&source.topic, key.as_deref(), Some(&value), timestamp, &[])
            .await?;
        Ok(())
    }
}

/// The Streams settings of a new persistent query: the session's SET properties, then
/// the request's (which win), by Kafka Streams name — ksqlDB's `ksql.streams.` prefix
/// is accepted too (`ksql.streams.processing.guarantee` = `processing.guarantee`).
fn streams_props(
    session: &std::collections::BTreeMap<String, String>,
    request: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    session
        .iter()
        .chain(request)
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("ksql.streams.").unwrap_or(k);
            is_streams_prop(k).then(|| (k.to_string(), v.clone()))
        })
        .collect()
}

/// Properties that configure the Streams runtime of new queries.
fn is_streams_prop(k: &str) -> bool {
    matches!(
        k,
        "num.stream.threads"
            | "commit.interval.ms"
            | "processing.guarantee"
            | "replication.factor"
            | "cache.max.bytes.buffering"
            | "statestore.cache.max.bytes"
    )
}

/// A persistent query may not output a pseudo column under its own name (ksqlDB's
/// `Reserved column name in select`); aliased, it may.
fn reserved_in_projection(q: &crate::parser::ast::KsqlQuery) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Expr, SelectItem, SetExpr};
    let SetExpr::Select(select) = q.query.body.as_ref() else {
        return Ok(());
    };
    for item in &select.projection {
        let name = match item {
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => &i.value,
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => match parts.last() {
                Some(i) => &i.value,
                None => continue,
            },
            // Aliased as a pseudo column's name, it would clash with it as well.
            SelectItem::ExprWithAlias { alias, .. } => &alias.value,
            _ => continue,
        };
        let reserved = [
            crate::catalog::ROWTIME,
            crate::catalog::ROWPARTITION,
            crate::catalog::ROWOFFSET,
            crate::catalog::WINDOWSTART,
            crate::catalog::WINDOWEND,
        ];
        if reserved.contains(&name.as_str()) {
            return Err(Error::semantic(format!(
                "Reserved column name in select: `{name}`. Please remove or alias the column."
            )));
        }
    }
    Ok(())
}

/// ksqlDB's rules for what an aggregation may read: not a KAFKA-format value (its
/// aggregate state has no KAFKA serde), and over a table only aggregates that can
/// undo a replaced row.
fn check_aggregation(plan: &QueryPlan) -> Result<()> {
    let Some(agg) = &plan.pipeline.agg else {
        return Ok(());
    };
    if plan.join.is_none() && plan.source.value_format == crate::catalog::Format::Kafka {
        return Err(Error::semantic(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support GROUP BY.",
            plan.source.name
        )));
    }
    if plan.source.kind != SourceKind::Table || plan.join.is_some() {
        return Ok(());
    }
    let mut used: Vec<String> = Vec::new();
    for f in &agg.aggs {
        let name = f.fun().name().to_ascii_uppercase();
        if planner::functions::STREAM_ONLY_AGGREGATES.contains(&name.as_str())
            && !used.contains(&name)
        {
            used.push(name);
        }
    }
    let listed = match used.split_last() {
        None => return Ok(()),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    };
    let noun = if used.len() > 1 {
        "functions"
    } else {
        "function"
    };
    Err(Error::semantic(format!(
        "The aggregation {noun} {listed} cannot be applied to a table source, only to a stream source."
    )))
}

/// The sink's columns as ksqlDB's schema has them: the key columns first, in key
/// order (a multi-column GROUP BY key is in GROUP BY order), then the values in
/// SELECT order.
/// A schema as ksqlDB prints it: `` `NAME` TYPE [KEY] ``, comma-separated.
fn schema_text(columns: &[crate::catalog::Column]) -> String {
    columns
        .iter()
        .map(|c| {
            let key = if c.key { " KEY" } else { "" };
            format!("`{}` {}{key}", c.name, c.sql_type)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn sink_columns(plan: &QueryPlan) -> Vec<crate::catalog::Column> {
    let mut keys: Vec<_> = plan.columns.iter().filter(|c| c.key).cloned().collect();
    keys.sort_by_key(|c| {
        plan.key_order
            .iter()
            .position(|k| *k == c.name)
            .unwrap_or(usize::MAX)
    });
    keys.extend(plan.columns.iter().filter(|c| !c.key).cloned());
    keys
}
