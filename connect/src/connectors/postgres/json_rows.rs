//! Connect values as JSON, for the sink's JSONB columns (maps, structs, arrays of
//! them: `copy_rows.rs` writes that JSON as a COPY field) and the texts both share.
//! Kafka Connect's logical types become the text PostgreSQL reads for them: Timestamp
//! `YYYY-MM-DD HH:MM:SS.mmm` (UTC), Date `YYYY-MM-DD`, Time `HH:MM:SS.mmm`, Decimal its
//! digits; bytes are `\x` hex; arrays are JSON arrays; maps and structs JSON objects.

use std::fmt::Write as _;

use super::sql::{decimal_scale, decimal_text, DECIMAL};
use crate::api::calendar::civil;
use crate::api::{Schema, Value};

/// Appends `v` as a JSON value for a column of schema `s`.
pub fn cell(v: &Value, s: Option<&Schema>, out: &mut String) {
    let logical = s.and_then(|s| s.name.as_deref());
    match (logical, v) {
        (_, Value::Null) => out.push_str("null"),
        (Some("org.apache.kafka.connect.data.Timestamp"), Value::Int64(ms)) => {
            let days = ms.div_euclid(86_400_000);
            out.push('"');
            date(days, out);
            out.push(' ');
            time(ms.rem_euclid(86_400_000), out);
            out.push('"');
        }
        (Some("org.apache.kafka.connect.data.Date"), Value::Int32(days)) => {
            out.push('"');
            date(i64::from(*days), out);
            out.push('"');
        }
        (Some("org.apache.kafka.connect.data.Time"), Value::Int32(ms)) => {
            out.push('"');
            time(i64::from(*ms).rem_euclid(86_400_000), out);
            out.push('"');
        }
        (Some(DECIMAL), Value::Bytes(b)) => {
            let scale = s.and_then(|s| decimal_scale(s).ok()).unwrap_or(0);
            match decimal_text(b, scale) {
                Some(d) => {
                    out.push('"');
                    out.push_str(&d);
                    out.push('"');
                }
                None => hex(b, out),
            }
        }
        (_, Value::Boolean(b)) => out.push_str(if *b { "true" } else { "false" }),
        (_, Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_)) => {
            integer(v, out);
        }
        (_, Value::Float32(f)) => float(f64::from(*f), out),
        (_, Value::Float64(f)) => float(*f, out),
        (_, Value::String(st)) => string(st, out),
        (_, Value::Bytes(b)) => hex(b, out),
        (_, Value::Array(items)) => {
            let item = s.and_then(|s| s.key.as_deref());
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                cell(v, item, out);
            }
            out.push(']');
        }
        (_, Value::Map(entries)) => {
            let values = s.and_then(|s| s.value.as_deref());
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match k {
                    Value::String(k) => string(k, out),
                    other => string(&other.to_string(), out),
                }
                out.push(':');
                cell(v, values, out);
            }
            out.push('}');
        }
        (_, Value::Struct(fields)) => {
            out.push('{');
            for (i, (name, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(name, out);
                out.push(':');
                let field = s.and_then(|s| s.field(name)).map(|f| &f.schema);
                cell(v, field, out);
            }
            out.push('}');
        }
    }
}

pub(super) fn push(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// An integer's digits (nothing for other values).
pub(super) fn integer(v: &Value, out: &mut String) {
    match v {
        Value::Int8(i) => push(out, i),
        Value::Int16(i) => push(out, i),
        Value::Int32(i) => push(out, i),
        Value::Int64(i) => push(out, i),
        _ => {}
    }
}

/// A float as PostgreSQL reads it: its digits, or NaN, Infinity, -Infinity.
pub(super) fn float_text(f: f64, out: &mut String) {
    if f.is_finite() {
        push(out, f);
    } else if f.is_nan() {
        out.push_str("NaN");
    } else if f > 0.0 {
        out.push_str("Infinity");
    } else {
        out.push_str("-Infinity");
    }
}

fn float(f: f64, out: &mut String) {
    if f.is_finite() {
        push(out, f);
    } else {
        out.push('"');
        float_text(f, out);
        out.push('"');
    }
}

/// Bytes as lowercase hex digits.
pub(super) fn hex_digits(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

fn hex(bytes: &[u8], out: &mut String) {
    out.push_str("\"\\\\x");
    hex_digits(bytes, out);
    out.push('"');
}

/// A JSON string.
pub fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => push(out, format_args!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `YYYY-MM-DD` for days since 1970-01-01 (proleptic Gregorian; BC as PostgreSQL
/// writes it).
fn date(days: i64, out: &mut String) {
    let (year, month, day) = civil(days);
    if year > 0 {
        let _ = write!(out, "{year:04}-{month:02}-{day:02}");
    } else {
        let _ = write!(out, "{:04}-{month:02}-{day:02} BC", 1 - year);
    }
}

/// `HH:MM:SS.mmm` for milliseconds since midnight.
fn time(ms: i64, out: &mut String) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SchemaType;

    fn text(v: &Value, s: Option<&Schema>) -> String {
        let mut out = String::new();
        cell(v, s, &mut out);
        out
    }

    #[test]
    fn logical_types_as_postgres_reads_them() {
        let named = |ty, name: &str| Schema::new(ty).named(name);
        let ts = named(SchemaType::Int64, "org.apache.kafka.connect.data.Timestamp");
        assert_eq!(
            text(&Value::Int64(0), Some(&ts)),
            r#""1970-01-01 00:00:00.000""#
        );
        assert_eq!(
            text(&Value::Int64(1_709_210_096_789), Some(&ts)),
            r#""2024-02-29 12:34:56.789""#
        );
        assert_eq!(
            text(&Value::Int64(-1), Some(&ts)),
            r#""1969-12-31 23:59:59.999""#
        );
        let d = named(SchemaType::Int32, "org.apache.kafka.connect.data.Date");
        assert_eq!(text(&Value::Int32(-719_162), Some(&d)), r#""0001-01-01""#);
        assert_eq!(
            text(&Value::Int32(-719_163), Some(&d)),
            r#""0001-12-31 BC""#
        );
        let t = named(SchemaType::Int32, "org.apache.kafka.connect.data.Time");
        assert_eq!(
            text(&Value::Int32(45_296_007), Some(&t)),
            r#""12:34:56.007""#
        );
        assert_eq!(text(&Value::Bytes(vec![0, 255]), None), r#""\\x00ff""#);
        assert_eq!(
            text(&Value::String("a\"b\\\n".into()), None),
            r#""a\"b\\\u000a""#
        );
        assert_eq!(text(&Value::Float64(f64::NAN), None), r#""NaN""#);
        assert_eq!(
            text(&Value::Float32(-f32::INFINITY), None),
            r#""-Infinity""#
        );
        assert_eq!(
            text(
                &Value::Map(vec![(Value::Int32(1), Value::Boolean(true))]),
                None
            ),
            r#"{"1":true}"#
        );
    }
}
