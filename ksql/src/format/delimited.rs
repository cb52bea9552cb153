//! The DELIMITED format: comma-separated fields, `"`-quoted when they hold a comma or
//! a quote; an empty field is NULL.

use datafusion::common::ScalarValue;

use super::json::{json_to_scalar, scalar_to_json};
use super::{bad, null_of, Row};
use crate::catalog::Column;
use crate::error::Result;
use crate::parser::types::SqlType;

fn split(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

pub fn decode(bytes: &[u8], columns: &[&Column]) -> Result<Row> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("a DELIMITED value is not UTF-8"))?;
    let fields = split(text);
    if fields.len() != columns.len() {
        return Err(bad(format!(
            "Unexpected field count, csvFields:{} schemaFields:{}",
            fields.len(),
            columns.len()
        )));
    }
    fields
        .iter()
        .zip(columns)
        .map(|(f, c)| {
            if f.is_empty() {
                return Ok(null_of(&c.sql_type));
            }
            let json = match c.sql_type {
                SqlType::String | SqlType::Bytes => serde_json::Value::String(f.clone()),
                _ => serde_json::from_str(f.trim()).map_err(|_| {
                    bad(format!(
                        "column {}: '{f}' is not a valid {}",
                        c.name, c.sql_type
                    ))
                })?,
            };
            json_to_scalar(&json, &c.sql_type).map_err(|e| bad(format!("column {}: {e}", c.name)))
        })
        .collect()
}

pub fn encode(row: &[ScalarValue]) -> Vec<u8> {
    row.iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_null() {
                return String::new();
            }
            let s = match v {
                ScalarValue::Float64(Some(f)) => super::java_double(*f),
                ScalarValue::Float32(Some(f)) => super::java_double(*f as f64),
                ScalarValue::Decimal128(Some(x), _, scale) => super::decimal_text(*x, *scale),
                _ => match scalar_to_json(v) {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                },
            };
            if needs_quotes(&s, i == 0) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

/// Apache Commons CSV's minimal quoting (the 1.4 rules ksqlDB's DELIMITED format writes
/// with): an empty first field, a first field not starting with a letter or digit
/// (`"-10"`), a field starting with a character up to '#', holding a delimiter, quote
/// or line break, or ending in whitespace.
fn needs_quotes(s: &str, first: bool) -> bool {
    let Some(c) = s.chars().next() else {
        return first;
    };
    (first && !c.is_ascii_alphanumeric())
        || c <= '#'
        || s.contains([',', '"', '\n', '\r'])
        || s.chars().last().is_some_and(|c| c <= ' ')
}
