//! ksqlDB's functions over JSON text: EXTRACTJSONFIELD (a JSONPath subset: `$`, `.name`,
//! `['name']`, `[index]`), IS_JSON_STRING, JSON_ARRAY_LENGTH, JSON_ARRAY_CONTAINS,
//! JSON_CONCAT, JSON_KEYS, JSON_RECORDS and TO_JSON_STRING. Text that is not JSON
//! gives NULL (or false), never an error.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ScalarUDF;
use serde_json::value::RawValue;
use serde_json::Value;

use super::maps::{map_type, map_value};
use super::row::{
    int, is_text, list_type, list_value, no_signature, text, text_args, udf, variadic_udf,
};

pub fn all() -> Vec<ScalarUDF> {
    vec![
        udf(
            "extractjsonfield",
            &[2],
            text_args("EXTRACTJSONFIELD", DataType::Utf8),
            |a, _| Ok(ScalarValue::Utf8(extract(a))),
        ),
        udf(
            "is_json_string",
            &[1],
            text_args("IS_JSON_STRING", DataType::Boolean),
            |a, _| {
                Ok(ScalarValue::Boolean(Some(text(&a[0]).is_some_and(|s| {
                    serde_json::from_str::<Value>(s).is_ok()
                }))))
            },
        ),
        udf(
            "json_array_length",
            &[1],
            text_args("JSON_ARRAY_LENGTH", DataType::Int32),
            |a, _| {
                Ok(ScalarValue::Int32(match parse(&a[0]) {
                    Some(Value::Array(items)) => Some(items.len() as i32),
                    _ => None,
                }))
            },
        ),
        udf(
            "json_array_contains",
            &[2],
            |t| match t {
                [s, _] if is_text(s) || s == &DataType::Null => Ok(DataType::Boolean),
                _ => no_signature("JSON_ARRAY_CONTAINS", t),
            },
            |a, _| {
                Ok(ScalarValue::Boolean(Some(match parse(&a[0]) {
                    Some(Value::Array(items)) => items.iter().any(|x| json_equals(x, &a[1])),
                    _ => false,
                })))
            },
        ),
        variadic_udf(
            "json_concat",
            |t| {
                if t.len() >= 2 && t.iter().all(|x| is_text(x) || x == &DataType::Null) {
                    Ok(DataType::Utf8)
                } else {
                    no_signature("JSON_CONCAT", t)
                }
            },
            |a, _| Ok(ScalarValue::Utf8(concat(a))),
        ),
        udf(
            "json_keys",
            &[1],
            text_args("JSON_KEYS", list_type(&DataType::Utf8)),
            |a, r| {
                Ok(match parse(&a[0]) {
                    Some(Value::Object(o)) => {
                        let keys: Vec<ScalarValue> = o
                            .keys()
                            .map(|k| ScalarValue::Utf8(Some(k.clone())))
                            .collect();
                        list_value(&keys, &DataType::Utf8)
                    }
                    _ => ScalarValue::try_from(r)?,
                })
            },
        ),
        udf(
            "json_records",
            &[1],
            text_args("JSON_RECORDS", map_type(&DataType::Utf8, &DataType::Utf8)),
            |a, r| {
                Ok(match parse(&a[0]) {
                    Some(Value::Object(o)) => {
                        let entries: Vec<(ScalarValue, ScalarValue)> = o
                            .iter()
                            .map(|(k, v)| {
                                (
                                    ScalarValue::Utf8(Some(k.clone())),
                                    ScalarValue::Utf8(Some(v.to_string())),
                                )
                            })
                            .collect();
                        map_value(&entries, r)?
                    }
                    _ => ScalarValue::try_from(r)?,
                })
            },
        ),
        udf(
            "to_json_string",
            &[1],
            |_| Ok(DataType::Utf8),
            |a, _| {
                Ok(ScalarValue::Utf8(Some(
                    crate::format::scalar_to_json(&a[0]).to_string(),
                )))
            },
        ),
    ]
}

fn parse(v: &ScalarValue) -> Option<Value> {
    serde_json::from_str(text(v)?).ok()
}

/// EXTRACTJSONFIELD(json, path): the node's text — a string's contents, any other
/// node as JSON (a number keeps its digits as written).
fn extract(a: &[ScalarValue]) -> Option<String> {
    let (json, path) = (text(&a[0])?, text(&a[1])?);
    // Like Jackson, read the first JSON value and ignore what follows it.
    let mut de = serde_json::Deserializer::from_str(json);
    let mut node: &RawValue = serde::Deserialize::deserialize(&mut de).ok()?;
    for step in path_steps(path)? {
        node = match step {
            Step::Field(name) => {
                let obj: HashMap<String, &RawValue> = serde_json::from_str(node.get()).ok()?;
                obj.get(&name).copied()?
            }
            Step::Index(i) => {
                let items: Vec<&RawValue> = serde_json::from_str(node.get()).ok()?;
                *items.get(usize::try_from(i).ok()?)?
            }
        };
    }
    let raw = node.get().trim();
    match serde_json::from_str::<Value>(raw).ok()? {
        Value::String(s) => Some(s),
        Value::Null => None,
        Value::Number(_) | Value::Bool(_) => Some(raw.to_string()),
        other => Some(other.to_string()),
    }
}

enum Step {
    Field(String),
    Index(i64),
}

fn path_steps(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(Step::Field(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inside = r[..end].trim();
            let quoted = inside
                .strip_prefix('\'')
                .and_then(|x| x.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|x| x.strip_suffix('"')));
            steps.push(match quoted {
                Some(name) => Step::Field(name.to_string()),
                None => Step::Index(inside.parse().ok()?),
            });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Whether a JSON array element equals a SQL value (same kind and value).
fn json_equals(x: &Value, v: &ScalarValue) -> bool {
    if v.is_null() {
        return x.is_null();
    }
    match x {
        Value::String(s) => text(v) == Some(s.as_str()),
        Value::Bool(b) => matches!(v, ScalarValue::Boolean(Some(c)) if c == b),
        Value::Number(n) => match (n.as_i64(), int(v)) {
            (Some(a), Some(b)) => a == b,
            _ => match (n.as_f64(), v) {
                (Some(a), ScalarValue::Float64(Some(b))) => a == *b,
                _ => false,
            },
        },
        _ => false,
    }
}

/// JSON_CONCAT: objects merge (later keys win); otherwise every argument becomes
/// array elements (an array its elements, anything else itself). NULL if any
/// argument is NULL or not JSON.
fn concat(a: &[ScalarValue]) -> Option<String> {
    let values = a.iter().map(parse).collect::<Option<Vec<Value>>>()?;
    if values.iter().all(Value::is_object) {
        let mut out = serde_json::Map::new();
        for v in values {
            if let Value::Object(o) = v {
                out.extend(o);
            }
        }
        return Some(Value::Object(out).to_string());
    }
    let mut items = Vec::new();
    for v in values {
        match v {
            Value::Array(a) => items.extend(a),
            other => items.push(other),
        }
    }
    Some(Value::Array(items).to_string())
}
