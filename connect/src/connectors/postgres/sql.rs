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
/// The largest Decimal scale accepted either way: PostgreSQL's NUMERIC keeps at most
/// 16,383 digits after the decimal point. The scale comes from the record's schema, so
/// it is bounded before it is used as a width.
pub const MAX_DECIMAL_SCALE: i64 = 16_383;

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// The `scale` parameter of a Decimal schema, checked.
pub fn decimal_scale(s: &Schema) -> Result<i32, String> {
    let raw = s
        .parameters
        .iter()
        .find(|(k, _)| k == "scale")
        .map(|(_, v)| v.as_str())
        .ok_or("a Decimal schema has no scale parameter")?;
    let scale: i64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("Decimal scale '{raw}' is not an integer"))?;
    if scale.abs() > MAX_DECIMAL_SCALE {
        return Err(format!(
            "Decimal scale {scale} is outside -{MAX_DECIMAL_SCALE}..{MAX_DECIMAL_SCALE}"
        ));
    }
    Ok(scale as i32)
}

/// Checks the parameters this sink uses, in a schema and every schema inside it.
pub fn check_schema(s: &Schema) -> Result<(), String> {
    if s.name.as_deref() == Some(DECIMAL) {
        decimal_scale(s)?;
    }
    for f in s.fields.iter() {
        check_schema(&f.schema).map_err(|e| format!("field {}: {e}", f.name))?;
    }
    for inner in [&s.key, &s.value].into_iter().flatten() {
        check_schema(inner)?;
    }
    Ok(())
}

/// A Decimal's unscaled big-endian two's complement bytes as SQL text at `scale`
/// (negative scales multiply by powers of ten, as Java's BigDecimal).
fn decimal(bytes: &[u8], scale: i32) -> Option<String> {
    if bytes.is_empty() || bytes.len() > 16 || i64::from(scale).abs() > MAX_DECIMAL_SCALE {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    let neg = v < 0;
    let mut digits = v.unsigned_abs().to_string();
    if scale < 0 {
        if v != 0 {
            digits.push_str(&"0".repeat(scale.unsigned_abs() as usize));
        }
        return Some(format!("{}{digits}", if neg { "-" } else { "" }));
    }
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
        (Some(DECIMAL), Value::Bytes(b)) => {
            // Schemas were checked (check_schema) before literals are made.
            let scale = s.and_then(|s| decimal_scale(s).ok()).unwrap_or(0);
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
        assert_eq!(decimal(&[0x0c], -2).as_deref(), Some("1200"));
        assert_eq!(decimal(&[0xf4], -1).as_deref(), Some("-120"));
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

    #[test]
    fn schema_parameters_from_records_are_bounded() {
        // A record's schema once set the Decimal scale to 4,000,000,000, which was used
        // as a formatting width and aborted the worker on the allocation.
        let mut d = Schema::new(SchemaType::Bytes);
        d.name = Some(DECIMAL.into());
        d.parameters = vec![("scale".into(), "4000000000".into())];
        let e = check_schema(&d).unwrap_err();
        assert!(e.contains("outside -16383..16383"), "{e}");
        assert_eq!(decimal(&[1], 2_000_000_000), None);
        let mut st = Schema::new(SchemaType::Struct);
        st.fields = std::sync::Arc::new(vec![crate::api::Field {
            name: "price".into(),
            schema: Schema::array(d.clone()),
        }]);
        assert!(check_schema(&st).unwrap_err().starts_with("field price: "));
        d.parameters = vec![("scale".into(), "two".into())];
        assert!(check_schema(&d).unwrap_err().contains("not an integer"));
        d.parameters.clear();
        assert!(check_schema(&d).unwrap_err().contains("no scale"));
        d.parameters = vec![("scale".into(), "-3".into())];
        check_schema(&d).unwrap();
    }
}
