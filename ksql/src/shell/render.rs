//! How the shell prints results: ksqlDB's entities as aligned tables, query rows in
//! ksqlDB CLI's boxed style.

use serde_json::Value;

use crate::entity::{Entity, QueryDescription, SourceDescription, SourceInfo};

/// An aligned table with a header rule.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect::<Vec<_>>()
            .join("|")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    out.push_str(
        &"-".repeat(
            widths
                .iter()
                .map(|w| w + 3)
                .sum::<usize>()
                .saturating_sub(1),
        ),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn rows<T>(items: &[T], cells: impl Fn(&T) -> Vec<String>) -> Vec<Vec<String>> {
    items.iter().map(cells).collect()
}

fn sources(kind: &str, list: &[SourceInfo]) -> String {
    table(
        &[
            &format!("{kind} Name"),
            "Kafka Topic",
            "Key Format",
            "Value Format",
            "Windowed",
        ],
        &rows(list, |s| {
            vec![
                s.name.clone(),
                s.topic.clone(),
                s.key_format.clone(),
                s.value_format.clone(),
                s.is_windowed.to_string(),
            ]
        }),
    )
}

fn source_description(d: &SourceDescription) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: &str| out.push_str(&format!("{label:<21}: {value}\n"));
    line("Name", &d.name);
    line("Type", &d.kind);
    line("Kafka topic", &d.topic);
    line("Key format", &d.key_format);
    line("Value format", &d.value_format);
    if d.extended {
        let partitions = d.partitions.map_or("null".into(), |p| p.to_string());
        line("Partitions", &partitions);
        line("Written by", &format!("{:?}", d.write_queries));
        line("Read by", &format!("{:?}", d.read_queries));
    }
    out.push('\n');
    let fields = rows(&d.fields, |f| {
        let kind = match f.kind.as_deref() {
            Some("KEY") => " (key)",
            Some("PRIMARY_KEY") => " (primary key)",
            Some("SYSTEM") => " (system)",
            _ => "",
        };
        vec![f.name.clone(), format!("{}{kind}", f.schema.sql_type)]
    });
    out.push_str(&table(&["Field", "Type"], &fields));
    out
}

fn query_description(d: &QueryDescription) -> String {
    let mut out = String::new();
    if let Some(id) = &d.id {
        out.push_str(&format!("ID                   : {id}\n"));
    }
    out.push_str(&format!(
        "SQL                  : {}\n",
        d.sql.as_deref().unwrap_or(&d.statement_text)
    ));
    if let Some(t) = &d.result_type {
        out.push_str(&format!("Result               : {t}\n"));
    }
    if let Some(p) = &d.execution_plan {
        out.push_str("\nExecution plan\n--------------\n");
        out.push_str(p);
        out.push('\n');
    }
    out
}

/// One `/ksql` entity as the shell shows it; one the shell does not know (a newer
/// ksqlDB server's) is shown as JSON.
pub fn entity(e: &Value) -> String {
    let Ok(typed) = serde_json::from_value::<Entity>(e.clone()) else {
        return serde_json::to_string_pretty(e).unwrap_or_default();
    };
    match &typed {
        Entity::CurrentStatus { command_status, .. } => {
            table(&["Message"], &[vec![command_status.message.clone()]])
        }
        Entity::Streams { streams, .. } => sources("Stream", streams),
        Entity::Tables { tables, .. } => sources("Table", tables),
        Entity::KafkaTopics { topics, .. } => table(
            &["Kafka Topic", "Partitions"],
            &rows(topics, |t| {
                vec![t.name.clone(), t.replica_info.len().to_string()]
            }),
        ),
        Entity::Queries { queries, .. } => table(
            &[
                "Query ID",
                "Query Type",
                "Status",
                "Sink Name",
                "Query String",
            ],
            &rows(queries, |q| {
                vec![
                    q.id.clone(),
                    q.query_type.clone(),
                    q.state.clone(),
                    q.sinks.first().cloned().unwrap_or_default(),
                    q.query_string.clone(),
                ]
            }),
        ),
        Entity::Properties { properties, .. } => table(
            &["Property", "Scope", "Value"],
            &rows(properties, |p| {
                vec![p.name.clone(), p.scope.clone(), p.value.clone()]
            }),
        ),
        Entity::FunctionNames { functions, .. } => table(
            &["Function Name", "Type"],
            &rows(functions, |f| vec![f.name.clone(), f.kind.clone()]),
        ),
        Entity::SourceDescription {
            source_description: d,
            ..
        } => source_description(d),
        Entity::QueryDescription {
            query_description: d,
            ..
        } => query_description(d),
        Entity::AssertTopic {
            topic_name, exists, ..
        } => {
            let what = if *exists { "exists" } else { "does not exist" };
            table(&["Message"], &[vec![format!("Topic {topic_name} {what}")]])
        }
    }
}

/// The boxed header of a query's rows.
pub fn row_header(columns: &[String]) -> (String, Vec<usize>) {
    let widths: Vec<usize> = columns.iter().map(|c| c.chars().count().max(12)).collect();
    let rule = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("+")
    );
    let names = format!(
        "|{}|",
        columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("|")
    );
    (format!("{rule}\n{names}\n{rule}"), widths)
}

pub fn row(values: &[Value], widths: &[usize]) -> String {
    format!(
        "|{}|",
        values
            .iter()
            .zip(widths)
            .map(|(v, w)| format!("{:<w$}", text(v)))
            .collect::<Vec<_>>()
            .join("|")
    )
}
