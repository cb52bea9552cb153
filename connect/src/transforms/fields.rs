//! Transforms that reshape keys, values and headers: InsertField, ReplaceField,
//! MaskField, HoistField, ExtractField, ValueToKey, Cast, Flatten, InsertHeader,
//! DropHeaders, HeaderFrom and Filter.

use super::{side, RecordContext, Side, Transform};
use crate::api::config_def::{key, ConfigDef, Type, Validator, Values};
use crate::api::{ConnectRecord, Field, Header, Schema, SchemaType, Value};
use crate::error::{Error, Result};

/// The keys of these transforms, as Kafka defines them.
pub(super) fn definition(base: &str) -> Option<ConfigDef> {
    let optional = |name, doc| key(name, Type::String, doc);
    let required = |name, doc| {
        key(name, Type::String, doc)
            .required()
            .validator(Validator::NonEmpty)
            .high()
    };
    let names = |name, doc| key(name, Type::List, doc).required().high();
    let some = |name, doc| key(name, Type::List, doc).default("");
    let keys = match base {
        "InsertField" => vec![
            optional("topic.field", "Field name for the record's topic; a ! suffix makes it required, ? optional."),
            optional("partition.field", "Field name for the record's partition."),
            optional("offset.field", "Field name for the record's offset (sink connectors only)."),
            optional("timestamp.field", "Field name for the record's timestamp."),
            optional("static.field", "Field name for a static value."),
            optional("static.value", "The static value of static.field."),
        ],
        "ReplaceField" => vec![
            some("exclude", "Fields to drop; exclude wins over include."),
            some("include", "Fields to keep; unset: all."),
            some("renames", "Field renames as old:new pairs."),
            some("blacklist", "Deprecated: exclude."),
            some("whitelist", "Deprecated: include."),
        ],
        "MaskField" => vec![
            names("fields", "Fields to mask with their type's empty value or replacement."),
            optional("replacement", "The value masked fields get instead of their type's empty value."),
        ],
        "HoistField" => vec![required("field", "The field name of the single field struct that wraps the data.")],
        "ExtractField" => vec![required("field", "The field to extract.")],
        "ValueToKey" => vec![names("fields", "The value's fields that form the new key.")],
        "Cast" => vec![names(
            "spec",
            "The type to cast to (int8, int16, int32, int64, float32, float64, boolean, string), or field:type pairs.",
        )],
        "Flatten" => vec![key(
            "delimiter",
            Type::String,
            "The text between the names of a nested field's parents and its own.",
        )
        .default(".")],
        "InsertHeader" => vec![
            required("header", "The name of the header."),
            key("value.literal", Type::String, "The literal value of the header.")
                .required()
                .high(),
        ],
        "DropHeaders" => vec![names("headers", "The names of the headers to remove.")],
        "HeaderFrom" => vec![
            names("fields", "The fields to copy or move into headers."),
            names("headers", "The header names, one per field, in order."),
            key("operation", Type::String, "move or copy.")
                .default("copy")
                .validator(Validator::OneOf(&["move", "copy"]))
                .high(),
        ],
        "Filter" => vec![],
        _ => return None,
    };
    Some(ConfigDef::new().define(keys))
}

