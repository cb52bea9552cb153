//! JsonConverter: `schemas.enable=true` writes Kafka Connect's `{"schema", "payload"}`
//! envelope; `false` writes plain JSON and reads it back schemaless.

use base64::Engine;
use serde_json::{json, Map, Number, Value as Json};

use super::json_read::Seed;
use super::json_write::{Envelope, JsonSchema, JsonValue};
use super::Converter;
use crate::api::{Field, Schema, SchemaType, Value};
use crate::error::{Error, Result};

pub struct JsonConverter {
    pub schemas_enable: bool,
    /// Schemas written lately, with their JSON (Kafka's `schemas.cache.size`): a source
    /// sends the same schema with every record, and writing it is most of the work.
    cache: Vec<(Schema, Vec<u8>)>,
    /// Schemas read lately, by their JSON text.
    read_cache: Vec<(Box<str>, Schema)>,
    cache_size: usize,
}

impl JsonConverter {
    pub fn new(schemas_enable: bool, cache_size: usize) -> JsonConverter {
        JsonConverter {
            schemas_enable,
            cache: Vec::new(),
            read_cache: Vec::new(),
            cache_size,
        }
    }

    /// A record laid out as this converter writes it — `{"schema":S,"payload":P}` with
    /// S a cached schema's exact text — read without scanning S again. `None`: not that
    /// layout (the general path decides). The payload must parse as one JSON value
    /// followed by the closing brace, so nothing else can hide in the envelope.
    fn read_cached(&self, data: &[u8]) -> Option<Result<(Option<Schema>, Value)>> {
        const HEAD: &[u8] = b"{\"schema\":";
        const MIDDLE: &[u8] = b",\"payload\":";
        let rest = data.strip_prefix(HEAD)?;
        let (raw, schema) = self
            .read_cache
            .iter()
            .find(|(raw, _)| rest.starts_with(raw.as_bytes()))?;
        let payload = rest[raw.len()..].strip_prefix(MIDDLE)?;
        let payload = payload.trim_ascii_end().strip_suffix(b"}")?;
        // Not valid JSON: the general path decides (and names the error).
        let value = payload_value(schema, payload)?;
        Some(value.map(|v| (Some(schema.clone()), v)))
    }

    /// The envelope, with the schema's JSON from the cache.
    fn envelope(&mut self, schema: &Schema, value: &Value) -> serde_json::Result<Vec<u8>> {
        let at = match self.cache.iter().position(|(s, _)| s == schema) {
            Some(at) => at,
            None => {
                let json = serde_json::to_vec(&JsonSchema {
                    schema,
                    field: None,
                })?;
                if self.cache.len() >= self.cache_size.max(1) {
                    self.cache.remove(0);
                }
                self.cache.push((schema.clone(), json));
                self.cache.len() - 1
            }
        };
        let schema_json = &self.cache[at].1;
        let mut out = Vec::with_capacity(schema_json.len() + 256);
        out.extend_from_slice(b"{\"schema\":");
        out.extend_from_slice(schema_json);
        out.extend_from_slice(b",\"payload\":");
        serde_json::to_writer(&mut out, &JsonValue(value))?;
        out.push(b'}');
        Ok(out)
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub fn schema_to_json(s: &Schema) -> Json {
    let mut o = Map::new();
    o.insert("type".into(), json!(s.ty.name()));
    match s.ty {
        SchemaType::Struct => {
            let fields: Vec<Json> = s
                .fields
                .iter()
                .map(|f| {
                    let mut fj = schema_to_json(&f.schema);
                    if let Json::Object(m) = &mut fj {
                        m.insert("field".into(), json!(f.name));
                    }
                    fj
                })
                .collect();
            o.insert("fields".into(), Json::Array(fields));
        }
        SchemaType::Array => {
            if let Some(k) = &s.key {
                o.insert("items".into(), schema_to_json(k));
            }
        }
        SchemaType::Map => {
            if let Some(k) = &s.key {
                o.insert("keys".into(), schema_to_json(k));
            }
            if let Some(v) = &s.value {
                o.insert("values".into(), schema_to_json(v));
            }
        }
        _ => {}
    }
    o.insert("optional".into(), json!(s.optional));
    if let Some(n) = &s.name {
        o.insert("name".into(), json!(n));
    }
    if let Some(v) = s.version {
        o.insert("version".into(), json!(v));
    }
    if let Some(d) = &s.doc {
        o.insert("doc".into(), json!(d));
    }
    if !s.parameters.is_empty() {
        let p: Map<String, Json> = s
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        o.insert("parameters".into(), Json::Object(p));
    }
    Json::Object(o)
}

pub fn schema_from_json(j: &Json) -> Result<Schema> {
    let bad = |what: &str| Error::Conversion(format!("invalid JSON schema: {what}: {j}"));
    let o = j.as_object().ok_or_else(|| bad("not an object"))?;
    let ty_name = o
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("no \"type\""))?;
    let ty = SchemaType::parse(ty_name).ok_or_else(|| bad(&format!("unknown type {ty_name}")))?;
    let mut s = Schema::new(ty);
    s.optional = o.get("optional").and_then(Json::as_bool).unwrap_or(false);
    s.name = o.get("name").and_then(Json::as_str).map(String::from);
    s.version = o.get("version").and_then(Json::as_i64).map(|v| v as i32);
    s.doc = o.get("doc").and_then(Json::as_str).map(String::from);
    if let Some(Json::Object(p)) = o.get("parameters") {
        s.parameters = p
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
    }
    match ty {
        SchemaType::Struct => {
            let fields = o
                .get("fields")
                .and_then(Json::as_array)
                .ok_or_else(|| bad("struct without \"fields\""))?;
            for f in fields {
                let name = f
                    .get("field")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("field without a name"))?;
                std::sync::Arc::make_mut(&mut s.fields).push(Field {
                    name: name.to_string(),
                    schema: schema_from_json(f)?,
                });
            }
        }
        SchemaType::Array => {
            s.key = Some(Box::new(schema_from_json(
                o.get("items")
                    .ok_or_else(|| bad("array without \"items\""))?,
            )?));
        }
        SchemaType::Map => {
            s.key = Some(Box::new(schema_from_json(
                o.get("keys").ok_or_else(|| bad("map without \"keys\""))?,
            )?));
            s.value = Some(Box::new(schema_from_json(
                o.get("values")
                    .ok_or_else(|| bad("map without \"values\""))?,
            )?));
        }
        _ => {}
    }
    Ok(s)
}

