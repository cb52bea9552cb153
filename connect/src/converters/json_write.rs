//! JsonConverter's writing side, serialized straight into the output bytes: the same
//! JSON as building a `serde_json::Value` tree first (`schema_to_json`,
//! `value_to_json`), key order included, without the tree's per-node allocations —
//! it is the per-record hot path of every source connector.

use base64::Engine;
use serde::ser::{Error as _, SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use crate::api::{Schema, SchemaType, Value};

/// A Connect value as JSON: bytes as base64, maps with string keys as objects, other
/// maps as `[key, value]` pairs, NaN and infinities as null.
pub struct JsonValue<'a>(pub &'a Value);

/// A Connect schema in Kafka's JsonConverter form; `field` names a struct field.
pub struct JsonSchema<'a> {
    pub schema: &'a Schema,
    pub field: Option<&'a str>,
}

/// `{"schema": ..., "payload": ...}`.
pub struct Envelope<'a> {
    pub schema: Option<&'a Schema>,
    pub payload: &'a Value,
}

fn float<S: Serializer>(s: S, v: f64) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(v)
    } else {
        s.serialize_unit()
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Int8(n) => s.serialize_i8(*n),
            Value::Int16(n) => s.serialize_i16(*n),
            Value::Int32(n) => s.serialize_i32(*n),
            Value::Int64(n) => s.serialize_i64(*n),
            Value::Float32(n) => float(s, f64::from(*n)),
            Value::Float64(n) => float(s, *n),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&JsonValue(i))?;
                }
                seq.end()
            }
            Value::Map(entries) if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    let Value::String(k) = k else {
                        return Err(S::Error::custom("a map key changed type"));
                    };
                    map.serialize_entry(k, &JsonValue(v))?;
                }
                map.end()
            }
            Value::Map(entries) => {
                let mut seq = s.serialize_seq(Some(entries.len()))?;
                for (k, v) in entries {
                    seq.serialize_element(&[JsonValue(k), JsonValue(v)])?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (n, v) in fields {
                    map.serialize_entry(n, &JsonValue(v))?;
                }
                map.end()
            }
        }
    }
}

/// A struct's fields as the `fields` array.
struct Fields<'a>(&'a Schema);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.fields.len()))?;
        for f in self.0.fields.iter() {
            seq.serialize_element(&JsonSchema {
                schema: &f.schema,
                field: Some(&f.name),
            })?;
        }
        seq.end()
    }
}

struct Parameters<'a>(&'a [(String, String)]);

impl Serialize for Parameters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn nested(key: &Option<Box<Schema>>) -> Option<JsonSchema<'_>> {
    key.as_deref().map(|schema| JsonSchema {
        schema,
        field: None,
    })
}

impl Serialize for JsonSchema<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let schema = self.schema;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", schema.ty.name())?;
        match schema.ty {
            SchemaType::Struct => map.serialize_entry("fields", &Fields(schema))?,
            SchemaType::Array => {
                if let Some(items) = nested(&schema.key) {
                    map.serialize_entry("items", &items)?;
                }
            }
            SchemaType::Map => {
                if let Some(keys) = nested(&schema.key) {
                    map.serialize_entry("keys", &keys)?;
                }
                if let Some(values) = nested(&schema.value) {
                    map.serialize_entry("values", &values)?;
                }
            }
            _ => {}
        }
        map.serialize_entry("optional", &schema.optional)?;
        if let Some(n) = &schema.name {
            map.serialize_entry("name", n)?;
        }
        if let Some(v) = schema.version {
            map.serialize_entry("version", &v)?;
        }
        if let Some(d) = &schema.doc {
            map.serialize_entry("doc", d)?;
        }
        if !schema.parameters.is_empty() {
            map.serialize_entry("parameters", &Parameters(&schema.parameters))?;
        }
        if let Some(f) = self.field {
            map.serialize_entry("field", f)?;
        }
        map.end()
    }
}

impl Serialize for Envelope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        match self.schema {
            Some(schema) => map.serialize_entry(
                "schema",
                &JsonSchema {
                    schema,
                    field: None,
                },
            )?,
            None => map.serialize_entry("schema", &())?,
        }
        map.serialize_entry("payload", &JsonValue(self.payload))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Field;
    use crate::converters::json::{schema_to_json, value_to_json};

    #[test]
    fn writes_what_the_value_tree_writes() {
        let mut decimal =
            Schema::new(SchemaType::Bytes).named("org.apache.kafka.connect.data.Decimal");
        decimal.parameters = vec![("scale".into(), "2".into())];
        decimal.version = Some(1);
        decimal.doc = Some("a \"price\"".into());
        let schema = Schema::structure(vec![
            Field {
                name: "id".into(),
                schema: Schema::new(SchemaType::Int64),
            },
            Field {
                name: "price".into(),
                schema: decimal,
            },
            Field {
                name: "tags".into(),
                schema: Schema::array(Schema::optional_string()),
            },
            Field {
                name: "by_key".into(),
                schema: Schema::map(
                    Schema::new(SchemaType::Int32),
                    Schema::new(SchemaType::Float64),
                ),
            },
        ])
        .named("row")
        .optional();
        let value = Value::Struct(vec![
            ("id".into(), Value::Int64(-7)),
            ("price".into(), Value::Bytes(vec![1, 2, 255])),
            (
                "tags".into(),
                Value::Array(vec![Value::String("é\"\n".into()), Value::Null]),
            ),
            (
                "by_key".into(),
                Value::Map(vec![
                    (Value::Int32(1), Value::Float64(f64::NAN)),
                    (Value::Int32(2), Value::Float64(0.5)),
                ]),
            ),
            (
                "named".into(),
                Value::Map(vec![(Value::String("k".into()), Value::Float32(1.5))]),
            ),
        ]);
        let direct = serde_json::to_string(&Envelope {
            schema: Some(&schema),
            payload: &value,
        })
        .unwrap();
        let tree = serde_json::to_string(
            &serde_json::json!({"schema": schema_to_json(&schema), "payload": value_to_json(&value)}),
        )
        .unwrap();
        assert_eq!(direct, tree);
        assert!(
            direct.contains(r#""parameters":{"scale":"2"},"field":"price""#),
            "{direct}"
        );
        let none = serde_json::to_string(&Envelope {
            schema: None,
            payload: &Value::Null,
        })
        .unwrap();
        assert_eq!(none, r#"{"schema":null,"payload":null}"#);
    }
}
