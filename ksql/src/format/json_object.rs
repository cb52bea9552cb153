//! Decoding a JSON object straight into a row of declared columns: one pass over its
//! fields, each value read into the column it names, without building a map of the
//! whole object; fields no column names are skipped unread. A field matches a column
//! by name, case-insensitively, an exact name winning (as ksqlDB's JSON deserializer
//! matches them); of two fields with one name, the later value counts.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::json::json_to_scalar;
use super::{bad, Cell, Row};
use crate::catalog::Column;
use crate::error::Result;
use crate::parser::types::SqlType;

/// The row of `columns` the JSON object in `bytes` gives.
pub fn decode(bytes: &[u8], columns: &[&Column]) -> Result<Row> {
    Ok(decode_cells(bytes, columns)?
        .into_iter()
        .zip(columns)
        .map(|(cell, c)| cell.into_scalar(&c.sql_type))
        .collect())
}

/// The values of `columns` the JSON object in `bytes` gives, strings without escapes
/// borrowed from `bytes`.
pub fn decode_cells<'de>(bytes: &'de [u8], columns: &[&Column]) -> Result<Vec<Cell<'de>>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let fields = de
        .deserialize_map(ObjectVisitor { columns })
        .and_then(|f| de.end().map(|_| f))
        .map_err(|e| bad(format!("Failed to deserialise JSON: {e}")))?;
    columns
        .iter()
        .zip(fields)
        .map(|(c, f)| match f {
            Slot::Empty => Ok(Cell::Null),
            Slot::Exact(f) | Slot::Insensitive(_, f) => {
                to_cell(f, &c.sql_type).map_err(|e| bad(format!("column {}: {e}", c.name)))
            }
        })
        .collect()
}

/// A field's value as read: scalars as they are, anything nested as JSON.
enum Field<'de> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'de, str>),
    Nested(Value),
}

impl Field<'_> {
    fn into_value(self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Bool(b) => Value::Bool(b),
            Field::Number(n) => Value::Number(n),
            Field::Str(s) => Value::String(s.into_owned()),
            Field::Nested(v) => v,
        }
    }
}

/// The common cases read directly; the others (and every coercion ksqlDB allows, such
/// as numbers from numeric strings) through [`json_to_scalar`].
fn to_cell<'de>(f: Field<'de>, t: &SqlType) -> Result<Cell<'de>> {
    Ok(match (f, t) {
        (Field::Null, _) => Cell::Null,
        (Field::Str(s), SqlType::String) => Cell::Str(s),
        (Field::Bool(b), SqlType::Boolean) => Cell::Bool(b),
        (Field::Number(n), SqlType::Integer)
            if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) =>
        {
            Cell::Int32(n.as_i64().unwrap_or_default() as i32)
        }
        (Field::Number(n), SqlType::Bigint) if n.is_i64() => {
            Cell::Int64(n.as_i64().unwrap_or_default())
        }
        (Field::Number(n), SqlType::Double) if n.as_f64().is_some() => {
            Cell::Float64(n.as_f64().unwrap_or_default())
        }
        (f, t) => Cell::Scalar(json_to_scalar(&f.into_value(), t)?),
    })
}

/// What a column has been given so far.
enum Slot<'de> {
    Empty,
    Exact(Field<'de>),
    /// From a field whose name matches the column's only case-insensitively.
    Insensitive(String, Field<'de>),
}

/// Which column a field name gives its value to.
enum Target {
    Exact(usize),
    Insensitive(usize, String),
    None,
}

struct KeySeed<'a> {
    columns: &'a [&'a Column],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Target;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Target, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Target;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Target, E> {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return Ok(Target::Exact(i));
        }
        Ok(
            match self
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
            {
                Some(i) => Target::Insensitive(i, name.to_string()),
                None => Target::None,
            },
        )
    }
}

struct ObjectVisitor<'a> {
    columns: &'a [&'a Column],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_> {
    type Value = Vec<Slot<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object with one field per column")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Slot<'de>>, A::Error> {
        let mut slots: Vec<Slot<'de>> = self.columns.iter().map(|_| Slot::Empty).collect();
        let columns = self.columns;
        while let Some(target) = map.next_key_seed(KeySeed { columns })? {
            match target {
                Target::Exact(i) => slots[i] = Slot::Exact(map.next_value::<FieldValue<'de>>()?.0),
                Target::Insensitive(i, name) => match &slots[i] {
                    Slot::Empty => {
                        slots[i] = Slot::Insensitive(name, map.next_value::<FieldValue<'de>>()?.0)
                    }
                    Slot::Insensitive(first, _) if *first == name => {
                        slots[i] = Slot::Insensitive(name, map.next_value::<FieldValue<'de>>()?.0)
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
                Target::None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

struct FieldValue<'de>(Field<'de>);

impl<'de> de::Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FieldValue<'de>, D::Error> {
        d.deserialize_any(FieldVisitor).map(FieldValue)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Field<'de>, E> {
        Ok(Field::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Field<'de>, E> {
        Ok(Field::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Field<'de>, E> {
        Ok(Field::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Field<'de>, E> {
        Ok(Field::Number(u.into()))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Field<'de>, E> {
        Ok(Number::from_f64(x).map_or(Field::Null, Field::Number))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(s.to_string())))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Borrowed(s)))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Field<'de>, E> {
        Ok(Field::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Field::Nested(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
        let mut m = Map::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            m.insert(k, v);
        }
        Ok(Field::Nested(Value::Object(m)))
    }
}
