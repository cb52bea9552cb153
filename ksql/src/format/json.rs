//! The JSON format, and the JSON <-> `ScalarValue` conversions other formats and the
//! REST API share.

use std::sync::Arc;

use base64::Engine as _;
use datafusion::arrow::array::{Array, ListArray, MapArray, StructArray};
use datafusion::common::ScalarValue;
use serde_json::{Map, Value};

use super::{bad, null_of, Row};
use crate::catalog::Column;
use crate::error::Result;
use crate::parser::types::SqlType;

/// Whether `bytes` hold an object with one field per column (not a bare value).
pub(super) fn is_object_of(bytes: &[u8], columns: &[&Column], wrap_single_value: bool) -> bool {
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    object && (columns.len() != 1 || wrap_single_value)
}

pub fn decode(bytes: &[u8], columns: &[&Column], wrap_single_value: bool) -> Result<Row> {
    if is_object_of(bytes, columns, wrap_single_value) {
        return super::json_object::decode(bytes, columns);
    }
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("Failed to deserialise JSON: {e}")))?;
    let unwrapped = columns.len() == 1 && (!wrap_single_value || !json.is_object());
    if unwrapped {
        let c = columns[0];
        return Ok(vec![json_to_scalar(&json, &c.sql_type)
            .map_err(|e| bad(format!("column {}: {e}", c.name)))?]);
    }
    let Value::Object(obj) = json else {
        return Err(bad(
            "a JSON value must be an object with one field per column",
        ));
    };
    columns
        .iter()
        .map(|c| {
            let field = obj.get(&c.name).or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                    .map(|(_, v)| v)
            });
            match field {
                None | Some(Value::Null) => Ok(null_of(&c.sql_type)),
                Some(v) => json_to_scalar(v, &c.sql_type)
                    .map_err(|e| bad(format!("column {}: {e}", c.name))),
            }
        })
        .collect()
}

pub fn encode(
    row: &[ScalarValue],
    columns: &[&Column],
    wrap_single_value: bool,
) -> Result<Vec<u8>> {
    if columns.len() == 1 && !wrap_single_value {
        return serde_json::to_vec(&scalar_to_json(&row[0])).map_err(bad);
    }
    serde_json::to_vec(&Object { row, columns }).map_err(bad)
}

/// A row as a JSON object, written field by field (no map is built per record).
struct Object<'a> {
    row: &'a [ScalarValue],
    columns: &'a [&'a Column],
}

impl serde::Serialize for Object<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.columns.len()))?;
        for (c, v) in self.columns.iter().zip(self.row) {
            m.serialize_entry(&c.name, &scalar_to_json(v))?;
        }
        m.end()
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON value as a column of type `t`, with ksqlDB's lenient coercions (numbers
/// from numeric strings, strings from any scalar).
pub fn json_to_scalar(v: &Value, t: &SqlType) -> Result<ScalarValue> {
    if v.is_null() {
        return Ok(null_of(t));
    }
    let wrong = || bad(format!("cannot read {v} as {t}"));
    Ok(match t {
        SqlType::Boolean => ScalarValue::Boolean(Some(match v {
            Value::Bool(b) => *b,
            Value::String(s) if s.eq_ignore_ascii_case("true") => true,
            Value::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(wrong()),
        })),
        SqlType::Integer => ScalarValue::Int32(Some(
            int(v)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(wrong)?,
        )),
        SqlType::Bigint | SqlType::Timestamp => {
            let i = int(v).ok_or_else(wrong)?;
            if *t == SqlType::Timestamp {
                ScalarValue::TimestampMillisecond(Some(i), None)
            } else {
                ScalarValue::Int64(Some(i))
            }
        }
        SqlType::Double => ScalarValue::Float64(Some(match v {
            Value::Number(n) => n.as_f64().ok_or_else(wrong)?,
            Value::String(s) => s.trim().parse().map_err(|_| wrong())?,
            _ => return Err(wrong()),
        })),
        SqlType::String => ScalarValue::Utf8(Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        SqlType::Decimal(p, s) => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(wrong()),
            };
            ScalarValue::Utf8(Some(text))
                .cast_to(&t.to_arrow())
                .map_err(|_| wrong())
                .map(|d| match d {
                    ScalarValue::Decimal128(x, _, _) => ScalarValue::Decimal128(x, *p, *s),
                    other => other,
                })?
        }
        // ksqlDB writes BYTES as base64 text in JSON and DELIMITED.
        SqlType::Bytes => match v {
            Value::String(s) => ScalarValue::Binary(Some(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| wrong())?,
            )),
            _ => return Err(wrong()),
        },
        // ksqlDB writes DATE as days since the epoch and TIME as milliseconds of the day.
        SqlType::Date if v.is_number() => ScalarValue::Date32(Some(
            int(v)
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(wrong)?,
        )),
        SqlType::Time if v.is_number() => ScalarValue::Time32Millisecond(Some(
            int(v)
                .and_then(|d| i32::try_from(d).ok())
                .ok_or_else(wrong)?,
        )),
        SqlType::Date | SqlType::Time => ScalarValue::Utf8(Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
        .cast_to(&t.to_arrow())
        .map_err(|_| wrong())?,
        SqlType::Array(inner) => {
            let Value::Array(items) = v else {
                return Err(wrong());
            };
            let values = items
                .iter()
                .map(|i| json_to_scalar(i, inner))
                .collect::<Result<Vec<_>>>()?;
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &inner.to_arrow()))
        }
        SqlType::Map(_, _) | SqlType::Struct(_) => {
            // Nested values go through Arrow's JSON reader for the exact Arrow type.
            let field = Arc::new(datafusion::arrow::datatypes::Field::new(
                "v",
                t.to_arrow(),
                true,
            ));
            let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![field]));
            let line = serde_json::json!({ "v": declared_case(v, t) }).to_string();
            let mut reader = datafusion::arrow::json::ReaderBuilder::new(schema)
                .build(std::io::Cursor::new(line.into_bytes()))
                .map_err(bad)?;
            let batch = reader.next().ok_or_else(wrong)?.map_err(bad)?;
            ScalarValue::try_from_array(batch.column(0), 0).map_err(bad)?
        }
    })
}

