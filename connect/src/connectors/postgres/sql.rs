//! Turning Connect values into PostgreSQL: column types from schemas (Kafka Connect's
//! logical types included) and SQL literals. Values travel as escaped literals so the
//! server coerces them to whatever type an existing column has.

use crate::api::{Schema, SchemaType, Value};

/// `"name"` with inner quotes doubled.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A possibly schema-qualified table name: `a.b` -> `"a"."b"`.
pub fn table(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// The column type for a schema, as Confluent's PostgreSQL dialect maps them.
pub fn column_type(s: &Schema) -> String {
    match s.name.as_deref() {
        Some("org.apache.kafka.connect.data.Decimal") => return "NUMERIC".into(),
        Some("org.apache.kafka.connect.data.Date") => return "DATE".into(),
        Some("org.apache.kafka.connect.data.Time") => return "TIME".into(),
        Some("org.apache.kafka.connect.data.Timestamp") => return "TIMESTAMP".into(),
        _ => {}
    }
    match s.ty {
        SchemaType::Int8 | SchemaType::Int16 => "SMALLINT".into(),
        SchemaType::Int32 => "INT".into(),
        SchemaType::Int64 => "BIGINT".into(),
        SchemaType::Float32 => "REAL".into(),
        SchemaType::Float64 => "DOUBLE PRECISION".into(),
        SchemaType::Boolean => "BOOLEAN".into(),
        SchemaType::String => "TEXT".into(),
        SchemaType::Bytes => "BYTEA".into(),
        SchemaType::Array => match s.key.as_deref() {
            Some(item)
                if !matches!(
                    item.ty,
                    SchemaType::Array | SchemaType::Map | SchemaType::Struct
                ) =>
            {
                format!("{}[]", column_type(item))
            }
            _ => "JSONB".into(),
        },
        SchemaType::Map | SchemaType::Struct => "JSONB".into(),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2 + 4);
    s.push_str("'\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('\'');
    s
}

/// A Decimal's unscaled big-endian two's complement bytes with its scale, as text.
fn decimal(bytes: &[u8], scale: u32) -> Option<String> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int, frac) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("0", "")
    };
    let frac = if digits.len() > scale {
        frac.to_string()
    } else {
        format!("{digits:0>scale$}")
    };
    let sign = if neg { "-" } else { "" };
    Some(if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

fn json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Int8(i) => J::from(*i),
        Value::Int16(i) => J::from(*i),
        Value::Int32(i) => J::from(*i),
        Value::Int64(i) => J::from(*i),
        Value::Float32(f) => J::from(*f),
        Value::Float64(f) => J::from(*f),
        Value::String(s) => J::String(s.clone()),
        Value::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        Value::Array(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), json(v)))
                .collect(),
        ),
        Value::Struct(fields) => {
            J::Object(fields.iter().map(|(k, v)| (k.clone(), json(v))).collect())
        }
    }
}

/// A SQL expression for a value of the given schema.
pub fn literal(v: &Value, s: Option<&Schema>) -> String {
    if v.is_null() {
        return "NULL".into();
    }
    let logical = s.and_then(|s| s.name.as_deref());
    match (logical, v) {
        (Some("org.apache.kafka.connect.data.Timestamp"), Value::Int64(ms)) => {
            return format!("(TIMESTAMP 'epoch' + {ms} * INTERVAL '1 millisecond')")
        }
        (Some("org.apache.kafka.connect.data.Date"), Value::Int32(days)) => {
            return format!("(DATE 'epoch' + {days})")
        }
        (Some("org.apache.kafka.connect.data.Time"), Value::Int32(ms)) => {
            return format!("(TIME '00:00' + {ms} * INTERVAL '1 millisecond')")
        }
        (Some("org.apache.kafka.connect.data.Decimal"), Value::Bytes(b)) => {
            let scale = s
                .and_then(|s| s.parameters.iter().find(|(k, _)| k == "scale"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if let Some(d) = decimal(b, scale) {
                return quote(&d);
            }
        }
        _ => {}
    }
    match v {
        Value::Null => "NULL".into(),
        Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Int8(i) => quote(&i.to_string()),
        Value::Int16(i) => quote(&i.to_string()),
        Value::Int32(i) => quote(&i.to_string()),
        Value::Int64(i) => quote(&i.to_string()),
        Value::Float32(f) => quote(&f.to_string()),
        Value::Float64(f) => quote(&f.to_string()),
        Value::String(st) => quote(st),
        Value::Bytes(b) => hex(b),
        Value::Array(items) if s.is_some_and(|s| column_type(s).ends_with("[]")) => {
            let item = s.and_then(|s| s.key.as_deref());
            // Inside ARRAY[...] quoted literals would make a text[]: numbers go bare.
            let rendered: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::Int8(_) | Value::Int16(_) | Value::Int32(_) | Value::Int64(_) => {
                        i.to_string()
                    }
                    Value::Float32(f) if f.is_finite() => f.to_string(),
                    Value::Float64(f) if f.is_finite() => f.to_string(),
                    other => literal(other, item),
                })
                .collect();
            format!(
                "ARRAY[{}]::{}",
                rendered.join(","),
                s.map(column_type).unwrap_or_default()
            )
        }
        other => quote(&json(other).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_and_convert() {
        assert_eq!(literal(&Value::String("it's".into()), None), "'it''s'");
        assert_eq!(literal(&Value::Bytes(vec![0, 255]), None), "'\\x00ff'");
        assert_eq!(decimal(&[0x30, 0x39], 2).as_deref(), Some("123.45"));
        assert_eq!(decimal(&[0xff, 0x85], 3).as_deref(), Some("-0.123"));
        assert_eq!(decimal(&[0x05], 2).as_deref(), Some("0.05"));
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(table("s.t"), "\"s\".\"t\"");
        let arr = Schema::array(Schema::new(SchemaType::Int32));
        assert_eq!(column_type(&arr), "INT[]");
        assert_eq!(
            literal(
                &Value::Array(vec![Value::Int32(1), Value::Int32(2)]),
                Some(&arr)
            ),
            "ARRAY[1,2]::INT[]"
        );
    }
}
