use datafusion::common::ScalarValue;
use serde_json::json;

use super::*;
use crate::catalog::Column;
use crate::parser::types::SqlType;

fn col(name: &str, t: SqlType) -> Column {
    Column::new(name, t, false)
}

#[test]
fn json_matches_fields_case_insensitively_and_fills_nulls() {
    let (a, b) = (
        col("NICKNAME", SqlType::String),
        col("AGE", SqlType::Integer),
    );
    let row = decode_value(
        Format::Json,
        Some(br#"{"nickname":"zed","Age":33,"X":1}"#),
        &[&a, &b],
        true,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        row,
        vec![
            ScalarValue::Utf8(Some("zed".into())),
            ScalarValue::Int32(Some(33))
        ]
    );
    let row = decode_value(Format::Json, Some(br#"{"AGE":40}"#), &[&a, &b], true)
        .unwrap()
        .unwrap();
    assert_eq!(row[0], ScalarValue::Utf8(None));
    assert!(decode_value(Format::Json, Some(b"{\"AGE\": 2"), &[&a, &b], true).is_err());
    assert!(decode_value(Format::Json, None, &[&a, &b], true)
        .unwrap()
        .is_none());
}

#[test]
fn delimited_round_trip_nulls_and_java_doubles() {
    let cols = [
        col("T", SqlType::Double),
        col("U", SqlType::String),
        col("OK", SqlType::Boolean),
    ];
    let refs: Vec<&Column> = cols.iter().collect();
    let row = decode_value(Format::Delimited, Some(b"31,F,"), &refs, true)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(encode_value(Format::Delimited, &row, &refs, true).unwrap()).unwrap(),
        "31.0,F,"
    );
    // Commons CSV 1.4's minimal quoting (QTT date.json, bytes-and-strings.json): a first
    // field not starting with a letter or digit is quoted, a later one only from '#' down.
    let row = decode_value(Format::Delimited, Some(b"-1.5,-x,"), &refs, true)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(encode_value(Format::Delimited, &row, &refs, true).unwrap()).unwrap(),
        "\"-1.5\",-x,"
    );
    assert!(decode_value(Format::Delimited, Some(b"1,a,true,extra"), &refs, true).is_err());
    assert!(decode_value(Format::Delimited, Some(b"x,a,true"), &refs, true).is_err());
}

#[test]
fn kafka_format_and_windowed_keys() {
    let k = Column::new("K", SqlType::Integer, true);
    let bytes = encode_key(
        Format::Kafka,
        &[ScalarValue::Int32(Some(7))],
        &[&k],
        Some((crate::parser::ast::WindowKind::Session, (10, 20))),
    )
    .unwrap()
    .unwrap();
    assert_eq!(bytes.len(), 4 + 16);
    let (row, w) = decode_key(
        Format::Kafka,
        Some(&bytes),
        &[&k],
        Some(crate::parser::ast::WindowKind::Session),
    )
    .unwrap();
    assert_eq!(row, vec![ScalarValue::Int32(Some(7))]);
    assert_eq!(w, Some((10, 20)));
    let v = col("CNT", SqlType::Bigint);
    let row = decode_value(Format::Kafka, Some(&(-3i64).to_be_bytes()), &[&v], true)
        .unwrap()
        .unwrap();
    assert_eq!(row, vec![ScalarValue::Int64(Some(-3))]);
    assert!(decode_value(Format::Kafka, Some(&[1, 2, 3]), &[&v], true).is_err());
}

#[test]
fn json_values_of_nested_types() {
    let t = SqlType::Array(Box::new(SqlType::Integer));
    let v = json_to_scalar(&json!([1, null, 3]), &t).unwrap();
    assert_eq!(scalar_to_json(&v), json!([1, null, 3]));
    let t = SqlType::Struct(vec![("A".into(), SqlType::String)]);
    let v = json_to_scalar(&json!({"A": "x"}), &t).unwrap();
    assert_eq!(scalar_to_json(&v), json!({"A": "x"}));
}

/// The old way: the whole object as a map, then each column looked up (exact name
/// first, then case-insensitively) — the field-by-field decoder must agree with it.
fn decode_through_a_map(bytes: &[u8], columns: &[&Column]) -> Result<Row> {
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(bad)?;
    let obj = json.as_object().ok_or_else(|| bad("not an object"))?;
    columns
        .iter()
        .map(|c| {
            let field = obj.get(&c.name).or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                    .map(|(_, v)| v)
            });
            match field {
                None => Ok(null_of(&c.sql_type)),
                Some(v) => json_to_scalar(v, &c.sql_type),
            }
        })
        .collect()
}

#[test]
fn json_objects_decode_field_by_field_as_through_a_map() {
    let cols = [
        col("ID", SqlType::Integer),
        col("BIG", SqlType::Bigint),
        col("D", SqlType::Double),
        col("NAME", SqlType::String),
        col("OK", SqlType::Boolean),
        col("TAGS", SqlType::Array(Box::new(SqlType::String))),
        col(
            "M",
            SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Integer)),
        ),
        col("DEC", SqlType::Decimal(6, 2)),
    ];
    let refs: Vec<&Column> = cols.iter().collect();
    let inputs: &[&str] = &[
        r#"{"ID": 1, "BIG": 9000000000, "D": 1.5, "NAME": "a", "OK": true, "TAGS": ["x", null], "M": {"k": 2}, "DEC": 12.5}"#,
        r#"{"id": "7", "big": 3.0, "d": 2, "name": 42, "ok": "TRUE", "dec": "1.25"}"#,
        r#"{"id": 1, "ID": 2, "Id": 3}"#,
        r#"{"Id": 3, "id": 4, "ID": 5, "ID": 6}"#,
        r#"{"name": "first", "Name": "second", "name": "third"}"#,
        r#"{"NAME": {"nested": [1, 2, {"deep": true}]}, "OTHER": [1, {"a": "b"}]}"#,
        r#"{"ID": null, "D": -0.0, "BIG": -12, "NAME": "esc\"aped\u00e9"}"#,
        r#"  { "ID" : 2147483647 , "D" : 1e300 }  "#,
        r#"{}"#,
    ];
    for input in inputs {
        let want = decode_through_a_map(input.as_bytes(), &refs).unwrap();
        let got = decode_value(Format::Json, Some(input.as_bytes()), &refs, true)
            .unwrap()
            .unwrap();
        assert_eq!(got, want, "{input}");
    }
    for bad_input in [
        r#"{"ID": 2147483648}"#,
        r#"{"ID": "x"}"#,
        r#"{"ID": 1,}"#,
        r#"{"ID": 1} trailing"#,
        r#"{"OTHER": [1, }"#,
    ] {
        let got = decode_value(Format::Json, Some(bad_input.as_bytes()), &refs, true);
        assert!(got.is_err(), "{bad_input}: {got:?}");
    }
    let err = decode_value(Format::Json, Some(br#"{"ID": "x"}"#), &refs, true).unwrap_err();
    assert!(err.to_string().contains("column ID"), "{err}");
}
