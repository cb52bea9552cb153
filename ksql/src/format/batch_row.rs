//! One row of an Arrow batch written as a record's key and value, straight from the
//! arrays: the vectorized path encodes its output this way instead of building a row
//! of `ScalarValue`s per record. Strings, integers and booleans are written from
//! their arrays; any other column (and any format without a direct writer) goes
//! through the row encoders, so the bytes are always the ones `encode_value` and
//! `encode_key` would give.

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray,
};
use datafusion::common::ScalarValue;

use super::json::scalar_to_json;
use super::{bad, encode_key, encode_value, Row, WindowBounds};
use crate::catalog::{Column, Format};
use crate::error::Result;
use crate::parser::ast::WindowKind;
use crate::parser::types::SqlType;

/// A column as the writer reads it.
enum Cells<'a> {
    Str(&'a StringArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Bool(&'a BooleanArray),
    /// Read one `ScalarValue` at a time.
    Other(&'a ArrayRef),
}

impl<'a> Cells<'a> {
    fn of(a: &'a ArrayRef) -> Cells<'a> {
        let any = a.as_any();
        if let Some(s) = any.downcast_ref::<StringArray>() {
            Cells::Str(s)
        } else if let Some(i) = any.downcast_ref::<Int32Array>() {
            Cells::Int32(i)
        } else if let Some(i) = any.downcast_ref::<Int64Array>() {
            Cells::Int64(i)
        } else if let Some(b) = any.downcast_ref::<BooleanArray>() {
            Cells::Bool(b)
        } else {
            Cells::Other(a)
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Cells::Str(a) => *a,
            Cells::Int32(a) => *a,
            Cells::Int64(a) => *a,
            Cells::Bool(a) => *a,
            Cells::Other(a) => a.as_ref(),
        }
    }

    fn scalar(&self, row: usize) -> Result<ScalarValue> {
        Ok(ScalarValue::try_from_array(self.array(), row)?)
    }

    /// The cell as JSON, as `scalar_to_json` writes it.
    fn write_json(&self, row: usize, out: &mut Vec<u8>) -> Result<()> {
        if self.array().is_null(row) {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        match self {
            Cells::Str(a) => serde_json::to_writer(&mut *out, a.value(row)),
            Cells::Int32(a) => serde_json::to_writer(&mut *out, &a.value(row)),
            Cells::Int64(a) => serde_json::to_writer(&mut *out, &a.value(row)),
            Cells::Bool(a) => serde_json::to_writer(&mut *out, &a.value(row)),
            Cells::Other(_) => {
                serde_json::to_writer(&mut *out, &scalar_to_json(&self.scalar(row)?))
            }
        }
        .map_err(bad)
    }
}

/// Writes rows of a batch's key and value columns as a sink's key and value.
pub struct BatchRowEncoder<'a> {
    key_format: Format,
    keys: Vec<Cells<'a>>,
    key_columns: &'a [&'a Column],
    value_format: Format,
    values: Vec<Cells<'a>>,
    value_columns: &'a [&'a Column],
    wrap_single_value: bool,
    /// Each value column's name as a JSON object key, quoted and followed by `:`.
    names: Vec<Vec<u8>>,
}