/// A value as JSON: integers as integers, doubles as doubles, lists as arrays.
pub fn scalar_to_json(v: &ScalarValue) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::Bool(*b),
        ScalarValue::Int8(Some(i)) => (*i).into(),
        ScalarValue::Int16(Some(i)) => (*i).into(),
        ScalarValue::Int32(Some(i)) => (*i).into(),
        ScalarValue::Int64(Some(i)) => (*i).into(),
        ScalarValue::UInt8(Some(i)) => (*i).into(),
        ScalarValue::UInt16(Some(i)) => (*i).into(),
        ScalarValue::UInt32(Some(i)) => (*i).into(),
        ScalarValue::UInt64(Some(i)) => (*i).into(),
        ScalarValue::Float32(Some(f)) => float(*f as f64),
        ScalarValue::Float64(Some(f)) => float(*f),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::String(s.clone()),
        ScalarValue::Decimal128(Some(x), _, s) => {
            let d = *x as f64 / 10f64.powi(*s as i32);
            float(d)
        }
        ScalarValue::TimestampMillisecond(Some(t), _) => (*t).into(),
        ScalarValue::Date32(Some(d)) => (*d).into(),
        ScalarValue::Time32Millisecond(Some(t)) => (*t).into(),
        ScalarValue::TimestampSecond(Some(t), _) => (*t * 1000).into(),
        ScalarValue::TimestampMicrosecond(Some(t), _) => (*t / 1000).into(),
        ScalarValue::TimestampNanosecond(Some(t), _) => (*t / 1_000_000).into(),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        ScalarValue::List(arr) => list_json(arr),
        ScalarValue::Struct(arr) => struct_json(arr),
        ScalarValue::Map(arr) => map_json(arr),
        other => Value::String(other.to_string()),
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn list_json(arr: &Arc<ListArray>) -> Value {
    if arr.is_empty() || arr.is_null(0) {
        return Value::Null;
    }
    let inner = arr.value(0);
    Value::Array(
        (0..inner.len())
            .map(|i| {
                ScalarValue::try_from_array(&inner, i)
                    .map(|v| scalar_to_json(&v))
                    .unwrap_or(Value::Null)
            })
            .collect(),
    )
}

fn struct_json(arr: &Arc<StructArray>) -> Value {
    let mut obj = Map::new();
    for (i, f) in arr.fields().iter().enumerate() {
        let v = ScalarValue::try_from_array(arr.column(i), 0)
            .map(|v| scalar_to_json(&v))
            .unwrap_or(Value::Null);
        obj.insert(f.name().clone(), v);
    }
    Value::Object(obj)
}

fn map_json(arr: &Arc<MapArray>) -> Value {
    if arr.is_empty() || arr.is_null(0) {
        return Value::Null;
    }
    let entries = arr.value(0);
    let mut obj = Map::new();
    for i in 0..entries.len() {
        let k = ScalarValue::try_from_array(entries.column(0), i)
            .map(|v| match scalar_to_json(&v) {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .unwrap_or_default();
        let v = ScalarValue::try_from_array(entries.column(1), i)
            .map(|v| scalar_to_json(&v))
            .unwrap_or(Value::Null);
        obj.insert(k, v);
    }
    Value::Object(obj)
}

/// `v` with each struct field named as declared: ksqlDB matches JSON field names to
/// STRUCT fields ignoring case, Arrow's reader does not.
fn declared_case(v: &Value, t: &SqlType) -> Value {
    match (v, t) {
        (Value::Object(obj), SqlType::Struct(fields)) => Value::Object(
            obj.iter()
                .map(
                    |(k, x)| match fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                        Some((n, ft)) => (n.clone(), declared_case(x, ft)),
                        None => (k.clone(), x.clone()),
                    },
                )
                .collect(),
        ),
        (Value::Object(obj), SqlType::Map(_, vt)) => Value::Object(
            obj.iter()
                .map(|(k, x)| (k.clone(), declared_case(x, vt)))
                .collect(),
        ),
        (Value::Array(items), SqlType::Array(it)) => {
            Value::Array(items.iter().map(|x| declared_case(x, it)).collect())
        }
        _ => v.clone(),
    }
}
