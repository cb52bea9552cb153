//! Connect values in COPY's text format: the sink streams a batch of a table with
//! `COPY ... FROM STDIN` and PostgreSQL converts each field with the column's own input
//! function (so an existing column of another type still takes the value, as a literal
//! would). Fields are separated by tabs, rows end with a newline, NULL is `\N`, and a
//! backslash, tab, newline or carriage return inside a field is escaped with a
//! backslash. Kafka Connect's logical types become the text PostgreSQL reads for them
//! (as in `json_rows.rs`); arrays of primitives become array literals (`{1,2}`) for
//! array columns; maps, structs and arrays of them become JSON for JSONB columns.

use super::json_rows::{self, float_text as float, hex_digits as hex, integer};
use super::sql::{decimal_scale, decimal_text, DECIMAL};
use crate::api::{Schema, SchemaType, Value};

/// Appends `v`, escaped for COPY, as a field for a column of schema `s`.
pub fn field(v: &Value, s: Option<&Schema>, out: &mut String) {
    match v {
        Value::Null => out.push_str("\\N"),
        Value::Array(items) if primitive_items(s) => {
            let mut literal = String::new();
            array_literal(items, s.and_then(|s| s.key.as_deref()), &mut literal);
            escape(&literal, out);
        }
        Value::Array(_) | Value::Map(_) | Value::Struct(_) => {
            let mut json = String::new();
            json_rows::cell(v, s, &mut json);
            escape(&json, out);
        }
        Value::String(text) => escape(text, out),
        Value::Bytes(b) if s.and_then(|s| s.name.as_deref()) != Some(DECIMAL) => {
            // bytea's hex input, its backslash escaped for COPY.
            out.push_str("\\\\x");
            hex(b, out);
        }
        scalar => {
            // Numbers, booleans and logical types: text with nothing to escape.
            scalar_text(scalar, s, out);
        }
    }
}

/// Arrays whose items are primitives go to array columns (as `column_type` makes them).
fn primitive_items(s: Option<&Schema>) -> bool {
    s.and_then(|s| s.key.as_deref()).is_some_and(|item| {
        !matches!(
            item.ty,
            SchemaType::Array | SchemaType::Map | SchemaType::Struct
        )
    })
}

/// `{a,b,...}`: items double-quoted where they are text, NULL unquoted.
fn array_literal(items: &[Value], item: Option<&Schema>, out: &mut String) {
    out.push('{');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            Value::Null => out.push_str("NULL"),
            Value::String(text) => quoted(text, out),
            Value::Bytes(b) if item.and_then(|s| s.name.as_deref()) != Some(DECIMAL) => {
                let mut text = String::from("\\x");
                hex(b, &mut text);
                quoted(&text, out);
            }
            scalar => {
                let mut text = String::new();
                scalar_text(scalar, item, &mut text);
                quoted(&text, out);
            }
        }
    }
    out.push('}');
}

/// An array item in double quotes, its quotes and backslashes escaped.
fn quoted(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// The text of a number, boolean or logical-type value (never needs escaping).
fn scalar_text(v: &Value, s: Option<&Schema>, out: &mut String) {
    let logical = s.and_then(|s| s.name.as_deref());
    match (logical, v) {
        (Some(DECIMAL), Value::Bytes(b)) => {
            let scale = s.and_then(|s| decimal_scale(s).ok()).unwrap_or(0);
            match decimal_text(b, scale) {
                Some(d) => out.push_str(&d),
                None => {
                    out.push_str("\\\\x");
                    hex(b, out);
                }
            }
        }
        (Some(_), Value::Int64(_) | Value::Int32(_)) => {
            // Timestamp, Date, Time: json_rows writes them as quoted strings.
            let mut json = String::new();
            json_rows::cell(v, s, &mut json);
            out.push_str(json.trim_matches('"'));
        }
        (_, Value::Boolean(b)) => out.push_str(if *b { "t" } else { "f" }),
        (_, Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_)) => {
            integer(v, out);
        }
        (_, Value::Float32(f)) => float(f64::from(*f), out),
        (_, Value::Float64(f)) => float(*f, out),
        (_, other) => escape(&other.to_string(), out),
    }
}

/// `text` with COPY's escapes: backslash, tab, newline and carriage return.
pub fn escape(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_copy_text_fields() {
        let ts = Schema::new(SchemaType::Int64).named("org.apache.kafka.connect.data.Timestamp");
        let day = Schema::new(SchemaType::Int32).named("org.apache.kafka.connect.data.Date");
        let strings = Schema::array(Schema::string());
        let ints = Schema::array(Schema::new(SchemaType::Int32));
        let s = |t: &str| Value::String(t.into());
        let cases: [(Value, Option<&Schema>, &str); 10] = [
            (
                Value::Int64(1_709_210_096_789),
                Some(&ts),
                "2024-02-29 12:34:56.789",
            ),
            (Value::Int32(-719_163), Some(&day), "0001-12-31 BC"),
            (Value::Null, None, "\\N"),
            (Value::Bytes(vec![0, 255]), None, "\\\\x00ff"),
            (s("a\tb\\c\nd\re\""), None, "a\\tb\\\\c\\nd\\re\""),
            (Value::Float64(f64::NAN), None, "NaN"),
            (Value::Float32(-f32::INFINITY), None, "-Infinity"),
            // {"x y",NULL,"q\"\\"} with COPY's backslashes doubled.
            (
                Value::Array(vec![s("x y"), Value::Null, s("q\"\\")]),
                Some(&strings),
                "{\"x y\",NULL,\"q\\\\\"\\\\\\\\\"}",
            ),
            (
                Value::Array(vec![Value::Int32(1), Value::Int32(-2)]),
                Some(&ints),
                "{\"1\",\"-2\"}",
            ),
            (
                Value::Map(vec![(s("k"), s("a\\b"))]),
                None,
                "{\"k\":\"a\\\\\\\\b\"}",
            ),
        ];
        for (value, schema, want) in cases {
            let mut got = String::new();
            field(&value, schema, &mut got);
            assert_eq!(got, want, "{value:?}");
        }
        let mut b = String::new();
        field(&Value::Boolean(true), None, &mut b);
        assert_eq!(b, "t");
    }
}
