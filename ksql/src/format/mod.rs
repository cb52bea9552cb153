//! Record formats: keys and values as ksqlDB writes them, decoded into rows of
//! DataFusion `ScalarValue`s and encoded back.
//! - JSON: an object with one field per value column (matched case-insensitively on
//!   read), or the bare value when `WRAP_SINGLE_VALUE=false`.
//! - DELIMITED: comma-separated fields in column order; an empty field is NULL.
//! - KAFKA: one column in Kafka's own serializers (big-endian INT/BIGINT/DOUBLE, UTF-8).
//!
//! Header columns take their values from the record's headers (`headers`).
//!
//! Windowed keys append the window as Kafka Streams does: 8-byte start for time
//! windows, 8-byte end then 8-byte start for session windows.

mod batch_row;
mod cell;
mod delimited;
mod headers;
mod json;
mod json_object;
mod kafka;
pub mod timestamp;

pub use batch_row::BatchRowEncoder;
pub use cell::Cell;
pub use headers::{header_value, Headers};
pub use json::{json_to_scalar, scalar_to_json};

use datafusion::common::ScalarValue;

use crate::catalog::{Column, Format};
use crate::error::{Error, Result};
use crate::parser::ast::WindowKind;
use crate::parser::types::SqlType;

pub type Row = Vec<ScalarValue>;

/// A window attached to a key: (start, end) in ms.
pub type WindowBounds = (i64, i64);

pub fn null_of(t: &SqlType) -> ScalarValue {
    ScalarValue::try_from(&t.to_arrow()).unwrap_or(ScalarValue::Null)
}

/// Decodes a value into the value columns; `Ok(None)` is a tombstone.
pub fn decode_value(
    format: Format,
    bytes: Option<&[u8]>,
    columns: &[&Column],
    wrap_single_value: bool,
) -> Result<Option<Row>> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let row = match format {
        Format::Json => json::decode(bytes, columns, wrap_single_value)?,
        Format::Delimited => delimited::decode(bytes, columns)?,
        Format::Kafka => kafka::decode(bytes, columns)?,
    };
    Ok(Some(row))
}

/// Decodes a value into cells of the value columns (strings borrowed from `bytes`
/// where the format allows); `Ok(None)` is a tombstone.
pub fn decode_value_cells<'a>(
    format: Format,
    bytes: Option<&'a [u8]>,
    columns: &[&Column],
    wrap_single_value: bool,
) -> Result<Option<Vec<Cell<'a>>>> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    if format == Format::Json && json::is_object_of(bytes, columns, wrap_single_value) {
        return json_object::decode_cells(bytes, columns).map(Some);
    }
    Ok(
        decode_value(format, Some(bytes), columns, wrap_single_value)?
            .map(|row| row.into_iter().map(Cell::Scalar).collect()),
    )
}

/// Decodes a key into cells of the key columns and, for windowed sources, the window.
pub fn decode_key_cells<'a>(
    format: Format,
    bytes: Option<&'a [u8]>,
    columns: &[&Column],
    windowed: Option<WindowKind>,
) -> Result<(Vec<Cell<'a>>, Option<WindowBounds>)> {
    if let (Format::Kafka, Some(bytes), [c], None) = (format, bytes, columns, windowed) {
        if c.sql_type == SqlType::String {
            let s = std::str::from_utf8(bytes)
                .map_err(|_| bad(format!("column {}: not UTF-8", c.name)))?;
            return Ok((vec![Cell::Str(s.into())], None));
        }
    }
    let (row, window) = decode_key(format, bytes, columns, windowed)?;
    Ok((row.into_iter().map(Cell::Scalar).collect(), window))
}

pub fn encode_value(
    format: Format,
    row: &[ScalarValue],
    columns: &[&Column],
    wrap_single_value: bool,
) -> Result<Vec<u8>> {
    match format {
        Format::Json => json::encode(row, columns, wrap_single_value),
        Format::Delimited => Ok(delimited::encode(row)),
        Format::Kafka => kafka::encode(row, columns),
    }
}

/// Decodes a key into the key columns and, for windowed sources, the window.
pub fn decode_key(
    format: Format,
    bytes: Option<&[u8]>,
    columns: &[&Column],
    windowed: Option<WindowKind>,
) -> Result<(Row, Option<WindowBounds>)> {
    if columns.is_empty() {
        return Ok((Vec::new(), None));
    }
    let Some(mut bytes) = bytes else {
        return Ok((columns.iter().map(|c| null_of(&c.sql_type)).collect(), None));
    };
    let mut window = None;
    if let Some(kind) = windowed {
        let n = if kind == WindowKind::Session { 16 } else { 8 };
        if bytes.len() < n {
            return Err(Error::Serde(format!(
                "a windowed key needs at least {n} bytes, found {}",
                bytes.len()
            )));
        }
        let (k, w) = bytes.split_at(bytes.len() - n);
        let read = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        window = Some(if kind == WindowKind::Session {
            (read(&w[8..16]), read(&w[0..8]))
        } else {
            (read(&w[0..8]), 0)
        });
        bytes = k;
    }
    let row = match format {
        Format::Kafka => kafka::decode(bytes, columns)?,
        Format::Json => json::decode(bytes, columns, false)?,
        Format::Delimited => delimited::decode(bytes, columns)?,
    };
    Ok((row, window))
}

pub fn encode_key(
    format: Format,
    row: &[ScalarValue],
    columns: &[&Column],
    window: Option<(WindowKind, WindowBounds)>,
) -> Result<Option<Vec<u8>>> {
    if columns.is_empty() {
        return Ok(None);
    }
    if columns.len() == 1 && row[0].is_null() && window.is_none() {
        return Ok(None);
    }
    let mut bytes = match format {
        Format::Kafka => kafka::encode(row, columns)?,
        Format::Json => json::encode(row, columns, false)?,
        Format::Delimited => delimited::encode(row),
    };
    if let Some((kind, (start, end))) = window {
        if kind == WindowKind::Session {
            bytes.extend_from_slice(&end.to_be_bytes());
        }
        bytes.extend_from_slice(&start.to_be_bytes());
    }
    Ok(Some(bytes))
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::Serde(what.to_string())
}

#[cfg(test)]
mod tests;

/// A double as Java's `Double.toString` writes it (ksqlDB's text for DOUBLE in
/// DELIMITED and in string conversions): at least one digit after the point, and
/// scientific notation (`1.0E10`, `4.9E-324`) outside [10^-3, 10^7).
pub fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-3..1e7).contains(&abs) {
        let s = format!("{f:E}");
        let (mantissa, exp) = s.split_once('E').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        return format!("{mantissa}E{exp}");
    }
    let s = f.to_string();
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A DECIMAL's digits with exactly `scale` digits after the point (`10.120`), as
/// Java's `BigDecimal.toPlainString`.
pub fn decimal_text(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        return (unscaled * 10i128.pow(scale.unsigned_abs() as u32)).to_string();
    }
    let digits = unscaled.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    let sign = if unscaled < 0 { "-" } else { "" };
    format!("{sign}{int}.{frac}")
}
