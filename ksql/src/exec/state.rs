//! How an aggregate's state sits in a state store: a small JSON header (latest
//! timestamp, whether the row is in the result, how many state values each
//! accumulator has) followed by the accumulators' `state()` as one Arrow IPC row, so
//! any DataFusion accumulator round-trips without a codec of its own.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// The largest input timestamp the group has seen: its output's timestamp.
    pub ts: i64,
    /// The group's row is in the result (HAVING passed when last emitted).
    pub emitted: bool,
    /// State values per accumulator.
    pub sizes: Vec<usize>,
}

pub struct Stored {
    pub header: Header,
    /// Per accumulator, its state as one-row arrays.
    pub states: Vec<Vec<ArrayRef>>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("aggregate state: {e}"))
}

pub fn encode(header: &Header, states: &[Vec<ScalarValue>]) -> Result<Vec<u8>> {
    let mut fields = Vec::new();
    let mut cols = Vec::new();
    for (i, v) in states.iter().flatten().enumerate() {
        let a = v.to_array_of_size(1).map_err(err)?;
        fields.push(Field::new(format!("s{i}"), a.data_type().clone(), true));
        cols.push(a);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = if cols.is_empty() {
        RecordBatch::new_empty(schema.clone())
    } else {
        RecordBatch::try_new(schema.clone(), cols).map_err(err)?
    };
    let mut w = StreamWriter::try_new(Vec::new(), &schema).map_err(err)?;
    w.write(&batch).map_err(err)?;
    w.finish().map_err(err)?;
    let ipc = w.into_inner().map_err(err)?;
    let h = serde_json::to_vec(header).map_err(err)?;
    let mut out = Vec::with_capacity(4 + h.len() + ipc.len());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&ipc);
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<Stored> {
    if bytes.len() < 4 {
        return Err(err("too short"));
    }
    let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let h = bytes.get(4..4 + n).ok_or_else(|| err("truncated header"))?;
    let header: Header = serde_json::from_slice(h).map_err(err)?;
    let mut reader = StreamReader::try_new(Cursor::new(&bytes[4 + n..]), None).map_err(err)?;
    let batch = reader
        .next()
        .transpose()
        .map_err(err)?
        .ok_or_else(|| err("no state row"))?;
    let mut cols = batch.columns().iter().cloned();
    let states = header
        .sizes
        .iter()
        .map(|&k| cols.by_ref().take(k).collect())
        .collect();
    Ok(Stored { header, states })
}
