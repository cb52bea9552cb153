//! Connect schemas in PostgreSQL: quoted names, column types from schemas (Kafka
//! Connect's logical types included), bounded schema parameters, Decimal digits. The
//! values themselves travel as JSON (`json_rows.rs`).

use crate::api::{Schema, SchemaType};

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

/// A Decimal's unscaled big-endian two's complement bytes with its scale, as text.
/// The largest Decimal scale accepted either way: PostgreSQL's NUMERIC keeps at most
/// 16,383 digits after the decimal point. The scale comes from the record's schema, so
/// it is bounded before it is used as a width.
pub const MAX_DECIMAL_SCALE: i64 = 16_383;

pub const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

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
pub fn decimal_text(bytes: &[u8], scale: i32) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_decimals() {
        assert_eq!(decimal_text(&[0x30, 0x39], 2).as_deref(), Some("123.45"));
        assert_eq!(decimal_text(&[0xff, 0x85], 3).as_deref(), Some("-0.123"));
        assert_eq!(decimal_text(&[0x05], 2).as_deref(), Some("0.05"));
        assert_eq!(decimal_text(&[0x0c], -2).as_deref(), Some("1200"));
        assert_eq!(decimal_text(&[0xf4], -1).as_deref(), Some("-120"));
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(table("s.t"), "\"s\".\"t\"");
        let arr = Schema::array(Schema::new(SchemaType::Int32));
        assert_eq!(column_type(&arr), "INT[]");
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
        assert_eq!(decimal_text(&[1], 2_000_000_000), None);
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