pub(super) fn build(base: &str, s: Side, v: &Values) -> Option<Result<Box<dyn Transform>>> {
    let text = |k: &str| v.string(k).unwrap_or_default().to_string();
    let list = |k: &str| v.list(k).to_vec();
    let t: Result<Box<dyn Transform>> = match base {
        "InsertField" => Ok(Box::new(InsertField {
            side: s,
            static_field: v.string("static.field").map(clean),
            static_value: text("static.value"),
            topic_field: v.string("topic.field").map(clean),
            partition_field: v.string("partition.field").map(clean),
            offset_field: v.string("offset.field").map(clean),
            timestamp_field: v.string("timestamp.field").map(clean),
        })),
        "ReplaceField" => {
            let renames = list("renames")
                .into_iter()
                .map(|r| {
                    r.split_once(':')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| Error::config("renames", format!("{r} is not old:new")))
                })
                .collect::<Result<Vec<_>>>();
            renames.map(|renames| -> Box<dyn Transform> {
                let mut exclude = list("exclude");
                exclude.extend(list("blacklist"));
                let mut include = list("include");
                include.extend(list("whitelist"));
                Box::new(ReplaceField {
                    side: s,
                    exclude,
                    include,
                    renames,
                })
            })
        }
        "MaskField" => Ok(Box::new(MaskField {
            side: s,
            fields: list("fields"),
            replacement: v.string("replacement").map(str::to_string),
        })),
        "HoistField" => Ok(Box::new(HoistField {
            side: s,
            field: text("field"),
        })),
        "ExtractField" => Ok(Box::new(ExtractField {
            side: s,
            field: text("field"),
        })),
        "ValueToKey" => Ok(Box::new(ValueToKey {
            fields: list("fields"),
        })),
        "Cast" => (|| {
            let mut whole = None;
            let mut fields = Vec::new();
            for part in v.list("spec") {
                match part.split_once(':') {
                    Some((f, t)) => fields.push((f.trim().to_string(), cast_type(t.trim())?)),
                    None => whole = Some(cast_type(part)?),
                }
            }
            Ok(Box::new(Cast {
                side: s,
                whole,
                fields,
            }) as Box<dyn Transform>)
        })(),
        "Flatten" => Ok(Box::new(Flatten {
            side: s,
            delimiter: text("delimiter"),
        })),
        "InsertHeader" => Ok(Box::new(InsertHeader {
            header: text("header"),
            value: text("value.literal"),
        })),
        "DropHeaders" => Ok(Box::new(DropHeaders {
            headers: list("headers"),
        })),
        "HeaderFrom" => {
            let (fields, headers) = (list("fields"), list("headers"));
            if fields.len() != headers.len() {
                Err(Error::config("headers", "needs as many headers as fields"))
            } else {
                Ok(Box::new(HeaderFrom {
                    side: s,
                    fields,
                    headers,
                    mv: v.lowercase("operation").as_deref() == Some("move"),
                }))
            }
        }
        "Filter" => Ok(Box::new(Filter)),
        _ => return None,
    };
    Some(t)
}

/// Kafka allows `field!` (required) and `field?` (optional) suffixes.
fn clean(f: &str) -> String {
    f.trim_end_matches(['!', '?']).to_string()
}

fn cast_type(t: &str) -> Result<SchemaType> {
    match SchemaType::parse(t) {
        Some(ty) if !matches!(ty, SchemaType::Array | SchemaType::Map | SchemaType::Struct) => {
            Ok(ty)
        }
        _ => Err(Error::config("spec", format!("cannot cast to {t}"))),
    }
}

/// Adds (name, schema, value) to a struct or map value.
fn add_field(
    schema: &mut Option<Schema>,
    value: &mut Value,
    name: &str,
    field_schema: Schema,
    v: Value,
) -> Result<()> {
    match value {
        Value::Struct(fields) => {
            if let Some(s) = schema.as_mut() {
                let fields = std::sync::Arc::make_mut(&mut s.fields);
                fields.retain(|f| f.name != name);
                fields.push(Field {
                    name: name.to_string(),
                    schema: field_schema,
                });
            }
            fields.retain(|(n, _)| n != name);
            fields.push((name.to_string(), v));
            Ok(())
        }
        Value::Map(entries) => {
            entries.retain(|(k, _)| k.as_str() != Some(name));
            entries.push((Value::String(name.to_string()), v));
            Ok(())
        }
        other => Err(Error::Transform(format!(
            "only structs and maps have fields, got {other:?}"
        ))),
    }
}

struct InsertField {
    side: Side,
    static_field: Option<String>,
    static_value: String,
    topic_field: Option<String>,
    partition_field: Option<String>,
    offset_field: Option<String>,
    timestamp_field: Option<String>,
}

