//! How the shell prints results: ksqlDB's entities as aligned tables, query rows in
//! ksqlDB CLI's boxed style.

use serde_json::Value;

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

/// One `/ksql` entity as the shell shows it.
pub fn entity(e: &Value) -> String {
    let rows_of = |list: &Value, fields: &[&str]| -> Vec<Vec<String>> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|item| fields.iter().map(|f| text(&item[*f])).collect())
            .collect()
    };
    match e["@type"].as_str().unwrap_or_default() {
        "currentStatus" => table(&["Message"], &[vec![text(&e["commandStatus"]["message"])]]),
        "streams" => table(
            &[
                "Stream Name",
                "Kafka Topic",
                "Key Format",
                "Value Format",
                "Windowed",
            ],
            &rows_of(
                &e["streams"],
                &["name", "topic", "keyFormat", "valueFormat", "isWindowed"],
            ),
        ),
        "tables" => table(
            &[
                "Table Name",
                "Kafka Topic",
                "Key Format",
                "Value Format",
                "Windowed",
            ],
            &rows_of(
                &e["tables"],
                &["name", "topic", "keyFormat", "valueFormat", "isWindowed"],
            ),
        ),
        "kafka_topics" => {
            let rows = e["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        text(&t["name"]),
                        t["replicaInfo"]
                            .as_array()
                            .map(Vec::len)
                            .unwrap_or(0)
                            .to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Kafka Topic", "Partitions"], &rows)
        }
        "queries" => table(
            &[
                "Query ID",
                "Query Type",
                "Status",
                "Sink Name",
                "Query String",
            ],
            &e["queries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| {
                    vec![
                        text(&q["id"]),
                        text(&q["queryType"]),
                        text(&q["state"]),
                        text(&q["sinks"][0]),
                        text(&q["queryString"]),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        "properties" => table(
            &["Property", "Scope", "Value"],
            &rows_of(&e["properties"], &["name", "scope", "value"]),
        ),
        "function_names" => table(
            &["Function Name", "Type"],
            &rows_of(&e["functions"], &["name", "type"]),
        ),
        "sourceDescription" => {
            let d = &e["sourceDescription"];
            let mut out = format!("Name                 : {}\n", text(&d["name"]));
            out.push_str(&format!("Type                 : {}\n", text(&d["type"])));
            out.push_str(&format!("Kafka topic          : {}\n", text(&d["topic"])));
            out.push_str(&format!(
                "Key format           : {}\n",
                text(&d["keyFormat"])
            ));
            out.push_str(&format!(
                "Value format         : {}\n",
                text(&d["valueFormat"])
            ));
            if d["extended"] == true {
                out.push_str(&format!(
                    "Partitions           : {}\n",
                    text(&d["partitions"])
                ));
                out.push_str(&format!(
                    "Written by           : {}\n",
                    text(&d["writeQueries"])
                ));
                out.push_str(&format!(
                    "Read by              : {}\n",
                    text(&d["readQueries"])
                ));
            }
            out.push('\n');
            let fields = d["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let kind = match f["type"].as_str() {
                        Some("KEY") => " (key)",
                        Some("PRIMARY_KEY") => " (primary key)",
                        Some("SYSTEM") => " (system)",
                        _ => "",
                    };
                    vec![
                        text(&f["name"]),
                        format!("{}{kind}", text(&f["schema"]["type"])),
                    ]
                })
                .collect::<Vec<_>>();
            out.push_str(&table(&["Field", "Type"], &fields));
            out
        }
        "queryDescription" => {
            let d = &e["queryDescription"];
            let mut out = String::new();
            if let Some(id) = d["id"].as_str() {
                out.push_str(&format!("ID                   : {id}\n"));
            }
            out.push_str(&format!(
                "SQL                  : {}\n",
                text(d.get("sql").unwrap_or(&d["statementText"]))
            ));
            if let Some(t) = d["resultType"].as_str() {
                out.push_str(&format!("Result               : {t}\n"));
            }
            if let Some(p) = d["executionPlan"].as_str() {
                out.push_str("\nExecution plan\n--------------\n");
                out.push_str(p);
                out.push('\n');
            }
            out
        }
        "script" => e["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(entity)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => serde_json::to_string_pretty(e).unwrap_or_default(),
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