fn number(v: f64) -> Json {
    Number::from_f64(v).map(Json::Number).unwrap_or(Json::Null)
}

/// A Connect value as JSON (bytes as base64, maps with string keys as objects).
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Int8(n) => json!(n),
        Value::Int16(n) => json!(n),
        Value::Int32(n) => json!(n),
        Value::Int64(n) => json!(n),
        Value::Float32(n) => number(*n as f64),
        Value::Float64(n) => number(*n),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(b64().encode(b)),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => {
            if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                Json::Object(
                    entries
                        .iter()
                        .map(|(k, v)| (k.to_string(), value_to_json(v)))
                        .collect(),
                )
            } else {
                Json::Array(
                    entries
                        .iter()
                        .map(|(k, v)| json!([value_to_json(k), value_to_json(v)]))
                        .collect(),
                )
            }
        }
        Value::Struct(fields) => Json::Object(
            fields
                .iter()
                .map(|(n, v)| (n.clone(), value_to_json(v)))
                .collect(),
        ),
    }
}

/// A schemaless value from JSON: integers as int64, other numbers as double, objects as maps.
pub fn value_from_json_schemaless(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int64(i),
            None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(value_from_json_schemaless).collect()),
        Json::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::String(k.clone()), value_from_json_schemaless(v)))
                .collect(),
        ),
    }
}

