//! Header columns (KLIP-57): a record's Kafka headers as the values of the columns
//! declared `HEADERS` or `HEADER('key')`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BinaryArray, ListArray, StringArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;

use crate::parser::ast::HeaderRef;
use crate::parser::types::SqlType;

/// A record's headers, in the order they were written.
pub type Headers = [(String, Vec<u8>)];

/// The value of a header column: every header as a list of (KEY, VALUE) structs, or
/// the value of the last header with the key (Kafka's `Headers.lastHeader`), NULL
/// when there is none.
pub fn header_value(h: &HeaderRef, t: &SqlType, headers: &Headers) -> ScalarValue {
    match h {
        HeaderRef::Key(key) => ScalarValue::Binary(
            headers
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        ),
        HeaderRef::All => all_headers(t, headers),
    }
}

fn all_headers(t: &SqlType, headers: &Headers) -> ScalarValue {
    // The declared type was checked to be ARRAY<STRUCT<KEY STRING, VALUE BYTES>> when
    // the source was created; its own field names keep the declared spelling.
    let DataType::List(item) = t.to_arrow() else {
        return super::null_of(t);
    };
    let DataType::Struct(fields) = item.data_type().clone() else {
        return super::null_of(t);
    };
    let keys: ArrayRef = Arc::new(StringArray::from_iter_values(
        headers.iter().map(|(k, _)| k.as_str()),
    ));
    let values: ArrayRef = Arc::new(BinaryArray::from_iter_values(
        headers.iter().map(|(_, v)| v.as_slice()),
    ));
    let Ok(structs) = StructArray::try_new(fields, vec![keys, values], None) else {
        return super::null_of(t);
    };
    let offsets = OffsetBuffer::from_lengths([headers.len()]);
    match ListArray::try_new(item, offsets, Arc::new(structs), None) {
        Ok(list) => ScalarValue::List(Arc::new(list)),
        Err(_) => super::null_of(t),
    }
}
