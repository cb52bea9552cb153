//! JsonConverter's reading side for a known schema: the payload parsed straight into a
//! Connect value, guided by the schema, without a `serde_json::Value` tree in between
//! (its hashed maps were a quarter of a sink's CPU). It accepts exactly what
//! `value_from_json` accepts; on any mismatch the caller runs `value_from_json` for
//! its error message.

use std::fmt;

use base64::Engine;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::api::{Field, Schema, SchemaType, Value};

/// Parses one JSON value of schema `schema`.
pub struct Seed<'a>(pub &'a Schema);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn mismatch<E: serde::de::Error>() -> E {
    E::custom("does not match the schema")
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON value of schema type {}", self.0.ty.name())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        if self.0.optional {
            Ok(Value::Null)
        } else {
            Err(mismatch())
        }
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        match self.0.ty {
            SchemaType::Boolean => Ok(Value::Boolean(b)),
            _ => Err(mismatch()),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        let fits = |min: i64, max: i64| (min..=max).contains(&v);
        Ok(match self.0.ty {
            SchemaType::Int8 if fits(i8::MIN.into(), i8::MAX.into()) => Value::Int8(v as i8),
            SchemaType::Int16 if fits(i16::MIN.into(), i16::MAX.into()) => Value::Int16(v as i16),
            SchemaType::Int32 if fits(i32::MIN.into(), i32::MAX.into()) => Value::Int32(v as i32),
            SchemaType::Int64 => Value::Int64(v),
            SchemaType::Float32 => Value::Float32(v as f32),
            SchemaType::Float64 => Value::Float64(v as f64),
            _ => return Err(mismatch()),
        })
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(v) => self.visit_i64(v),
            Err(_) => match self.0.ty {
                SchemaType::Float32 => Ok(Value::Float32(v as f32)),
                SchemaType::Float64 => Ok(Value::Float64(v as f64)),
                _ => Err(mismatch()),
            },
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        match self.0.ty {
            SchemaType::Float32 => Ok(Value::Float32(v as f32)),
            SchemaType::Float64 => Ok(Value::Float64(v)),
            _ => Err(mismatch()),
        }
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        match self.0.ty {
            SchemaType::String => Ok(Value::String(s.to_string())),
            SchemaType::Bytes => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(Value::Bytes)
                .map_err(|_| mismatch()),
            _ => Err(mismatch()),
        }
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
        match self.0.ty {
            SchemaType::String => Ok(Value::String(s)),
            _ => self.visit_str(&s),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.0.ty {
            SchemaType::Array => {
                let items = self.0.key.as_deref().ok_or_else(mismatch)?;
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element_seed(Seed(items))? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            SchemaType::Map => {
                // Maps with keys that are not strings: [[key, value], ...].
                let (ks, vs) = map_schemas(self.0).ok_or_else(mismatch)?;
                let mut out = Vec::new();
                while let Some(pair) = seq.next_element_seed(Pair(ks, vs))? {
                    out.push(pair);
                }
                Ok(Value::Map(out))
            }
            _ => Err(mismatch()),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        match self.0.ty {
            SchemaType::Struct => {
                let fields = &self.0.fields;
                // Fields in the schema's order (as JsonConverter writes them) go straight
                // to the struct; any other order goes through slots.
                let mut out: Vec<(String, Value)> = Vec::with_capacity(fields.len());
                let mut slots: Option<Vec<Option<Value>>> = None;
                while let Some(at) = map.next_key_seed(FieldIndex(fields))? {
                    let Some(i) = at else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let v = map.next_value_seed(Seed(&fields[i].schema))?;
                    match &mut slots {
                        None if i == out.len() => out.push((fields[i].name.clone(), v)),
                        None => {
                            let mut s: Vec<Option<Value>> = vec![None; fields.len()];
                            for (j, (_, earlier)) in out.drain(..).enumerate() {
                                s[j] = Some(earlier);
                            }
                            s[i] = Some(v);
                            slots = Some(s);
                        }
                        Some(s) => s[i] = Some(v),
                    }
                }
                let given: Vec<Option<Value>> = match slots {
                    Some(s) => s,
                    None if out.len() == fields.len() => return Ok(Value::Struct(out)),
                    None => {
                        // Fields missing at the end: null where optional.
                        let mut given: Vec<Option<Value>> =
                            out.drain(..).map(|(_, v)| Some(v)).collect();
                        given.resize(fields.len(), None);
                        given
                    }
                };
                for (f, v) in fields.iter().zip(given) {
                    let v = match v {
                        Some(v) => v,
                        None if f.schema.optional => Value::Null,
                        None => return Err(mismatch()),
                    };
                    out.push((f.name.clone(), v));
                }
                Ok(Value::Struct(out))
            }
            SchemaType::Map => {
                let (ks, vs) = map_schemas(self.0).ok_or_else(mismatch)?;
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let k = Seed(ks).visit_str::<A::Error>(&key)?;
                    out.push((k, map.next_value_seed(Seed(vs))?));
                }
                Ok(Value::Map(out))
            }
            _ => Err(mismatch()),
        }
    }
}

/// A struct's key as the index of its field (`None`: not a field), read without
/// allocating: serde's `Cow<str>` keys are always owned.
struct FieldIndex<'a>(&'a [Field]);