/// A value from JSON, typed by its schema.
pub fn value_from_json(s: &Schema, j: &Json) -> Result<Value> {
    let bad = || {
        Error::Conversion(format!(
            "JSON value {j} does not match schema type {}",
            s.ty.name()
        ))
    };
    if j.is_null() {
        return if s.optional {
            Ok(Value::Null)
        } else {
            Err(Error::Conversion(format!(
                "null for a required {} field",
                s.ty.name()
            )))
        };
    }
    let int = |min: i64, max: i64| {
        j.as_i64()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(bad)
    };
    Ok(match s.ty {
        SchemaType::Int8 => Value::Int8(int(i8::MIN as i64, i8::MAX as i64)? as i8),
        SchemaType::Int16 => Value::Int16(int(i16::MIN as i64, i16::MAX as i64)? as i16),
        SchemaType::Int32 => Value::Int32(int(i32::MIN as i64, i32::MAX as i64)? as i32),
        SchemaType::Int64 => Value::Int64(j.as_i64().ok_or_else(bad)?),
        SchemaType::Float32 => Value::Float32(j.as_f64().ok_or_else(bad)? as f32),
        SchemaType::Float64 => Value::Float64(j.as_f64().ok_or_else(bad)?),
        SchemaType::Boolean => Value::Boolean(j.as_bool().ok_or_else(bad)?),
        SchemaType::String => Value::String(j.as_str().ok_or_else(bad)?.to_string()),
        SchemaType::Bytes => Value::Bytes(
            b64()
                .decode(j.as_str().ok_or_else(bad)?)
                .map_err(|_| bad())?,
        ),
        SchemaType::Array => {
            let items = s.key.as_deref().ok_or_else(bad)?;
            Value::Array(
                j.as_array()
                    .ok_or_else(bad)?
                    .iter()
                    .map(|v| value_from_json(items, v))
                    .collect::<Result<_>>()?,
            )
        }
        SchemaType::Map => {
            let (ks, vs) = (
                s.key.as_deref().ok_or_else(bad)?,
                s.value.as_deref().ok_or_else(bad)?,
            );
            match j {
                Json::Object(o) => Value::Map(
                    o.iter()
                        .map(|(k, v)| {
                            Ok((
                                value_from_json(ks, &Json::String(k.clone()))?,
                                value_from_json(vs, v)?,
                            ))
                        })
                        .collect::<Result<_>>()?,
                ),
                Json::Array(pairs) => Value::Map(
                    pairs
                        .iter()
                        .map(|p| match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((value_from_json(ks, k)?, value_from_json(vs, v)?)),
                            _ => Err(bad()),
                        })
                        .collect::<Result<_>>()?,
                ),
                _ => return Err(bad()),
            }
        }
        SchemaType::Struct => {
            let o = j.as_object().ok_or_else(bad)?;
            Value::Struct(
                s.fields
                    .iter()
                    .map(|f| {
                        Ok((
                            f.name.clone(),
                            value_from_json(&f.schema, o.get(&f.name).unwrap_or(&Json::Null))?,
                        ))
                    })
                    .collect::<Result<_>>()?,
            )
        }
    })
}

impl Converter for JsonConverter {
    fn to_bytes(
        &mut self,
        _topic: &str,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>> {
        if value.is_null() && !self.schemas_enable {
            return Ok(None);
        }
        let written = if !self.schemas_enable {
            serde_json::to_vec(&JsonValue(value))
        } else if let Some(schema) = schema {
            self.envelope(schema, value)
        } else {
            serde_json::to_vec(&Envelope {
                schema: None,
                payload: value,
            })
        };
        written
            .map(Some)
            .map_err(|e| Error::Conversion(e.to_string()))
    }

    fn to_connect(&mut self, topic: &str, data: Option<&[u8]>) -> Result<(Option<Schema>, Value)> {
        let Some(data) = data else {
            return Ok((None, Value::Null));
        };
        let not_json = |e: serde_json::Error| {
            Error::Conversion(format!("converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: {e}"))
        };
        if !self.schemas_enable {
            let doc: Json = serde_json::from_slice(data).map_err(not_json)?;
            return Ok((None, value_from_json_schemaless(&doc)));
        }
        if let Some(read) = self.read_cached(data) {
            return read;
        }
        // The envelope split without parsing its parts: the schema is looked up by its
        // bytes, only the payload is parsed.
        let envelope: RawEnvelope = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) => {
                serde_json::from_slice::<serde::de::IgnoredAny>(data).map_err(not_json)?;
                tracing::debug!("not a JsonConverter envelope: {e}");
                return Err(Error::Conversion(
                    "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.".into(),
                ));
            }
        };
        let raw = envelope.schema.get();
        if raw == "null" {
            let payload: Json = serde_json::from_str(envelope.payload.get()).map_err(not_json)?;
            return Ok((None, value_from_json_schemaless(&payload)));
        }
        let at = match self.read_cache.iter().position(|(r, _)| **r == *raw) {
            Some(at) => at,
            None => {
                let json: Json = serde_json::from_str(raw).map_err(not_json)?;
                let schema = schema_from_json(&json)?;
                if self.read_cache.len() >= self.cache_size.max(1) {
                    self.read_cache.remove(0);
                }
                self.read_cache.push((raw.into(), schema));
                self.read_cache.len() - 1
            }
        };
        let schema = &self.read_cache[at].1;
        let value = match payload_value(schema, envelope.payload.get().as_bytes()) {
            Some(v) => v?,
            None => return Err(not_json_text(topic)),
        };
        Ok((Some(schema.clone()), value))
    }
}

/// A payload of a known schema: parsed straight into a value (`json_read`); when that
/// fails, through a JSON tree and `value_from_json`, which names the mismatch. `None`:
/// not JSON at all.
fn payload_value(schema: &Schema, payload: &[u8]) -> Option<Result<Value>> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let direct = serde::de::DeserializeSeed::deserialize(Seed(schema), &mut de)
        .and_then(|v| de.end().map(|()| v));
    if let Ok(v) = direct {
        return Some(Ok(v));
    }
    let json: Json = serde_json::from_slice(payload).ok()?;
    Some(value_from_json(schema, &json))
}