impl<'a> BatchRowEncoder<'a> {
    /// `keys` and `values`: the batch's arrays for the sink's key and value columns.
    pub fn new(
        (key_format, keys, key_columns): (Format, &'a [ArrayRef], &'a [&'a Column]),
        (value_format, values, value_columns): (Format, &'a [ArrayRef], &'a [&'a Column]),
        wrap_single_value: bool,
    ) -> Result<BatchRowEncoder<'a>> {
        let names = value_columns
            .iter()
            .map(|c| {
                let mut name = serde_json::to_vec(&c.name).map_err(bad)?;
                name.push(b':');
                Ok(name)
            })
            .collect::<Result<_>>()?;
        Ok(BatchRowEncoder {
            key_format,
            keys: keys.iter().map(Cells::of).collect(),
            key_columns,
            value_format,
            values: values.iter().map(Cells::of).collect(),
            value_columns,
            wrap_single_value,
            names,
        })
    }

    /// Row `row`'s key, as `encode_key` gives it.
    pub fn key(
        &self,
        row: usize,
        window: Option<(WindowKind, WindowBounds)>,
    ) -> Result<Option<Vec<u8>>> {
        if let (Format::Kafka, [Cells::Str(a)], [c], None) =
            (self.key_format, &self.keys[..], self.key_columns, window)
        {
            if c.sql_type == SqlType::String {
                return Ok(a.is_valid(row).then(|| a.value(row).as_bytes().to_vec()));
            }
        }
        let key = scalars(&self.keys, row)?;
        encode_key(self.key_format, &key, self.key_columns, window)
    }

    /// Row `row`'s value, as `encode_value` gives it.
    pub fn value(&self, row: usize) -> Result<Vec<u8>> {
        if self.value_format != Format::Json {
            let value = scalars(&self.values, row)?;
            return encode_value(
                self.value_format,
                &value,
                self.value_columns,
                self.wrap_single_value,
            );
        }
        let mut out = Vec::with_capacity(16 * self.values.len() + 2);
        if self.values.len() == 1 && !self.wrap_single_value {
            self.values[0].write_json(row, &mut out)?;
            return Ok(out);
        }
        out.push(b'{');
        for (i, (cells, name)) in self.values.iter().zip(&self.names).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name);
            cells.write_json(row, &mut out)?;
        }
        out.push(b'}');
        Ok(out)
    }
}

fn scalars(cells: &[Cells<'_>], row: usize) -> Result<Row> {
    cells.iter().map(|c| c.scalar(row)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;

    use super::*;

    fn column(name: &str, sql_type: SqlType, key: bool) -> Column {
        Column::new(name, sql_type, key)
    }

    #[test]
    fn rows_of_a_batch_encode_as_rows_of_scalars_do() {
        let values: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some("quote \" and \\ and \n and é"),
                None,
            ])),
            Arc::new(Int32Array::from(vec![Some(-7), None, Some(i32::MAX)])),
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(0), None])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Float64Array::from(vec![Some(0.1), Some(1e300), None])),
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                Some(vec![Some(1), None]),
                None,
                Some(vec![]),
            ])),
        ];
        let cols = [
            column("S", SqlType::String, false),
            column("I", SqlType::Integer, false),
            column("B\"IG", SqlType::Bigint, false),
            column("OK", SqlType::Boolean, false),
            column("D", SqlType::Double, false),
            column("L", SqlType::Array(Box::new(SqlType::Integer)), false),
        ];
        let value_cols: Vec<&Column> = cols.iter().collect();
        let keys: Vec<ArrayRef> = vec![values[0].clone()];
        let kc = column("K", SqlType::String, true);
        let key_cols = [&kc];
        let int_key = column("K", SqlType::Integer, true);
        let int_keys: Vec<ArrayRef> = vec![values[1].clone()];
        let int_key_cols = [&int_key];
        for value_format in [Format::Json, Format::Delimited] {
            for (key_format, keys, key_cols) in [
                (Format::Kafka, &keys, &key_cols),
                (Format::Json, &keys, &key_cols),
                (Format::Kafka, &int_keys, &int_key_cols),
            ] {
                let e = BatchRowEncoder::new(
                    (key_format, keys, key_cols),
                    (value_format, &values, &value_cols),
                    true,
                )
                .unwrap();
                for row in 0..3 {
                    let scalar_values = scalars(&e.values, row).unwrap();
                    let scalar_keys = scalars(&e.keys, row).unwrap();
                    for window in [None, Some((WindowKind::Tumbling, (1000, 2000)))] {
                        assert_eq!(
                            e.key(row, window).unwrap(),
                            encode_key(key_format, &scalar_keys, key_cols, window).unwrap(),
                            "key of row {row}, {key_format:?}, {window:?}"
                        );
                    }
                    let expected = encode_value(value_format, &scalar_values, &value_cols, true);
                    match expected {
                        Ok(expected) => assert_eq!(e.value(row).unwrap(), expected, "row {row}"),
                        Err(_) => assert!(e.value(row).is_err()),
                    }
                }
            }
        }
        // A single unwrapped value.
        let one = [&cols[0]];
        let e = BatchRowEncoder::new(
            (Format::Kafka, &keys, &key_cols),
            (Format::Json, &values[..1], &one),
            false,
        )
        .unwrap();
        for row in 0..3 {
            let expected =
                encode_value(Format::Json, &scalars(&e.values, row).unwrap(), &one, false);
            assert_eq!(e.value(row).unwrap(), expected.unwrap());
        }
        assert_eq!(e.value(0).unwrap(), b"\"plain\"");
    }
}
