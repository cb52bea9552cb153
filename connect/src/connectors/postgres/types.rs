//! PostgreSQL column values (read as text) into Connect values with schemas: integers,
//! floats, booleans, text, numeric as Decimal, date, time, timestamp(tz) as Kafka
//! Connect's logical types, json/jsonb and uuid as strings, bytea as bytes, and
//! one-dimensional arrays of these.

use crate::api::calendar::days_from_civil;
use crate::api::{Schema, SchemaType, Value};
use crate::error::{Error, Result};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// The Connect schema of a PostgreSQL type (by name), optional when the column is
/// nullable. `scale` is a numeric column's declared scale.
pub fn schema_for(pg_type: &str, nullable: bool, scale: Option<u32>) -> Schema {
    let base = match pg_type.trim_start_matches('_') {
        "int2" => Schema::new(SchemaType::Int16),
        "int4" => Schema::new(SchemaType::Int32),
        "int8" => Schema::new(SchemaType::Int64),
        "float4" => Schema::new(SchemaType::Float32),
        "float8" => Schema::new(SchemaType::Float64),
        "bool" => Schema::new(SchemaType::Boolean),
        "bytea" => Schema::new(SchemaType::Bytes),
        "numeric" => {
            let mut s = Schema::new(SchemaType::Bytes).named(DECIMAL);
            s.version = Some(1);
            s.parameters = vec![("scale".into(), scale.unwrap_or(0).to_string())];
            s
        }
        "date" => Schema::new(SchemaType::Int32).named(DATE),
        "time" => Schema::new(SchemaType::Int32).named(TIME),
        "timestamp" | "timestamptz" => Schema::new(SchemaType::Int64).named(TIMESTAMP),
        _ => Schema::new(SchemaType::String),
    };
    let s = if pg_type.starts_with('_') {
        Schema::array(base)
    } else {
        base
    };
    if nullable {
        s.optional()
    } else {
        s
    }
}

fn bad(pg_type: &str, text: &str) -> Error {
    Error::Conversion(format!("cannot read PostgreSQL {pg_type} value {text:?}"))
}

fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.get(..2)?.parse().ok()?,
    );
    Some(days_from_civil(y, m, d))
}

/// Milliseconds since midnight of `HH:MM:SS[.fff...]` (any zone suffix dropped).
fn parse_time(s: &str) -> Option<i64> {
    let s = s.split(['+', '-']).next()?;
    let mut it = s.splitn(3, ':');
    let (h, m): (i64, i64) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?);
    let sec: f64 = it.next()?.parse().ok()?;
    Some(h * 3_600_000 + m * 60_000 + (sec * 1000.0).round() as i64)
}

/// Milliseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.f][+zz]` in UTC (the session's
/// time zone is set to UTC, so timestamptz comes back as +00).
fn parse_timestamp(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(' ')?;
    Some(parse_date(date)? * 86_400_000 + parse_time(time)?)
}

/// A numeric's text as a Decimal: unscaled big-endian two's complement bytes at `scale`.
fn decimal(text: &str, scale: u32) -> Option<Vec<u8>> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut frac = frac.to_string();
    while frac.len() < scale as usize {
        frac.push('0');
    }
    frac.truncate(scale as usize);
    let unscaled: i128 = format!("{int}{frac}").parse().ok()?;
    let v = if neg { -unscaled } else { unscaled };
    let bytes = v.to_be_bytes();
    // The shortest two's complement form.
    let mut start = 0;
    while start < 15
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    Some(bytes[start..].to_vec())
}

/// Splits a one-dimensional array literal `{a,"b c",NULL}` into its elements.
fn array_elements(s: &str) -> Option<Vec<Option<String>>> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                item.push(c);
                chars.next();
            }
        }
        out.push(if !quoted && item == "NULL" {
            None
        } else {
            Some(item)
        });
        match chars.next() {
            Some(',') => continue,
            None => return Some(out),
            Some(_) => return None,
        }
    }
}

/// A column value, read as text, as the Connect value `schema` describes.
pub fn value_for(pg_type: &str, schema: &Schema, text: Option<&str>) -> Result<Value> {
    let Some(t) = text else {
        return Ok(Value::Null);
    };
    if let Some(element) = pg_type.strip_prefix('_') {
        let item_schema = schema
            .key
            .as_deref()
            .cloned()
            .unwrap_or_else(|| Schema::new(SchemaType::String));
        let items = array_elements(t).ok_or_else(|| bad(pg_type, t))?;
        return items
            .iter()
            .map(|i| value_for(element, &item_schema, i.as_deref()))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array);
    }
    let v = match pg_type {
        "int2" => t.parse().map(Value::Int16).ok(),
        "int4" => t.parse().map(Value::Int32).ok(),
        "int8" => t.parse().map(Value::Int64).ok(),
        "float4" => t.parse().map(Value::Float32).ok(),
        "float8" => t.parse().map(Value::Float64).ok(),
        "bool" => Some(Value::Boolean(t == "t" || t == "true")),
        "bytea" => t.strip_prefix("\\x").and_then(|h| {
            (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .map(Value::Bytes)
        }),
        "numeric" => {
            let scale = schema
                .parameters
                .iter()
                .find(|(k, _)| k == "scale")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            decimal(t, scale).map(Value::Bytes)
        }
        "date" => parse_date(t).map(|d| Value::Int32(d as i32)),
        "time" => parse_time(t).map(|ms| Value::Int32(ms as i32)),
        "timestamp" | "timestamptz" => parse_timestamp(t).map(Value::Int64),
        _ => Some(Value::String(t.to_string())),
    };
    v.ok_or_else(|| bad(pg_type, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_become_connect_values() {
        let ts = schema_for("timestamp", false, None);
        assert_eq!(
            value_for("timestamp", &ts, Some("2024-03-01 12:00:00.5")).unwrap(),
            Value::Int64(1_709_294_400_500)
        );
        assert_eq!(
            value_for("timestamptz", &ts, Some("1970-01-02 00:00:00+00")).unwrap(),
            Value::Int64(86_400_000)
        );
        let d = schema_for("date", true, None);
        assert!(d.optional);
        assert_eq!(
            value_for("date", &d, Some("2000-03-01")).unwrap(),
            Value::Int32(11_017)
        );
        let n = schema_for("numeric", false, Some(2));
        assert_eq!(
            value_for("numeric", &n, Some("123.45")).unwrap(),
            Value::Bytes(vec![0x30, 0x39])
        );
        assert_eq!(
            value_for("numeric", &n, Some("-0.5")).unwrap(),
            Value::Bytes(vec![0xce])
        );
        let a = schema_for("_int4", false, None);
        assert_eq!(
            value_for("_int4", &a, Some("{1,NULL,3}")).unwrap(),
            Value::Array(vec![Value::Int32(1), Value::Null, Value::Int32(3)])
        );
        let ta = schema_for("_text", false, None);
        assert_eq!(
            value_for("_text", &ta, Some(r#"{a,"b c","d\"e"}"#)).unwrap(),
            Value::Array(vec![
                Value::String("a".into()),
                Value::String("b c".into()),
                Value::String("d\"e".into())
            ])
        );
        assert_eq!(
            value_for("bytea", &schema_for("bytea", false, None), Some("\\x00ff")).unwrap(),
            Value::Bytes(vec![0, 255])
        );
        assert!(value_for("int4", &schema_for("int4", false, None), Some("x")).is_err());
        assert_eq!(
            value_for("uuid", &schema_for("uuid", false, None), Some("u")).unwrap(),
            Value::String("u".into())
        );
    }
}
