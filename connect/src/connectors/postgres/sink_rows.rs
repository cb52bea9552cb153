//! A sink record as the row it becomes: its fields as one COPY text line, its primary
//! key (as `pk.mode` says), and — for the first record of a shape (topic and schemas)
//! — the column definitions auto.create and auto.evolve need. Records of one shape
//! share their table and column names, so a row costs two strings.

use std::sync::Arc;

use super::copy_rows;
use super::sink_config::{PkMode, SinkConfig};
use super::sink_statements::{Columns, Op};
use super::sql::{check_schema, column_type};
use crate::api::{Schema, SchemaType, SinkRecord, Value};
use crate::error::{Error, Result};

/// A column as a record's schema describes it, for CREATE and ALTER.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: String,
    pub optional: bool,
}

fn col(name: &str, s: &Schema) -> ColumnDef {
    ColumnDef {
        name: name.to_string(),
        sql_type: column_type(s),
        optional: s.optional,
    }
}

/// What a record's columns depend on: its topic and its schemas (by identity: the
/// converter hands out its cached schemas, sharing their fields).
#[derive(PartialEq)]
pub struct Shape<'a> {
    topic: &'a str,
    key: Option<(usize, SchemaType, Option<&'a str>)>,
    value: Option<(usize, SchemaType, Option<&'a str>)>,
}

fn schema_id(s: &Option<Schema>) -> Option<(usize, SchemaType, Option<&str>)> {
    s.as_ref().map(|s| {
        let fields = Arc::as_ptr(&s.fields) as usize;
        (fields, s.ty, s.name.as_deref())
    })
}

impl Shape<'_> {
    pub fn of(r: &SinkRecord) -> Shape<'_> {
        Shape {
            topic: &r.record.topic,
            key: schema_id(&r.record.key_schema),
            value: schema_id(&r.record.value_schema),
        }
    }
}

/// The columns already worked out for the current shape: for writes, for deletes.
#[derive(Default)]
pub struct Known {
    write: Option<Columns>,
    delete: Option<Columns>,
}

pub fn task_err(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("PostgresSink: {e}"))
}

fn primitive_schema(v: &Value) -> Schema {
    Schema::new(match v {
        Value::Boolean(_) => SchemaType::Boolean,
        Value::Int8(_) => SchemaType::Int8,
        Value::Int16(_) => SchemaType::Int16,
        Value::Int32(_) => SchemaType::Int32,
        Value::Int64(_) => SchemaType::Int64,
        Value::Float32(_) => SchemaType::Float32,
        Value::Float64(_) => SchemaType::Float64,
        Value::Bytes(_) => SchemaType::Bytes,
        _ => SchemaType::String,
    })
}

/// (name, schema, value) of a struct's fields, in the schema's order.
fn struct_fields<'a>(
    what: &str,
    schema: Option<&'a Schema>,
    v: &'a Value,
) -> Result<Vec<(&'a str, &'a Schema, &'a Value)>> {
    let (Some(schema), Value::Struct(values)) = (schema, v) else {
        return Err(task_err(format!(
            "the record {what} must be a struct with a schema (JsonConverter with schemas.enable=true), not {v}"
        )));
    };
    Ok(schema
        .fields
        .iter()
        .map(|f| {
            let value = values
                .iter()
                .find(|(n, _)| n == &f.name)
                .map(|(_, v)| v)
                .unwrap_or(&Value::Null);
            (f.name.as_str(), &f.schema, value)
        })
        .collect())
}

/// Appends a field to a COPY line.
fn push_field(line: &mut String, v: &Value, s: &Schema) {
    if !line.is_empty() {
        line.push('\t');
    }
    copy_rows::field(v, Some(s), line);
}

/// Builds a shape's rows; `Known` is reset when the shape changes.
pub struct RowBuilder<'c> {
    pub config: &'c SinkConfig,
    pub known: Known,
}

