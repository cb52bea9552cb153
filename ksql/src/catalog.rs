//! The catalog: the streams and tables declared over topics, and the persistent
//! queries that write them. The engine keeps it in memory and records every statement
//! that changed it in the command topic, so a restarted server rebuilds it by replay.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::parser::ast::{HeaderRef, Props, SourceKind, WindowKind};
use crate::parser::types::SqlType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Json,
    Delimited,
    Kafka,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s.to_ascii_uppercase().as_str() {
            "JSON" => Ok(Format::Json),
            "DELIMITED" => Ok(Format::Delimited),
            "KAFKA" => Ok(Format::Kafka),
            other => Err(Error::semantic(format!(
                "Unknown format: {other} (supported: JSON, DELIMITED, KAFKA)"
            ))),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Delimited => "DELIMITED",
            Format::Kafka => "KAFKA",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    pub name: String,
    pub sql_type: SqlType,
    pub key: bool,
    /// Filled from the record's headers instead of its key or value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderRef>,
}

impl Column {
    /// A key (`key`) or value column.
    pub fn new(name: impl Into<String>, sql_type: SqlType, key: bool) -> Column {
        Column {
            name: name.into(),
            sql_type,
            key,
            header: None,
        }
    }
}

/// A stream or table over a topic.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub topic: String,
    pub key_format: Format,
    pub value_format: Format,
    /// Key columns first, then value columns, each in declared order.
    pub columns: Vec<Column>,
    /// The value column that holds event time (`TIMESTAMP=`), if any.
    pub timestamp: Option<String>,
    /// `TIMESTAMP_FORMAT`: the Java pattern of a STRING timestamp column.
    #[serde(default)]
    pub timestamp_format: Option<String>,
    pub wrap_single_value: bool,
    /// Set for the output of a windowed aggregation: the key carries the window.
    pub windowed: Option<WindowKind>,
    /// The window size of a windowed source's time windows (ms).
    #[serde(default)]
    pub window_size_ms: Option<i64>,
    /// The persistent queries writing to it.
    pub written_by: Vec<String>,
    /// Declared with CREATE SOURCE STREAM/TABLE: nothing may write to it.
    #[serde(default)]
    pub read_only: bool,
}

/// The pseudo columns every source row carries.
pub const ROWTIME: &str = "ROWTIME";
pub const ROWPARTITION: &str = "ROWPARTITION";
pub const ROWOFFSET: &str = "ROWOFFSET";
pub const WINDOWSTART: &str = "WINDOWSTART";
pub const WINDOWEND: &str = "WINDOWEND";

impl Source {
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }
    /// The columns the value format holds (not the key's, not the headers').
    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.key && c.header.is_none())
    }
    pub fn header_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.header.is_some())
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The Arrow schema queries see: the columns, then ROWTIME, ROWPARTITION,
    /// ROWOFFSET, and WINDOWSTART/WINDOWEND on windowed sources.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.sql_type.to_arrow(), true))
            .collect();
        fields.extend(pseudo_fields(self.windowed.is_some()));
        Arc::new(Schema::new(fields))
    }

    /// ksqlDB's column listing, as DESCRIBE prints it.
    pub fn describe_columns(&self) -> Vec<(String, String)> {
        let mut out = vec![(ROWTIME.to_string(), "BIGINT (system)".to_string())];
        for c in &self.columns {
            let kind = match (c.key, self.kind, &c.header) {
                (true, SourceKind::Stream, _) => " (key)".to_string(),
                (true, SourceKind::Table, _) => " (primary key)".to_string(),
                (false, _, Some(h)) => format!(" ({})", h.to_string().to_lowercase()),
                _ => String::new(),
            };
            out.push((c.name.clone(), format!("{}{kind}", c.sql_type)));
        }
        out
    }
}

/// ROWTIME, ROWPARTITION, ROWOFFSET (and the window bounds when `windowed`).
pub fn pseudo_fields(windowed: bool) -> Vec<Field> {
    let mut f = vec![
        Field::new(ROWTIME, DataType::Int64, true),
        Field::new(ROWPARTITION, DataType::Int32, true),
        Field::new(ROWOFFSET, DataType::Int64, true),
    ];
    if windowed {
        f.push(Field::new(WINDOWSTART, DataType::Int64, true));
        f.push(Field::new(WINDOWEND, DataType::Int64, true));
    }
    f
}

/// A persistent query: CREATE ... AS SELECT or INSERT INTO ... SELECT.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QueryInfo {
    pub id: String,
    pub sql: String,
    pub sink: String,
    pub sources: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub sources: BTreeMap<String, Source>,
    pub queries: BTreeMap<String, QueryInfo>,
    next_query: u64,
}

impl Catalog {
    pub fn source(&self, name: &str) -> Result<&Source> {
        self.sources
            .get(name)
            .ok_or_else(|| Error::semantic(format!("{name} does not exist.")))
    }

    /// Keeps ids unique after a replay: the counter passes every id seen.
    pub fn note_query_id(&mut self, id: &str) {
        if let Some(n) = id.rsplit('_').next().and_then(|n| n.parse::<u64>().ok()) {
            self.next_query = self.next_query.max(n + 1);
        }
    }

    pub fn next_query_id(&mut self, prefix: &str, sink: &str) -> String {
        let id = format!("{prefix}_{sink}_{}", self.next_query);
        self.next_query += 1;
        id
    }
}

/// Reads a `WITH` property as text.
pub fn prop(props: &Props, name: &str) -> Option<String> {
    props.get(name).map(|v| v.as_text())
}

/// The key and value formats a CREATE names, with ksqlDB's defaults.
pub fn formats(props: &Props, inherit: Option<&Source>) -> Result<(Format, Format)> {
    if prop(props, "FORMAT").is_some() {
        for single in ["KEY_FORMAT", "VALUE_FORMAT"] {
            if prop(props, single).is_some() {
                let short = single.trim_end_matches("_FORMAT");
                return Err(Error::semantic(format!(
                    "Cannot supply both '{single}' and 'FORMAT' properties, as 'FORMAT' sets both key and value formats. Either use just 'FORMAT', or use 'KEY_FORMAT' and 'VALUE_FORMAT'. ({short})"
                )));
            }
        }
    }
    let both = prop(props, "FORMAT")
        .map(|f| Format::parse(&f))
        .transpose()?;
    let key = match prop(props, "KEY_FORMAT") {
        Some(f) => Format::parse(&f)?,
        None => both
            .or(inherit.map(|s| s.key_format))
            .unwrap_or(Format::Kafka),
    };
    let value = match prop(props, "VALUE_FORMAT") {
        Some(f) => Format::parse(&f)?,
        None => match both.or(inherit.map(|s| s.value_format)) {
            Some(f) => f,
            None => {
                return Err(Error::semantic(
                    "Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config.",
                ))
            }
        },
    };
    Ok((key, value))
}