impl Transform for InsertField {
    fn apply(&self, mut r: ConnectRecord, ctx: &RecordContext) -> Result<Option<ConnectRecord>> {
        let topic = r.topic.clone();
        let (partition, ts) = (r.partition, r.timestamp);
        let (schema, value) = side(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        let opt = |t: SchemaType| Schema::new(t).optional();
        if let Some(f) = &self.static_field {
            add_field(
                schema,
                value,
                f,
                opt(SchemaType::String),
                Value::String(self.static_value.clone()),
            )?;
        }
        if let Some(f) = &self.topic_field {
            add_field(
                schema,
                value,
                f,
                opt(SchemaType::String),
                Value::String(topic),
            )?;
        }
        if let Some(f) = &self.partition_field {
            add_field(
                schema,
                value,
                f,
                opt(SchemaType::Int32),
                partition.map_or(Value::Null, Value::Int32),
            )?;
        }
        if let Some(f) = &self.offset_field {
            add_field(
                schema,
                value,
                f,
                opt(SchemaType::Int64),
                ctx.kafka_offset.map_or(Value::Null, Value::Int64),
            )?;
        }
        if let Some(f) = &self.timestamp_field {
            let s = opt(SchemaType::Int64).named("org.apache.kafka.connect.data.Timestamp");
            add_field(schema, value, f, s, ts.map_or(Value::Null, Value::Int64))?;
        }
        Ok(Some(r))
    }
}

/// Applies `edit` to each (name, schema?, value) of a struct or map, rebuilding both.
fn edit_fields(
    schema: &mut Option<Schema>,
    value: &mut Value,
    mut edit: impl FnMut(
        &str,
        Option<&Schema>,
        Value,
    ) -> Result<Option<(String, Option<Schema>, Value)>>,
) -> Result<()> {
    match value {
        Value::Struct(fields) => {
            let mut new_fields = Vec::new();
            let mut new_schema_fields = Vec::new();
            for (n, v) in std::mem::take(fields) {
                let fs = schema
                    .as_ref()
                    .and_then(|s| s.field(&n))
                    .map(|f| f.schema.clone());
                if let Some((n2, s2, v2)) = edit(&n, fs.as_ref(), v)? {
                    if let Some(s2) = s2 {
                        new_schema_fields.push(Field {
                            name: n2.clone(),
                            schema: s2,
                        });
                    }
                    new_fields.push((n2, v2));
                }
            }
            if let Some(s) = schema.as_mut() {
                s.fields = std::sync::Arc::new(new_schema_fields);
            }
            *fields = new_fields;
            Ok(())
        }
        Value::Map(entries) => {
            let mut out = Vec::new();
            for (k, v) in std::mem::take(entries) {
                let name = k.to_string();
                if let Some((n2, _, v2)) = edit(&name, None, v)? {
                    out.push((Value::String(n2), v2));
                }
            }
            *entries = out;
            Ok(())
        }
        Value::Null => Ok(()),
        other => Err(Error::Transform(format!(
            "only structs and maps have fields, got {other:?}"
        ))),
    }
}

struct ReplaceField {
    side: Side,
    exclude: Vec<String>,
    include: Vec<String>,
    renames: Vec<(String, String)>,
}

impl Transform for ReplaceField {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        edit_fields(schema, value, |n, s, v| {
            if self.exclude.iter().any(|e| e == n)
                || (!self.include.is_empty() && !self.include.iter().any(|i| i == n))
            {
                return Ok(None);
            }
            let name = self
                .renames
                .iter()
                .find(|(a, _)| a == n)
                .map_or(n.to_string(), |(_, b)| b.clone());
            Ok(Some((name, s.cloned(), v)))
        })?;
        Ok(Some(r))
    }
}

fn zero_like(v: &Value, replacement: Option<&str>) -> Value {
    match (v, replacement) {
        (Value::String(_), r) => Value::String(r.unwrap_or("").to_string()),
        (Value::Int8(_), r) => Value::Int8(r.and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int16(_), r) => Value::Int16(r.and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int32(_), r) => Value::Int32(r.and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Int64(_), r) => Value::Int64(r.and_then(|r| r.parse().ok()).unwrap_or(0)),
        (Value::Float32(_), r) => Value::Float32(r.and_then(|r| r.parse().ok()).unwrap_or(0.0)),
        (Value::Float64(_), r) => Value::Float64(r.and_then(|r| r.parse().ok()).unwrap_or(0.0)),
        (Value::Boolean(_), _) => Value::Boolean(false),
        (Value::Bytes(_), _) => Value::Bytes(Vec::new()),
        (Value::Array(_), _) => Value::Array(Vec::new()),
        (Value::Map(_), _) => Value::Map(Vec::new()),
        (other, _) => other.clone(),
    }
}

