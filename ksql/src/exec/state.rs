//! How an aggregate's state sits in a state store: a small JSON header (latest
//! timestamp, whether the row is in the result, how many state values each
//! accumulator has) followed by the accumulators' `state()`. States made of plain
//! scalars (COUNT, SUM, AVG, MIN, MAX...) use a compact tagged encoding, written on
//! every update; any other state (lists, structs) goes as one Arrow IPC row, so every
//! DataFusion accumulator round-trips without a codec of its own.

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

const COMPACT: u8 = 1;
const IPC: u8 = 2;

/// One scalar in the compact encoding: a type tag, a null flag, the value.
fn put_scalar(out: &mut Vec<u8>, v: &ScalarValue) -> bool {
    let (tag, bytes): (u8, Option<Vec<u8>>) = match v {
        ScalarValue::Boolean(x) => (1, x.map(|b| vec![u8::from(b)])),
        ScalarValue::Int32(x) => (2, x.map(|i| i.to_be_bytes().to_vec())),
        ScalarValue::Int64(x) => (3, x.map(|i| i.to_be_bytes().to_vec())),
        ScalarValue::UInt64(x) => (4, x.map(|i| i.to_be_bytes().to_vec())),
        ScalarValue::Float64(x) => (5, x.map(|f| f.to_be_bytes().to_vec())),
        ScalarValue::Utf8(x) => (
            6,
            x.as_ref().map(|s| {
                let mut b = (s.len() as u32).to_be_bytes().to_vec();
                b.extend_from_slice(s.as_bytes());
                b
            }),
        ),
        ScalarValue::TimestampMillisecond(x, None) => (7, x.map(|i| i.to_be_bytes().to_vec())),
        ScalarValue::Decimal128(x, p, sc) => (
            8,
            Some({
                let mut b = vec![*p, *sc as u8, u8::from(x.is_some())];
                b.extend_from_slice(&x.unwrap_or(0).to_be_bytes());
                b
            }),
        ),
        _ => return false,
    };
    out.push(tag);
    match bytes {
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&b);
        }
        None => out.push(0),
    }
    true
}

fn get_scalar(b: &[u8], pos: &mut usize) -> Result<ScalarValue> {
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let s = b
            .get(*pos..*pos + n)
            .ok_or_else(|| err("truncated scalar"))?;
        *pos += n;
        Ok(s)
    };
    let head = take(pos, 2)?;
    let (tag, present) = (head[0], head[1] == 1);
    let fixed8 = |pos: &mut usize| -> Result<[u8; 8]> { take(pos, 8)?.try_into().map_err(err) };
    Ok(match tag {
        1 => ScalarValue::Boolean(if present {
            Some(take(pos, 1)?[0] == 1)
        } else {
            None
        }),
        2 => ScalarValue::Int32(if present {
            Some(i32::from_be_bytes(take(pos, 4)?.try_into().map_err(err)?))
        } else {
            None
        }),
        3 => ScalarValue::Int64(if present {
            Some(i64::from_be_bytes(fixed8(pos)?))
        } else {
            None
        }),
        4 => ScalarValue::UInt64(if present {
            Some(u64::from_be_bytes(fixed8(pos)?))
        } else {
            None
        }),
        5 => ScalarValue::Float64(if present {
            Some(f64::from_be_bytes(fixed8(pos)?))
        } else {
            None
        }),
        6 => ScalarValue::Utf8(if present {
            let n = u32::from_be_bytes(take(pos, 4)?.try_into().map_err(err)?) as usize;
            Some(String::from_utf8(take(pos, n)?.to_vec()).map_err(err)?)
        } else {
            None
        }),
        7 => ScalarValue::TimestampMillisecond(
            if present {
                Some(i64::from_be_bytes(fixed8(pos)?))
            } else {
                None
            },
            None,
        ),
        8 => {
            let h = take(pos, 3)?.to_vec();
            let v = i128::from_be_bytes(take(pos, 16)?.try_into().map_err(err)?);
            ScalarValue::Decimal128((h[2] == 1).then_some(v), h[0], h[1] as i8)
        }
        t => return Err(err(format!("unknown scalar tag {t}"))),
    })
}

pub fn encode(header: &Header, states: &[Vec<ScalarValue>]) -> Result<Vec<u8>> {
    let h = serde_json::to_vec(header).map_err(err)?;
    let mut out = vec![COMPACT];
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&h);
    if states.iter().flatten().all(|v| put_scalar(&mut out, v)) {
        return Ok(out);
    }
    encode_ipc(header, states)
}

fn encode_ipc(header: &Header, states: &[Vec<ScalarValue>]) -> Result<Vec<u8>> {
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
    let mut out = Vec::with_capacity(5 + h.len() + ipc.len());
    out.push(IPC);
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&ipc);
    Ok(out)
}

pub fn decode(bytes: &[u8]) -> Result<Stored> {
    if bytes.len() < 5 {
        return Err(err("too short"));
    }
    let n = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    let h = bytes.get(5..5 + n).ok_or_else(|| err("truncated header"))?;
    let header: Header = serde_json::from_slice(h).map_err(err)?;
    let rest = &bytes[5 + n..];
    let columns: Vec<ArrayRef> = match bytes[0] {
        COMPACT => {
            let mut pos = 0;
            let mut cols = Vec::new();
            while pos < rest.len() {
                cols.push(
                    get_scalar(rest, &mut pos)?
                        .to_array_of_size(1)
                        .map_err(err)?,
                );
            }
            cols
        }
        IPC => {
            let mut reader = StreamReader::try_new(Cursor::new(rest), None).map_err(err)?;
            let batch = reader
                .next()
                .transpose()
                .map_err(err)?
                .ok_or_else(|| err("no state row"))?;
            batch.columns().to_vec()
        }
        v => return Err(err(format!("unknown state encoding {v}"))),
    };
    let mut cols = columns.into_iter();
    let states = header
        .sizes
        .iter()
        .map(|&k| cols.by_ref().take(k).collect())
        .collect();
    Ok(Stored { header, states })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_and_list_states_round_trip() {
        let h = Header {
            ts: 7,
            emitted: true,
            sizes: vec![2, 1],
        };
        let compact = vec![
            vec![
                ScalarValue::UInt64(Some(3)),
                ScalarValue::Float64(Some(1.5)),
            ],
            vec![ScalarValue::Utf8(None)],
        ];
        let b = encode(&h, &compact).unwrap();
        assert_eq!(b[0], COMPACT);
        let d = decode(&b).unwrap();
        assert_eq!((d.header.ts, d.header.emitted), (7, true));
        assert_eq!(
            ScalarValue::try_from_array(&d.states[0][1], 0).unwrap(),
            ScalarValue::Float64(Some(1.5))
        );
        assert!(d.states[1][0].is_null(0));
        let list = ScalarValue::List(ScalarValue::new_list_nullable(
            &[ScalarValue::Int32(Some(1))],
            &datafusion::arrow::datatypes::DataType::Int32,
        ));
        let h = Header {
            ts: 1,
            emitted: false,
            sizes: vec![1],
        };
        let b = encode(&h, &[vec![list.clone()]]).unwrap();
        assert_eq!(b[0], IPC);
        assert_eq!(
            ScalarValue::try_from_array(&decode(&b).unwrap().states[0][0], 0).unwrap(),
            list
        );
        assert!(decode(&[9, 0, 0, 0, 0]).is_err());
        assert!(decode(&[1, 0, 0]).is_err());
    }
}
