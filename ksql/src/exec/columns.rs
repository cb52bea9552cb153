//! Decoded records appended straight to Arrow column builders: a batch's source rows
//! (its columns, then ROWTIME, ROWPARTITION, ROWOFFSET and, when windowed,
//! WINDOWSTART and WINDOWEND) become arrays without a row of `ScalarValue`s per
//! record. Strings, integers, doubles and booleans have their own builders; other
//! columns collect `ScalarValue`s. A record whose values do not fit their columns is
//! refused whole, so the batch never holds half a row.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;

use super::batch::{fit, with_rows};
use crate::catalog::Source;
use crate::error::{Error, Result};
use crate::format::{self, Cell, WindowBounds};
use crate::parser::ast::WindowKind;

/// A record's source row as cells (see [`super::processor::source_row_of`]), or `None`
/// for a tombstone; the window (start, end) it was found with.
pub fn source_cells<'a>(
    source: &Source,
    (key, value): (Option<&'a [u8]>, Option<&'a [u8]>),
    headers: &format::Headers,
    (ts, partition, offset): (i64, i32, i64),
) -> Result<Option<(Vec<Cell<'a>>, Option<WindowBounds>)>> {
    let keys: Vec<_> = source.key_columns().collect();
    let values: Vec<_> = source.value_columns().collect();
    let (key, window) = format::decode_key_cells(source.key_format, key, &keys, source.windowed)?;
    let Some(value) = format::decode_value_cells(
        source.value_format,
        value,
        &values,
        source.wrap_single_value,
    )?
    else {
        return Ok(None);
    };
    let (mut k, mut v) = (key.into_iter(), value.into_iter());
    let mut row: Vec<Cell<'a>> = Vec::with_capacity(source.columns.len() + 5);
    for c in &source.columns {
        row.push(match &c.header {
            Some(h) => Cell::Scalar(format::header_value(h, &c.sql_type, headers)),
            None if c.key => k.next().unwrap_or(Cell::Null),
            None => v.next().unwrap_or(Cell::Null),
        });
    }
    row.extend([Cell::Int64(ts), Cell::Int32(partition), Cell::Int64(offset)]);
    let window = source.windowed.map(|kind| match (kind, window) {
        (WindowKind::Session, Some(w)) => w,
        (_, Some((s, _))) => (s, s + source.window_size_ms.unwrap_or(0)),
        (_, None) => (0, 0),
    });
    if let Some((s, e)) = window {
        row.extend([Cell::Int64(s), Cell::Int64(e)]);
    }
    Ok(Some((row, window)))
}

/// Arrow builders for the columns of `schema`, filled a row at a time.
pub struct Columns {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
}

enum Builder {
    Str(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Scalars(Vec<ScalarValue>),
}

impl Builder {
    fn for_type(t: &DataType) -> Builder {
        match t {
            DataType::Utf8 => Builder::Str(StringBuilder::new()),
            DataType::Int32 => Builder::Int32(Int32Builder::new()),
            // A timestamp column is written as its milliseconds and cast at the end.
            DataType::Int64 | DataType::Timestamp(TimeUnit::Millisecond, None) => {
                Builder::Int64(Int64Builder::new())
            }
            DataType::Float64 => Builder::Float64(Float64Builder::new()),
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            _ => Builder::Scalars(Vec::new()),
        }
    }

    /// The builder's own type.
    fn data_type(&self, field: &DataType) -> DataType {
        match self {
            Builder::Str(_) => DataType::Utf8,
            Builder::Int32(_) => DataType::Int32,
            Builder::Int64(_) => DataType::Int64,
            Builder::Float64(_) => DataType::Float64,
            Builder::Bool(_) => DataType::Boolean,
            Builder::Scalars(_) => field.clone(),
        }
    }

    /// The cell as this builder takes it, cast where its type differs; an error when
    /// it cannot be.
    fn fitted<'a>(&self, cell: Cell<'a>, field: &DataType) -> Result<Cell<'a>> {
        let fits = matches!(
            (self, &cell),
            (_, Cell::Null)
                | (Builder::Str(_), Cell::Str(_))
                | (Builder::Int32(_), Cell::Int32(_))
                | (Builder::Int64(_), Cell::Int64(_))
                | (Builder::Float64(_), Cell::Float64(_))
                | (Builder::Bool(_), Cell::Bool(_))
        );
        if fits {
            return Ok(cell);
        }
        let t = self.data_type(field);
        let v = cell.into_untyped();
        let v = if v.data_type() == t || v.is_null() {
            v
        } else {
            v.cast_to(&t).map_err(|e| {
                Error::Serde(format!(
                    "a value of type {} does not fit {t}: {e}",
                    v.data_type()
                ))
            })?
        };
        Ok(match (self, v) {
            (_, v) if v.is_null() => Cell::Null,
            (Builder::Str(_), ScalarValue::Utf8(Some(s))) => Cell::Str(s.into()),
            (Builder::Int32(_), ScalarValue::Int32(Some(i))) => Cell::Int32(i),
            (Builder::Int64(_), ScalarValue::Int64(Some(i))) => Cell::Int64(i),
            (Builder::Float64(_), ScalarValue::Float64(Some(f))) => Cell::Float64(f),
            (Builder::Bool(_), ScalarValue::Boolean(Some(b))) => Cell::Bool(b),
            (Builder::Scalars(_), v) => Cell::Scalar(v),
            (_, v) => {
                return Err(Error::Serde(format!(
                    "a value of type {} does not fit {t}",
                    v.data_type()
                )))
            }
        })
    }

    /// Appends a cell `fitted` gave.
    fn append(&mut self, cell: Cell<'_>, field: &DataType) {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Int32(b), Cell::Int32(i)) => b.append_value(i),
            (Builder::Int32(b), _) => b.append_null(),
            (Builder::Int64(b), Cell::Int64(i)) => b.append_value(i),
            (Builder::Int64(b), _) => b.append_null(),
            (Builder::Float64(b), Cell::Float64(f)) => b.append_value(f),
            (Builder::Float64(b), _) => b.append_null(),
            (Builder::Bool(b), Cell::Bool(x)) => b.append_value(x),
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Scalars(v), Cell::Null) => {
                v.push(ScalarValue::try_from(field).unwrap_or(ScalarValue::Null))
            }
            (Builder::Scalars(v), cell) => v.push(cell.into_untyped()),
        }
    }

    fn finish(&mut self, field: &DataType) -> Result<ArrayRef> {
        let a: ArrayRef = match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Scalars(v) if v.is_empty() => datafusion::arrow::array::new_empty_array(field),
            Builder::Scalars(v) => ScalarValue::iter_to_array(std::mem::take(v))?,
        };
        fit(a, field)
    }
}