struct MaskField {
    side: Side,
    fields: Vec<String>,
    replacement: Option<String>,
}

impl Transform for MaskField {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        edit_fields(schema, value, |n, s, v| {
            let v = if self.fields.iter().any(|f| f == n) {
                zero_like(&v, self.replacement.as_deref())
            } else {
                v
            };
            Ok(Some((n.to_string(), s.cloned(), v)))
        })?;
        Ok(Some(r))
    }
}

struct HoistField {
    side: Side,
    field: String,
}

impl Transform for HoistField {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        let inner = std::mem::replace(value, Value::Null);
        match schema.take() {
            Some(s) => {
                *schema = Some(Schema::structure(vec![Field {
                    name: self.field.clone(),
                    schema: s,
                }]));
                *value = Value::Struct(vec![(self.field.clone(), inner)]);
            }
            None => *value = Value::Map(vec![(Value::String(self.field.clone()), inner)]),
        }
        Ok(Some(r))
    }
}

struct ExtractField {
    side: Side,
    field: String,
}

impl Transform for ExtractField {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        if value.is_null() {
            return Ok(Some(r));
        }
        let extracted = value.get(&self.field).cloned().unwrap_or(Value::Null);
        *schema = schema
            .as_ref()
            .and_then(|s| s.field(&self.field))
            .map(|f| f.schema.clone());
        *value = extracted;
        Ok(Some(r))
    }
}

struct ValueToKey {
    fields: Vec<String>,
}

impl Transform for ValueToKey {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let mut values = Vec::new();
        let mut schema_fields = Vec::new();
        for f in &self.fields {
            let v = r
                .value
                .get(f)
                .cloned()
                .ok_or_else(|| Error::Transform(format!("value has no field {f}")))?;
            if let Some(fs) = r.value_schema.as_ref().and_then(|s| s.field(f)) {
                schema_fields.push(fs.clone());
            }
            values.push((f.clone(), v));
        }
        if r.value_schema.is_some() {
            r.key_schema = Some(Schema::structure(schema_fields));
            r.key = Value::Struct(values);
        } else {
            r.key_schema = None;
            r.key = Value::Map(
                values
                    .into_iter()
                    .map(|(k, v)| (Value::String(k), v))
                    .collect(),
            );
        }
        Ok(Some(r))
    }
}

fn cast(v: &Value, to: SchemaType) -> Result<Value> {
    let text = v.to_string();
    let bad = || Error::Transform(format!("cannot cast {v:?} to {}", to.name()));
    let num = || -> Result<f64> {
        match v {
            Value::Boolean(b) => Ok(if *b { 1.0 } else { 0.0 }),
            _ => text.trim().parse::<f64>().map_err(|_| bad()),
        }
    };
    Ok(match (to, v) {
        (_, Value::Null) => Value::Null,
        (SchemaType::String, _) => Value::String(text),
        (SchemaType::Boolean, Value::String(s)) => Value::Boolean(s.eq_ignore_ascii_case("true")),
        (SchemaType::Boolean, _) => Value::Boolean(num()? != 0.0),
        (SchemaType::Int8, _) => Value::Int8(num()? as i8),
        (SchemaType::Int16, _) => Value::Int16(num()? as i16),
        (SchemaType::Int32, _) => Value::Int32(num()? as i32),
        (SchemaType::Int64, Value::Int64(n)) => Value::Int64(*n),
        (SchemaType::Int64, _) => Value::Int64(num()? as i64),
        (SchemaType::Float32, _) => Value::Float32(num()? as f32),
        (SchemaType::Float64, _) => Value::Float64(num()?),
        _ => return Err(bad()),
    })
}

struct Cast {
    side: Side,
    whole: Option<SchemaType>,
    fields: Vec<(String, SchemaType)>,
}

