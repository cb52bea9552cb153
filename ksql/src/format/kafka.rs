//! The KAFKA format: a single column in Kafka's own serializers.

use datafusion::common::ScalarValue;

use super::{bad, null_of, Row};
use crate::catalog::Column;
use crate::error::Result;
use crate::parser::types::SqlType;

fn single<'a>(columns: &[&'a Column]) -> Result<&'a Column> {
    match columns {
        [c] => Ok(c),
        _ => Err(bad(format!(
            "the KAFKA format holds exactly one column, not {}",
            columns.len()
        ))),
    }
}

pub fn decode(bytes: &[u8], columns: &[&Column]) -> Result<Row> {
    let c = single(columns)?;
    let fixed = |n: usize| -> Result<&[u8]> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(bad(format!(
                "column {}: {} needs {n} bytes, found {}",
                c.name,
                c.sql_type,
                bytes.len()
            )))
        }
    };
    let v = match &c.sql_type {
        SqlType::Integer => {
            ScalarValue::Int32(Some(i32::from_be_bytes(fixed(4)?.try_into().map_err(bad)?)))
        }
        SqlType::Bigint => {
            ScalarValue::Int64(Some(i64::from_be_bytes(fixed(8)?.try_into().map_err(bad)?)))
        }
        SqlType::Double => {
            ScalarValue::Float64(Some(f64::from_be_bytes(fixed(8)?.try_into().map_err(bad)?)))
        }
        SqlType::String => ScalarValue::Utf8(Some(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| bad(format!("column {}: not UTF-8", c.name)))?,
        )),
        SqlType::Bytes => ScalarValue::Binary(Some(bytes.to_vec())),
        other => {
            return Err(bad(format!(
                "column {}: the KAFKA format cannot hold {other}",
                c.name
            )))
        }
    };
    Ok(vec![v])
}

pub fn encode(row: &[ScalarValue], columns: &[&Column]) -> Result<Vec<u8>> {
    let c = single(columns)?;
    let v = row.first().cloned().unwrap_or_else(|| null_of(&c.sql_type));
    let cast = v
        .cast_to(&c.sql_type.to_arrow())
        .map_err(|e| bad(format!("column {}: {e}", c.name)))?;
    Ok(match cast {
        ScalarValue::Int32(Some(i)) => i.to_be_bytes().to_vec(),
        ScalarValue::Int64(Some(i)) => i.to_be_bytes().to_vec(),
        ScalarValue::Float64(Some(f)) => f.to_be_bytes().to_vec(),
        ScalarValue::Utf8(Some(s)) => s.into_bytes(),
        ScalarValue::Binary(Some(b)) => b,
        v if v.is_null() => Vec::new(),
        other => {
            return Err(bad(format!(
                "column {}: the KAFKA format cannot hold {other:?}",
                c.name
            )))
        }
    })
}