impl<'de> DeserializeSeed<'de> for FieldIndex<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FieldIndex<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|f| f.name == key))
    }
}

fn map_schemas(s: &Schema) -> Option<(&Schema, &Schema)> {
    Some((s.key.as_deref()?, s.value.as_deref()?))
}

/// One `[key, value]` pair of a map written as an array.
struct Pair<'a>(&'a Schema, &'a Schema);

impl<'de> DeserializeSeed<'de> for Pair<'_> {
    type Value = (Value, Value);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Value, Value), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Pair<'_> {
    type Value = (Value, Value);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [key, value] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Value, Value), A::Error> {
        let k = seq.next_element_seed(Seed(self.0))?.ok_or_else(mismatch)?;
        let v = seq.next_element_seed(Seed(self.1))?.ok_or_else(mismatch)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(A::Error::custom("a pair has two elements"));
        }
        Ok((k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Field;
    use crate::converters::json::value_from_json;

    fn schema() -> Schema {
        let f = |name: &str, schema: Schema| Field {
            name: name.into(),
            schema,
        };
        Schema::structure(vec![
            f("i8", Schema::new(SchemaType::Int8)),
            f("i32", Schema::new(SchemaType::Int32).optional()),
            f("i64", Schema::new(SchemaType::Int64).optional()),
            f("f", Schema::new(SchemaType::Float32).optional()),
            f("d", Schema::new(SchemaType::Float64).optional()),
            f("b", Schema::new(SchemaType::Boolean).optional()),
            f("s", Schema::optional_string()),
            f("raw", Schema::new(SchemaType::Bytes).optional()),
            f("tags", Schema::array(Schema::optional_string()).optional()),
            f(
                "by_name",
                Schema::map(Schema::string(), Schema::new(SchemaType::Int32)).optional(),
            ),
            f(
                "by_id",
                Schema::map(Schema::new(SchemaType::Int32), Schema::string()).optional(),
            ),
        ])
    }

    #[test]
    fn reads_exactly_what_value_from_json_reads() {
        let s = schema();
        let docs = [
            r#"{"i8": 1}"#,
            r#"{"i8": -128, "i32": 2147483647, "i64": 18446744073709551615}"#,
            r#"{"i8": 1, "i64": -9223372036854775808, "f": 2, "d": 1e308, "b": false}"#,
            r#"{"i8": 1, "s": "a\"\u00e9", "raw": "AP8=", "tags": ["x", null], "extra": {"a": [1]}}"#,
            r#"{"i8": 1, "by_name": {"a": 1, "b": 2}, "by_id": [[1, "one"], [2, "two"]]}"#,
            r#"{"i8": 1, "i8": 2}"#,
            r#"{"i8": 128}"#,
            r#"{"i8": 1.5}"#,
            r#"{"i32": 1}"#,
            r#"{"i8": null}"#,
            r#"{"i8": 1, "raw": "not base64!"}"#,
            r#"{"i8": 1, "b": "true"}"#,
            r#"{"i8": 1, "by_id": {"1": "one"}}"#,
            r#"{"i8": 1, "by_id": [[1, "one", 3]]}"#,
            r#"{"i8": 1, "tags": "x"}"#,
            r#"[1]"#,
            r#"null"#,
            // Every field in the schema's order; then out of order, with an escaped key.
            r#"{"i8": 1, "i32": 2, "i64": 3, "f": 4, "d": 5, "b": true, "s": "s", "raw": "", "tags": [], "by_name": {}, "by_id": []}"#,
            r#"{"b": true, "s": "s", "\u0069\u0038": 7, "i32": 2, "i8": 9}"#,
        ];
        let mut read = 0;
        for doc in docs {
            let tree: serde_json::Value = serde_json::from_str(doc).unwrap();
            let want = value_from_json(&s, &tree).ok();
            let mut de = serde_json::Deserializer::from_str(doc);
            let got = Seed(&s).deserialize(&mut de).ok();
            read += usize::from(got.is_some());
            assert_eq!(got, want, "{doc}");
        }
        // Documents 1, 3 to 6 and the last two match the schema (2 overflows Int64).
        assert_eq!(read, 7);
    }
}