impl Transform for Cast {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        if let Some(to) = self.whole {
            *value = cast(value, to)?;
            if let Some(s) = schema.as_mut() {
                s.ty = to;
            }
            return Ok(Some(r));
        }
        edit_fields(schema, value, |n, s, v| {
            match self.fields.iter().find(|(f, _)| f == n) {
                Some((_, to)) => {
                    let s2 = s.map(|s| Schema {
                        ty: *to,
                        name: None,
                        ..s.clone()
                    });
                    Ok(Some((n.to_string(), s2, cast(&v, *to)?)))
                }
                None => Ok(Some((n.to_string(), s.cloned(), v))),
            }
        })?;
        Ok(Some(r))
    }
}

struct Flatten {
    side: Side,
    delimiter: String,
}

fn flatten_into(
    prefix: &str,
    delim: &str,
    schema: Option<&Schema>,
    v: Value,
    out: &mut Vec<(String, Option<Schema>, Value)>,
) {
    let nested: Vec<(String, Value)> = match v {
        Value::Struct(fields) => fields,
        Value::Map(entries)
            if schema.is_none() || schema.is_some_and(|s| s.ty == SchemaType::Map) =>
        {
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        }
        other => {
            out.push((prefix.to_string(), schema.cloned(), other));
            return;
        }
    };
    for (n, inner) in nested {
        let name = if prefix.is_empty() {
            n.clone()
        } else {
            format!("{prefix}{delim}{n}")
        };
        let s = schema.and_then(|s| s.field(&n)).map(|f| &f.schema);
        flatten_into(&name, delim, s, inner, out);
    }
}

impl Transform for Flatten {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        if !matches!(value, Value::Struct(_) | Value::Map(_)) {
            return Ok(Some(r));
        }
        let mut out = Vec::new();
        flatten_into(
            "",
            &self.delimiter,
            schema.as_ref(),
            std::mem::replace(value, Value::Null),
            &mut out,
        );
        if let Some(s) = schema.as_mut() {
            s.fields = std::sync::Arc::new(
                out.iter()
                    .filter_map(|(n, s, _)| {
                        s.clone().map(|s| Field {
                            name: n.clone(),
                            schema: s,
                        })
                    })
                    .collect(),
            );
            *value = Value::Struct(out.into_iter().map(|(n, _, v)| (n, v)).collect());
        } else {
            *value = Value::Map(
                out.into_iter()
                    .map(|(n, _, v)| (Value::String(n), v))
                    .collect(),
            );
        }
        Ok(Some(r))
    }
}

struct InsertHeader {
    header: String,
    value: String,
}

impl Transform for InsertHeader {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        r.headers.push(Header {
            key: self.header.clone(),
            schema: Some(Schema::string()),
            value: Value::String(self.value.clone()),
        });
        Ok(Some(r))
    }
}

struct DropHeaders {
    headers: Vec<String>,
}

impl Transform for DropHeaders {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        r.headers.retain(|h| !self.headers.contains(&h.key));
        Ok(Some(r))
    }
}

struct HeaderFrom {
    side: Side,
    fields: Vec<String>,
    headers: Vec<String>,
    mv: bool,
}

impl Transform for HeaderFrom {
    fn apply(&self, mut r: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        let (schema, value) = side(&mut r, self.side);
        let mut new_headers = Vec::new();
        for (f, h) in self.fields.iter().zip(&self.headers) {
            let v = value.get(f).cloned().unwrap_or(Value::Null);
            let s = schema
                .as_ref()
                .and_then(|s| s.field(f))
                .map(|f| f.schema.clone());
            new_headers.push(Header {
                key: h.clone(),
                schema: s,
                value: v,
            });
        }
        if self.mv {
            edit_fields(schema, value, |n, s, v| {
                Ok((!self.fields.iter().any(|f| f == n)).then(|| (n.to_string(), s.cloned(), v)))
            })?;
        }
        r.headers.extend(new_headers);
        Ok(Some(r))
    }
}

/// Drops every record it is applied to (use it with a predicate).
struct Filter;

impl Transform for Filter {
    fn apply(&self, _: ConnectRecord, _: &RecordContext) -> Result<Option<ConnectRecord>> {
        Ok(None)
    }
}