impl RowBuilder<'_> {
    /// The row a record becomes, with column definitions when its shape is new (empty
    /// otherwise); `None` for a tombstone when deletes are off.
    pub fn row(&mut self, r: &SinkRecord) -> Result<Option<(Op, Vec<ColumnDef>)>> {
        let c = self.config;
        let rec = &r.record;
        let delete = rec.value.is_null();
        if delete && !c.delete_enabled {
            return Ok(None);
        }
        let known = if delete {
            self.known.delete.clone()
        } else {
            self.known.write.clone()
        };
        if known.is_none() {
            for (what, schema) in [("key", &rec.key_schema), ("value", &rec.value_schema)] {
                if let Some(Err(e)) = schema.as_ref().map(check_schema) {
                    return Err(task_err(format!(
                        "the record at {}-{} offset {} has an unusable {what} schema: {e}",
                        rec.topic, r.kafka_partition, r.kafka_offset
                    )));
                }
            }
        }
        let mut key = String::new();
        let mut line = String::new();
        let mut names: Vec<&str> = Vec::new();
        let mut defs: Vec<ColumnDef> = Vec::new();
        let fresh = known.is_none();
        let key_schema;
        // The key columns first (record_key, kafka, and every delete).
        if delete || c.pk_mode == PkMode::RecordKey {
            match &rec.key {
                Value::Struct(_) => {
                    for (n, s, v) in struct_fields("key", rec.key_schema.as_ref(), &rec.key)? {
                        if c.pk_fields.is_empty() || c.pk_fields.iter().any(|p| p == n) {
                            push_field(&mut key, v, s);
                            push_field(&mut line, v, s);
                            if fresh {
                                names.push(n);
                                defs.push(col(n, s));
                            }
                        }
                    }
                }
                Value::Null => {
                    return Err(task_err(format!(
                        "pk.mode=record_key but the record at {}-{} offset {} has no key",
                        rec.topic, r.kafka_partition, r.kafka_offset
                    )))
                }
                primitive => {
                    let name = c.pk_fields.first().ok_or_else(|| {
                        Error::config("pk.fields", "pk.mode=record_key with a primitive key needs the column name in pk.fields")
                    })?;
                    key_schema = rec
                        .key_schema
                        .clone()
                        .unwrap_or_else(|| primitive_schema(primitive));
                    push_field(&mut key, primitive, &key_schema);
                    push_field(&mut line, primitive, &key_schema);
                    if fresh {
                        names.push(name);
                        defs.push(col(name, &key_schema));
                    }
                }
            }
        } else if c.pk_mode == PkMode::Kafka {
            let partition = r.kafka_partition.to_string();
            let offset = r.kafka_offset.to_string();
            let types = ["TEXT", "INT", "BIGINT"];
            for (i, name) in c.pk_fields.iter().take(3).enumerate() {
                for out in [&mut key, &mut line] {
                    if !out.is_empty() {
                        out.push('\t');
                    }
                    match i {
                        0 => copy_rows::escape(&rec.topic, out),
                        1 => out.push_str(&partition),
                        _ => out.push_str(&offset),
                    }
                }
                if fresh {
                    names.push(name);
                    defs.push(ColumnDef {
                        name: name.clone(),
                        sql_type: types[i].into(),
                        optional: false,
                    });
                }
            }
        }
        let columns = if delete {
            // A delete's columns are its key's.
            match known {
                Some(k) => k,
                None => {
                    let names: Arc<[String]> = names.iter().map(|n| n.to_string()).collect();
                    let k = Columns {
                        table: c.table_for(&rec.topic).into(),
                        pk: names.clone(),
                        names,
                    };
                    self.known.delete = Some(k.clone());
                    k
                }
            }
        } else {
            let key_columns = names.len();
            let pk_from_key = matches!(c.pk_mode, PkMode::RecordKey | PkMode::Kafka);
            let value_pk = |n: &str| c.pk_fields.is_empty() || c.pk_fields.iter().any(|p| p == n);
            let mut value_pk_names: Vec<&str> = Vec::new();
            let fields = struct_fields("value", rec.value_schema.as_ref(), &rec.value)?;
            for (n, s, v) in fields {
                let is_key_column = match &known {
                    Some(k) if pk_from_key => k.pk.iter().any(|p| p == n),
                    _ => pk_from_key && names[..key_columns].contains(&n),
                };
                if is_key_column {
                    continue;
                }
                if c.pk_mode == PkMode::RecordValue && value_pk(n) {
                    push_field(&mut key, v, s);
                    value_pk_names.push(n);
                }
                push_field(&mut line, v, s);
                if fresh {
                    names.push(n);
                    defs.push(col(n, s));
                }
            }
            if c.pk_mode == PkMode::RecordValue && value_pk_names.is_empty() && fresh {
                return Err(Error::config(
                    "pk.fields",
                    format!("none of {:?} is a field of the record value", c.pk_fields),
                ));
            }
            match known {
                Some(k) => k,
                None => {
                    let pk: Arc<[String]> = if c.pk_mode == PkMode::RecordValue {
                        value_pk_names.iter().map(|n| n.to_string()).collect()
                    } else {
                        names[..key_columns].iter().map(|n| n.to_string()).collect()
                    };
                    let k = Columns {
                        table: c.table_for(&rec.topic).into(),
                        names: names.iter().map(|n| n.to_string()).collect(),
                        pk,
                    };
                    self.known.write = Some(k.clone());
                    k
                }
            }
        };
        let op = if delete {
            Op::Delete { columns, key }
        } else {
            Op::Write { columns, key, line }
        };
        Ok(Some((op, defs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Config, ConnectRecord, Field};

    fn config(pairs: &[(&str, &str)]) -> SinkConfig {
        let mut c: Config = [("connection.url", "postgres://u@localhost/db")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        SinkConfig::parse(&c).unwrap()
    }

    fn record(id: i32, name: Option<&str>, key: &Schema, value: &Schema) -> SinkRecord {
        let mut rec = ConnectRecord::new(
            "people",
            Some(value.clone()),
            match name {
                Some(n) => Value::Struct(vec![
                    ("id".into(), Value::Int32(id)),
                    ("name".into(), Value::String(n.into())),
                ]),
                None => Value::Null,
            },
        );
        rec.key_schema = Some(key.clone());
        rec.key = Value::Struct(vec![("id".into(), Value::Int32(id))]);
        SinkRecord {
            record: rec,
            kafka_partition: 2,
            kafka_offset: 40 + i64::from(id),
        }
    }

    /// (table and names, key, line, names of the definitions) of each record's row.
    fn rows(c: &SinkConfig, records: &[SinkRecord]) -> Vec<(String, String, String, String)> {
        let mut b = RowBuilder {
            config: c,
            known: Known::default(),
        };
        records
            .iter()
            .filter_map(|r| b.row(r).unwrap())
            .map(|(op, defs)| {
                let (columns, key, line) = match &op {
                    Op::Write { columns, key, line } => (columns, key, line.as_str()),
                    Op::Delete { columns, key } => (columns, key, "(delete)"),
                };
                let defs: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                (
                    format!("{} {:?} pk {:?}", columns.table, columns.names, columns.pk),
                    key.clone(),
                    line.to_string(),
                    defs.join(","),
                )
            })
            .collect()
    }

    #[test]
    fn every_pk_mode_gives_its_key_and_columns() {
        let f = |n: &str, ty| Field {
            name: n.into(),
            schema: Schema::new(ty),
        };
        let key = Schema::structure(vec![f("id", SchemaType::Int32)]);
        let value = Schema::structure(vec![
            f("id", SchemaType::Int32),
            f("name", SchemaType::String),
        ]);
        let records = [
            record(1, Some("a\tb"), &key, &value),
            record(2, Some("c"), &key, &value),
            record(3, None, &key, &value),
        ];
        let people = |names: &str, pk: &str| format!("people {names} pk {pk}");
        let (id_name, id) = (r#"["id", "name"]"#, r#"["id"]"#);
        // record_key: the key's columns first; the value's id is not repeated. Only the
        // first row of a shape carries column definitions.
        let c = config(&[("pk.mode", "record_key"), ("delete.enabled", "true")]);
        assert_eq!(
            rows(&c, &records),
            vec![
                (
                    people(id_name, id),
                    "1".into(),
                    "1\ta\\tb".into(),
                    "id,name".into()
                ),
                (
                    people(id_name, id),
                    "2".into(),
                    "2\tc".into(),
                    String::new()
                ),
                (people(id, id), "3".into(), "(delete)".into(), "id".into()),
            ]
        );
        // record_value with pk.fields: the key comes from the value.
        let c = config(&[("pk.mode", "record_value"), ("pk.fields", "name")]);
        assert_eq!(
            rows(&c, &records[..2]),
            vec![
                (
                    people(id_name, r#"["name"]"#),
                    "a\\tb".into(),
                    "1\ta\\tb".into(),
                    "id,name".into()
                ),
                (
                    people(id_name, r#"["name"]"#),
                    "c".into(),
                    "2\tc".into(),
                    String::new()
                ),
            ]
        );
        // kafka: topic, partition and offset lead the row.
        let c = config(&[("pk.mode", "kafka")]);
        let kafka = r#"["__connect_topic", "__connect_partition", "__connect_offset"]"#;
        let all = r#"["__connect_topic", "__connect_partition", "__connect_offset", "id", "name"]"#;
        assert_eq!(
            rows(&c, &records[1..2]),
            vec![(
                people(all, kafka),
                "people\t2\t42".into(),
                "people\t2\t42\t2\tc".into(),
                "__connect_topic,__connect_partition,__connect_offset,id,name".into()
            )]
        );
        // none: no key; a tombstone is skipped when deletes are off.
        let c = config(&[]);
        assert_eq!(
            rows(&c, &records[1..]),
            vec![(
                people(id_name, "[]"),
                String::new(),
                "2\tc".into(),
                "id,name".into()
            )]
        );
    }
}
