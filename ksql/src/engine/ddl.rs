//! CREATE STREAM / TABLE over a topic, and DROP.

use super::{status, Engine, Inner, Origin};
use crate::catalog::{formats, prop, Column, Format, Source, ROWOFFSET, ROWPARTITION, ROWTIME};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::parser::ast::{HeaderRef, ParsedStatement, Props, SourceKind, Statement, WindowKind};
use crate::parser::types::SqlType;

pub(crate) fn bool_prop(props: &Props, name: &str, default: bool) -> Result<bool> {
    match prop(props, name) {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::semantic(format!(
                "{name} must be true or false, not '{v}'"
            ))),
        },
    }
}

/// `WRAP_SINGLE_VALUE`, which only a source with one value column may set.
pub(crate) fn wrap_single_value(props: &Props, value_columns: usize) -> Result<bool> {
    if prop(props, "WRAP_SINGLE_VALUE").is_some() && value_columns != 1 {
        return Err(Error::semantic(
            "'WRAP_SINGLE_VALUE' is only valid for single-field value schemas",
        ));
    }
    bool_prop(props, "WRAP_SINGLE_VALUE", true)
}

/// The rules every source's columns and formats must satisfy.
/// `WINDOW_TYPE`: the source's records have windowed keys (Kafka's windowed serdes).
fn window_type(props: &Props) -> Result<Option<WindowKind>> {
    let Some(t) = prop(props, "WINDOW_TYPE") else {
        return Ok(None);
    };
    match t.to_ascii_uppercase().as_str() {
        "SESSION" => Ok(Some(WindowKind::Session)),
        "TUMBLING" => Ok(Some(WindowKind::Tumbling)),
        "HOPPING" => Ok(Some(WindowKind::Hopping)),
        _ => Err(Error::semantic(format!(
            "Invalid value for WINDOW_TYPE: {t}. Valid values are: SESSION, HOPPING, TUMBLING"
        ))),
    }
}

/// `WINDOW_SIZE` as ksqlDB writes it, e.g. `'1 SECOND'`, in milliseconds.
fn window_size(text: &str) -> Result<i64> {
    let bad = || {
        Error::semantic(format!(
            "Invalid WINDOW_SIZE property: '{text}'. It must be a number and a time unit, e.g. '10 SECONDS'"
        ))
    };
    let mut parts = text.split_whitespace();
    let n: i64 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let unit = parts.next().ok_or_else(bad)?.to_ascii_uppercase();
    let ms = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1_000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(n * ms)
}

/// ksqlDB's rules for header columns (KLIP-57): one HEADERS column and nothing else
/// from the headers beside it, each of the type it is filled with.
fn validate_headers(source: &Source) -> Result<()> {
    let all_type = SqlType::Array(Box::new(SqlType::Struct(vec![
        ("KEY".into(), SqlType::String),
        ("VALUE".into(), SqlType::Bytes),
    ])));
    let mut seen_any = false;
    let mut seen_all = false;
    for c in source.header_columns() {
        let all = c.header == Some(HeaderRef::All);
        if seen_all || (all && seen_any) {
            return Err(Error::semantic("Schema already contains a HEADERS column."));
        }
        let expected = if all { &all_type } else { &SqlType::Bytes };
        if !c.sql_type.same_ignoring_field_case(expected) {
            let what = c
                .header
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(Error::semantic(format!(
                "Invalid type for {what} column: expected {}, got {}",
                expected.quoted(),
                c.sql_type.quoted()
            )));
        }
        seen_any = true;
        seen_all |= all;
    }
    Ok(())
}