impl Columns {
    pub fn new(schema: &SchemaRef) -> Columns {
        Columns {
            schema: schema.clone(),
            builders: schema
                .fields()
                .iter()
                .map(|f| Builder::for_type(f.data_type()))
                .collect(),
            rows: 0,
        }
    }

    /// Rows appended since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends a row, one cell per column; nothing is appended when a cell does not
    /// fit its column.
    pub fn push(&mut self, mut cells: Vec<Cell<'_>>) -> Result<()> {
        if cells.len() != self.builders.len() {
            return Err(Error::Engine(format!(
                "a row of {} values for {} columns",
                cells.len(),
                self.builders.len()
            )));
        }
        let fields = self.schema.fields();
        for ((cell, b), f) in cells.iter_mut().zip(&self.builders).zip(fields) {
            *cell = b.fitted(std::mem::replace(cell, Cell::Null), f.data_type())?;
        }
        for ((cell, b), f) in cells.into_iter().zip(&mut self.builders).zip(fields) {
            b.append(cell, f.data_type());
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows appended so far as a batch of the schema; the builders start over.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let fields = self.schema.fields().clone();
        let columns = self
            .builders
            .iter_mut()
            .zip(fields.iter())
            .map(|(b, f)| b.finish(f.data_type()))
            .collect::<Result<Vec<_>>>()?;
        let rows = std::mem::take(&mut self.rows);
        with_rows(self.schema.clone(), columns, rows)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::exec::batch::to_batch;

    #[test]
    fn cells_build_the_batch_rows_of_scalars_build() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("S", DataType::Utf8, true),
            Field::new("I", DataType::Int32, true),
            Field::new(
                "ROWTIME",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("D", DataType::Float64, true),
            Field::new("B", DataType::Boolean, true),
            Field::new("L", list.clone(), true),
            Field::new("X", DataType::Decimal128(5, 2), true),
        ]));
        let list_of = |v: Vec<Option<i32>>| {
            ScalarValue::List(Arc::new(
                datafusion::arrow::array::ListArray::from_iter_primitive::<
                    datafusion::arrow::datatypes::Int32Type,
                    _,
                    _,
                >(vec![Some(v)]),
            ))
        };
        let rows: Vec<Vec<Cell<'_>>> = vec![
            vec![
                Cell::Str("borrowed".into()),
                Cell::Int32(7),
                Cell::Int64(1_000),
                Cell::Float64(0.5),
                Cell::Bool(true),
                Cell::Scalar(list_of(vec![Some(1), None])),
                Cell::Scalar(ScalarValue::Decimal128(Some(1234), 5, 2)),
            ],
            vec![Cell::Null; 7],
            vec![
                // Scalars of the builder's type, and ones that need a cast.
                Cell::Scalar(ScalarValue::Utf8(Some("owned".into()))),
                Cell::Scalar(ScalarValue::Int64(Some(9))),
                Cell::Scalar(ScalarValue::TimestampMillisecond(Some(2_000), None)),
                Cell::Int32(3),
                Cell::Scalar(ScalarValue::Boolean(Some(false))),
                Cell::Null,
                Cell::Null,
            ],
        ];
        let types: Vec<DataType> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let scalar_rows: Vec<Vec<ScalarValue>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&types)
                    .map(|(c, t)| match c.clone() {
                        Cell::Null => ScalarValue::try_from(t).unwrap(),
                        c => c.into_untyped().cast_to(t).unwrap(),
                    })
                    .collect()
            })
            .collect();
        let mut columns = Columns::new(&schema);
        for r in rows {
            columns.push(r).unwrap();
        }
        // A row that does not fit is refused whole.
        let mut bad = vec![Cell::Str("kept out".into()); 7];
        bad[1] = Cell::Str("not a number".into());
        assert!(columns.push(bad).is_err());
        assert!(columns.push(vec![Cell::Null; 6]).is_err());
        assert_eq!(columns.len(), 3);
        let batch = columns.finish().unwrap();
        assert_eq!(batch, to_batch(&schema, &scalar_rows).unwrap());
        assert!(columns.is_empty());
        assert_eq!(columns.finish().unwrap().num_rows(), 0);
    }
}