fn not_json_text(topic: &str) -> Error {
    Error::Conversion(format!(
        "converting byte[] to Kafka Connect data failed due to serialization error of topic {topic}: the payload is not JSON"
    ))
}

/// Kafka's envelope: exactly these two fields.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    schema: &'a serde_json::value::RawValue,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_round_trip_with_schema_envelope() {
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int32),
            },
            Field {
                name: "name".into(),
                schema: Schema::optional_string(),
            },
            Field {
                name: "tags".into(),
                schema: Schema::array(Schema::string()),
            },
            Field {
                name: "raw".into(),
                schema: Schema::new(SchemaType::Bytes),
            },
        ])
        .named("person");
        let value = Value::Struct(vec![
            ("id".into(), Value::Int32(7)),
            ("name".into(), Value::Null),
            ("tags".into(), Value::Array(vec![Value::String("a".into())])),
            ("raw".into(), Value::Bytes(vec![0, 255])),
        ]);
        let mut c = JsonConverter::new(true, 1000);
        let bytes = c.to_bytes("t", Some(&schema), &value).unwrap().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""payload":{"id":7,"name":null,"tags":["a"],"raw":"AP8="}"#),
            "{text}"
        );
        assert_eq!(
            c.to_connect("t", Some(&bytes)).unwrap(),
            (Some(schema), value)
        );
    }

    #[test]
    fn schemaless_and_errors() {
        let mut c = JsonConverter::new(false, 1000);
        let (s, v) = c
            .to_connect("t", Some(br#"{"a":1,"b":[true,2.5]}"#))
            .unwrap();
        assert!(s.is_none());
        assert_eq!(v.get("a"), Some(&Value::Int64(1)));
        let mut with = JsonConverter::new(true, 1000);
        let err = with
            .to_connect("t", Some(br#"{"a":1}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("schemas.enable"), "{err}");
        assert!(c
            .to_connect("orders", Some(b"{not json"))
            .unwrap_err()
            .to_string()
            .contains("orders"));
        let bad_type = br#"{"schema":{"type":"int32","optional":false},"payload":"x"}"#;
        assert!(with.to_connect("t", Some(bad_type)).is_err());
        // As Kafka's JsonConverter: exactly "schema" and "payload", nothing more.
        let extra = br#"{"schema":null,"payload":1,"other":2}"#;
        let err = with.to_connect("t", Some(extra)).unwrap_err().to_string();
        assert!(err.contains("may not contain additional fields"), "{err}");
        let err = with
            .to_connect("orders", Some(b"{\"schema\":"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("serialization error of topic orders"), "{err}");
        let schemaless = with
            .to_connect("t", Some(br#"{"schema":null,"payload":{"a":1}}"#))
            .unwrap();
        assert_eq!(schemaless.0, None);
        assert_eq!(schemaless.1.get("a"), Some(&Value::Int64(1)));
    }

    #[test]
    fn the_schema_cache_writes_each_schema_as_itself() {
        // A cache keyed wrongly (by name, or never evicting right) would write one
        // schema's JSON for another: alternate two schemas of one name, with room for
        // only one of them.
        let a = Schema::structure(vec![Field {
            name: "id".into(),
            schema: Schema::new(SchemaType::Int32),
        }])
        .named("row");
        let mut b = a.clone();
        std::sync::Arc::make_mut(&mut b.fields)[0].schema = Schema::string();
        let va = Value::Struct(vec![("id".into(), Value::Int32(1))]);
        let vb = Value::Struct(vec![("id".into(), Value::String("x".into()))]);
        for size in [1, 1000] {
            let mut c = JsonConverter::new(true, size);
            for _ in 0..3 {
                for (schema, value) in [(&a, &va), (&b, &vb)] {
                    let bytes = c.to_bytes("t", Some(schema), value).unwrap().unwrap();
                    let back = c.to_connect("t", Some(&bytes)).unwrap();
                    assert_eq!(back, (Some(schema.clone()), value.clone()));
                }
            }
            assert!(c.cache.len() <= size);
        }
        // Read through the cached-layout path: an extra field after the payload must
        // still be refused, as the general path refuses it.
        let mut c = JsonConverter::new(true, 10);
        let bytes = c.to_bytes("t", Some(&a), &va).unwrap().unwrap();
        c.to_connect("t", Some(&bytes)).unwrap();
        assert!(c.read_cached(&bytes).is_some(), "the layout is recognised");
        let mut sneaky = bytes[..bytes.len() - 1].to_vec();
        sneaky.extend_from_slice(br#","extra":1}"#);
        let err = c.to_connect("t", Some(&sneaky)).unwrap_err().to_string();
        assert!(err.contains("may not contain additional fields"), "{err}");
    }
}