pub(crate) fn validate(source: &Source) -> Result<()> {
    if source.windowed.is_some() && source.key_columns().next().is_none() {
        return Err(Error::semantic("Windowed sources require a key column."));
    }
    let mut seen = std::collections::HashSet::new();
    for c in &source.columns {
        if [ROWTIME, ROWPARTITION, ROWOFFSET].contains(&c.name.as_str()) {
            return Err(Error::semantic(format!(
                "'{}' is a reserved column name. You cannot use it as a name for a column.",
                c.name
            )));
        }
        if !seen.insert(c.name.clone()) {
            return Err(Error::semantic(format!(
                "Cannot add column '{}': a column of that name already exists.",
                c.name
            )));
        }
    }
    validate_headers(source)?;
    let values = source.value_columns().count();
    let keys = source.key_columns().count();
    if source.kind == SourceKind::Table && keys == 0 {
        return Err(Error::semantic(format!(
            "Tables require a PRIMARY KEY. Please define the PRIMARY KEY. ({})",
            source.name
        )));
    }
    for c in source.key_columns() {
        if c.sql_type.contains_map() {
            return Err(Error::semantic(format!(
                "Map keys, including types that contain maps, are not supported as they may \
                 lead to unexpected behavior due to inconsistent serialization. Key column name: \
                 `{}`. Column type: {}. See https://github.com/confluentinc/ksql/issues/6621 for more.",
                c.name,
                c.sql_type.quoted()
            )));
        }
    }
    for (fmt, cols) in [
        (source.key_format, source.key_columns().collect::<Vec<_>>()),
        (
            source.value_format,
            source.value_columns().collect::<Vec<_>>(),
        ),
    ] {
        if fmt == Format::Json && cols.iter().any(|c| c.sql_type.has_non_string_map_key()) {
            return Err(Error::semantic(
                "JSON only supports MAP types with STRING keys",
            ));
        }
    }
    // ksqlDB's KafkaFormat: a single field of INT, BIGINT, DOUBLE, STRING or BYTES.
    let kafka_type = |t: &SqlType| {
        matches!(
            t,
            SqlType::Integer | SqlType::Bigint | SqlType::Double | SqlType::String | SqlType::Bytes
        )
    };
    if source.key_format == Format::Kafka
        && (keys > 1 || source.key_columns().any(|c| !kafka_type(&c.sql_type)))
    {
        return Err(Error::semantic(format!(
            "Key format does not support schema.\nformat: KAFKA\nschema: {}",
            source
                .key_columns()
                .map(|c| format!("`{}` {} KEY", c.name, c.sql_type.quoted()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if source.value_format == Format::Kafka && values > 1 {
        return Err(Error::semantic(format!(
            "The 'KAFKA' format only supports a single field. Got: [{}]",
            source
                .value_columns()
                .map(|c| format!("`{}` {}", c.name, c.sql_type.quoted()))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (fmt, cols) in [
        (source.key_format, source.key_columns().collect::<Vec<_>>()),
        (
            source.value_format,
            source.value_columns().collect::<Vec<_>>(),
        ),
    ] {
        if fmt == Format::Delimited || fmt == Format::Kafka {
            if let Some(c) = cols.iter().find(|c| c.sql_type.is_nested()) {
                return Err(Error::semantic(format!(
                    "The '{}' format does not support type '{}', column: `{}`",
                    fmt.name(),
                    c.sql_type.base_name(),
                    c.name
                )));
            }
        }
        if fmt == Format::Kafka {
            if let Some(c) = cols.iter().find(|c| !kafka_type(&c.sql_type)) {
                return Err(Error::semantic(format!(
                    "The 'KAFKA' format does not support type '{}'",
                    c.sql_type.base_name()
                )));
            }
        }
    }
    if source.timestamp_format.is_some() && source.timestamp.is_none() {
        return Err(Error::semantic(
            "TIMESTAMP_FORMAT needs TIMESTAMP to name the column it reads",
        ));
    }
    if let Some(f) = &source.timestamp_format {
        crate::format::timestamp::java_to_chrono(f)?;
    }
    if let Some(ts) = &source.timestamp {
        match source.column(ts) {
            Some(c) if matches!(c.sql_type, SqlType::Bigint | SqlType::Timestamp) => {}
            Some(c) if c.sql_type == SqlType::String && source.timestamp_format.is_some() => {}
            Some(c) => {
                return Err(Error::semantic(format!(
                    "Timestamp column, `{ts}`, should be LONG(INT64), TIMESTAMP, or a String with a timestamp_format specified (got {})",
                    c.sql_type
                )))
            }
            None => {
                return Err(Error::semantic(format!(
                "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
            )))
            }
        }
    }
    Ok(())
}

/// ksqlDB refuses a name already taken unless OR REPLACE / IF NOT EXISTS say otherwise.
/// `Ok(true)`: the statement should do nothing (IF NOT EXISTS).
pub(crate) fn check_name(
    inner: &Inner,
    kind: SourceKind,
    name: &str,
    or_replace: bool,
    if_not_exists: bool,
) -> Result<bool> {
    match inner.catalog.sources.get(name) {
        None => Ok(false),
        Some(_) if if_not_exists => Ok(true),
        Some(existing) if or_replace && existing.read_only => Err(Error::semantic(format!(
            "Cannot add {} '{name}': CREATE OR REPLACE is not supported on source {}s.",
            kind.to_string().to_lowercase(),
            existing.kind.to_string().to_lowercase()
        ))),
        Some(existing) if or_replace && existing.kind == kind => Ok(false),
        Some(existing) => Err(Error::semantic(format!(
            "Cannot add {} '{name}': A {} with the same name already exists",
            kind.to_string().to_lowercase(),
            existing.kind.to_string().to_lowercase()
        ))),
    }
}

impl Engine {
    pub(crate) async fn create_source(
        &self,
        inner: &mut Inner,
        s: &ParsedStatement,
        origin: &Origin,
    ) -> Result<Entity> {
        let Statement::CreateSource {
            kind,
            or_replace,
            read_only,
            if_not_exists,
            name,
            columns,
            props,
        } = &s.statement
        else {
            return Err(Error::Engine("not a CREATE".into()));
        };
        if *read_only && *or_replace {
            return Err(Error::semantic(format!(
                "Cannot add {} '{name}': CREATE OR REPLACE is not supported on source {}s.",
                kind.to_string().to_lowercase(),
                kind.to_string().to_lowercase()
            )));
        }
        if check_name(inner, *kind, name, *or_replace, *if_not_exists)? {
            return Ok(status(
                &s.text,
                &format!("Cannot add {kind} {name}: it already exists."),
                None,
            ));
        }
        let topic = prop(props, "KAFKA_TOPIC").ok_or_else(|| {
            Error::semantic("Missing required property \"KAFKA_TOPIC\" which has no default value.")
        })?;
        let (key_format, value_format) = formats(props, None)?;
        if columns.is_empty() {
            return Err(Error::semantic(format!(
                "The statement does not define any columns for {name}."
            )));
        }
        let source = Source {
            name: name.clone(),
            kind: *kind,
            topic: topic.clone(),
            key_format,
            value_format,
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    sql_type: c.sql_type.clone(),
                    key: c.key,
                    header: c.header.clone(),
                })
                .collect(),
            timestamp: prop(props, "TIMESTAMP").map(|t| t.to_ascii_uppercase()),
            timestamp_format: prop(props, "TIMESTAMP_FORMAT"),
            wrap_single_value: wrap_single_value(
                props,
                columns
                    .iter()
                    .filter(|c| !c.key && c.header.is_none())
                    .count(),
            )?,
            windowed: window_type(props)?,
            window_size_ms: prop(props, "WINDOW_SIZE")
                .map(|w| window_size(&w))
                .transpose()?,
            written_by: Vec::new(),
            read_only: *read_only,
        };
        if matches!(
            source.windowed,
            Some(WindowKind::Tumbling | WindowKind::Hopping)
        ) && source.window_size_ms.is_none()
        {
            return Err(Error::semantic(
                "Tumbling and Hopping window types should set WINDOW_SIZE in the WITH clause.",
            ));
        }
        validate(&source)?;
        let partitions = prop(props, "PARTITIONS")
            .map(|p| {
                p.parse::<i32>()
                    .map_err(|_| Error::semantic(format!("PARTITIONS must be a number, not {p}")))
            })
            .transpose()?;
        match (self.kafka.partitions(&topic).await?, partitions) {
            (Some(_), _) => {}
            (None, Some(n)) => self.kafka.create_topic(&topic, n, &[]).await?,
            (None, None) if origin.replay => {}
            (None, None) => {
                return Err(Error::semantic(format!(
                    "Topic '{topic}' does not exist. If you want to create a new topic for the {} please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS').",
                    kind.to_string().to_lowercase()
                )))
            }
        }
        inner.catalog.sources.insert(name.clone(), source);
        if !origin.replay {
            self.record(inner, s, None, &Default::default()).await?;
        }
        let what = if *kind == SourceKind::Stream {
            "Stream"
        } else {
            "Table"
        };
        Ok(status(&s.text, &format!("{what} created"), None))
    }

    pub(crate) async fn drop_source(
        &self,
        inner: &mut Inner,
        s: &ParsedStatement,
        origin: &Origin,
    ) -> Result<Entity> {
        let Statement::Drop {
            kind,
            if_exists,
            name,
            delete_topic,
        } = &s.statement
        else {
            return Err(Error::Engine("not a DROP".into()));
        };
        let Some(source) = inner.catalog.sources.get(name).cloned() else {
            if *if_exists {
                return Ok(status(
                    &s.text,
                    &format!("Source `{name}` does not exist."),
                    None,
                ));
            }
            let word = match kind {
                SourceKind::Stream => "Stream",
                SourceKind::Table => "Table",
            };
            return Err(Error::semantic(format!("{word} {name} does not exist.")));
        };
        if source.read_only && *delete_topic {
            return Err(Error::semantic(format!(
                "Cannot delete topic for read-only source: {name}"
            )));
        }
        if source.kind != *kind {
            return Err(Error::semantic(format!(
                "Incompatible data source type is {}, but statement was DROP {kind}",
                source.kind
            )));
        }
        let users: Vec<String> = inner
            .catalog
            .queries
            .values()
            .filter(|q| q.sink == *name || q.sources.contains(name))
            .map(|q| q.id.clone())
            .collect();
        if !users.is_empty() {
            return Err(Error::semantic(format!(
                "Cannot drop {name}.\nThe following queries read from or write into this source: [{}].\nYou need to terminate them before dropping {name}.",
                users.join(", ")
            )));
        }
        inner.catalog.sources.remove(name);
        if *delete_topic && !origin.replay {
            self.kafka.delete_topic(&source.topic).await?;
        }
        if !origin.replay {
            self.record(inner, s, None, &Default::default()).await?;
        }
        Ok(status(
            &s.text,
            &format!("Source `{name}` (topic: {}) was dropped.", source.topic),
            None,
        ))
    }
}
