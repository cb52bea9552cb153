//! Decoding PostgreSQL's logical replication messages (`pgoutput`, protocol version 1),
//! as `pg_logical_slot_peek_binary_changes` returns them: one message per row. The CDC
//! source reads changes this way over plain SQL, since tokio-postgres has no
//! replication protocol.

use crate::error::{Error, Result};

/// One column of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key).
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A column value in a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    Null,
    /// A TOASTed value that did not change (not sent).
    Unchanged,
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Begin {
        final_lsn: u64,
        /// Microseconds since 2000-01-01.
        commit_time: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    Relation {
        id: u32,
        namespace: String,
        name: String,
        replica_identity: u8,
        columns: Vec<RelationColumn>,
    },
    Insert {
        relation: u32,
        new: Vec<Datum>,
    },
    Update {
        relation: u32,
        /// The old key ('K') or the whole old row ('O', REPLICA IDENTITY FULL).
        old: Option<Vec<Datum>>,
        new: Vec<Datum>,
    },
    Delete {
        relation: u32,
        old: Vec<Datum>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    /// Origin and type messages, which the CDC source does not need.
    Other(u8),
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

fn short(what: &str) -> Error {
    Error::Conversion(format!("pgoutput message ends inside its {what}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or_else(|| short(what))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn i16(&mut self, what: &str) -> Result<i16> {
        Ok(i16::from_be_bytes(
            self.take(2, what)?.try_into().map_err(|_| short(what))?,
        ))
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        Ok(i32::from_be_bytes(
            self.take(4, what)?.try_into().map_err(|_| short(what))?,
        ))
    }
    fn i64(&mut self, what: &str) -> Result<i64> {
        Ok(i64::from_be_bytes(
            self.take(8, what)?.try_into().map_err(|_| short(what))?,
        ))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let rest = &self.b[self.at..];
        let len = rest
            .iter()
            .position(|c| *c == 0)
            .ok_or_else(|| short(what))?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Datum>> {
        let n = self.i16("tuple column count")?;
        let mut out = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            out.push(match self.u8("tuple column kind")? {
                b'n' => Datum::Null,
                b'u' => Datum::Unchanged,
                kind @ (b't' | b'b') => {
                    let len = self.i32("tuple value length")?;
                    let len = usize::try_from(len).map_err(|_| short("tuple value length"))?;
                    let bytes = self.take(len, "tuple value")?;
                    if kind == b't' {
                        Datum::Text(String::from_utf8_lossy(bytes).into_owned())
                    } else {
                        Datum::Binary(bytes.to_vec())
                    }
                }
                other => {
                    return Err(Error::Conversion(format!(
                        "pgoutput tuple column kind {:?} is unknown",
                        other as char
                    )))
                }
            });
        }
        Ok(out)
    }
}

pub fn decode(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader { b: bytes, at: 0 };
    let tag = r.u8("message tag")?;
    Ok(match tag {
        b'B' => Message::Begin {
            final_lsn: r.i64("begin LSN")? as u64,
            commit_time: r.i64("begin timestamp")?,
            xid: r.i32("begin xid")? as u32,
        },
        b'C' => {
            r.u8("commit flags")?;
            Message::Commit {
                commit_lsn: r.i64("commit LSN")? as u64,
                end_lsn: r.i64("commit end LSN")? as u64,
                commit_time: r.i64("commit timestamp")?,
            }
        }
        b'R' => {
            let id = r.i32("relation id")? as u32;
            let namespace = r.string("relation namespace")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let n = r.i16("relation column count")?;
            let mut columns = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n {
                columns.push(RelationColumn {
                    key: r.u8("column flags")? & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.i32("column type")? as u32,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            Message::Relation {
                id,
                namespace,
                name,
                replica_identity,
                columns,
            }
        }
        b'I' => {
            let relation = r.i32("insert relation")? as u32;
            r.u8("insert tuple marker")?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.i32("update relation")? as u32;
            let mut marker = r.u8("update tuple marker")?;
            let mut old = None;
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8("update new tuple marker")?;
            }
            if marker != b'N' {
                return Err(Error::Conversion(format!(
                    "pgoutput update has tuple marker {:?}",
                    marker as char
                )));
            }
            Message::Update {
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let relation = r.i32("delete relation")? as u32;
            r.u8("delete tuple marker")?;
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let n = r.i32("truncate relation count")?;
            r.u8("truncate options")?;
            let mut relations = Vec::new();
            for _ in 0..n {
                relations.push(r.i32("truncated relation")? as u32);
            }
            Message::Truncate { relations }
        }
        other => Message::Other(other),
    })
}

/// `0/16B3748` -> 0x16B3748 (PostgreSQL's LSN text form).
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_messages_decode() {
        let mut rel = vec![b'R'];
        rel.extend(16385i32.to_be_bytes());
        rel.extend(b"public\0items\0");
        rel.push(b'd');
        rel.extend(2i16.to_be_bytes());
        rel.push(1);
        rel.extend(b"id\0");
        rel.extend(23i32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        rel.push(0);
        rel.extend(b"name\0");
        rel.extend(25i32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        let Message::Relation { name, columns, .. } = decode(&rel).unwrap() else {
            panic!()
        };
        assert_eq!(name, "items");
        assert!(columns[0].key && !columns[1].key);
        let mut ins = vec![b'I'];
        ins.extend(16385i32.to_be_bytes());
        ins.push(b'N');
        ins.extend(2i16.to_be_bytes());
        ins.push(b't');
        ins.extend(1i32.to_be_bytes());
        ins.push(b'7');
        ins.push(b'n');
        assert_eq!(
            decode(&ins).unwrap(),
            Message::Insert {
                relation: 16385,
                new: vec![Datum::Text("7".into()), Datum::Null]
            }
        );
        assert!(
            decode(&ins[..ins.len() - 3]).is_err(),
            "a cut message is an error, not a panic"
        );
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B3748));
        assert_eq!(format_lsn(0x1_0000_0010), "1/10");
    }
}
