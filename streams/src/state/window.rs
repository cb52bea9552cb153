//! Windows and the byte layout of windowed store keys.
//!
//! A window store key is `[key length: u32][key][window start]` and a session store key
//! `[key length][key][session end][session start]`, times as big-endian i64 with the sign
//! bit flipped so that byte order is time order. One key's windows are therefore
//! adjacent, and a time range of them is one store range.

use crate::error::{Error, Result};
use crate::serde::Serde;

/// A time window `[start, end)`; a session window is `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

/// A key with its window: the key of a windowed aggregation's results.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    pub key: K,
    pub window: Window,
}

fn time(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn untime(b: &[u8]) -> Option<i64> {
    let arr: [u8; 8] = b.try_into().ok()?;
    Some((u64::from_be_bytes(arr) ^ (1 << 63)) as i64)
}

/// The prefix every stored window of `key` starts with.
pub fn key_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 16);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    out
}

pub fn window_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&time(start));
    out
}

pub fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = key_prefix(key);
    out.extend_from_slice(&time(end));
    out.extend_from_slice(&time(start));
    out
}

fn split(stored: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(stored.get(..4)?.try_into().ok()?) as usize;
    let key = stored.get(4..4 + len)?;
    Some((key, stored.get(4 + len..)?))
}

fn corrupt() -> Error {
    Error::Deserialize {
        what: "a windowed store key".into(),
        reason: "it is shorter than its layout".into(),
    }
}

/// (key, window start) of a window store key.
pub fn parse_window_key(stored: &[u8]) -> Result<(&[u8], i64)> {
    let (key, rest) = split(stored).ok_or_else(corrupt)?;
    Ok((key, untime(rest).ok_or_else(corrupt)?))
}

/// (key, start, end) of a session store key.
pub fn parse_session_key(stored: &[u8]) -> Result<(&[u8], i64, i64)> {
    let (key, rest) = split(stored).ok_or_else(corrupt)?;
    let end = rest.get(..8).and_then(untime).ok_or_else(corrupt)?;
    let start = rest.get(8..).and_then(untime).ok_or_else(corrupt)?;
    Ok((key, start, end))
}

/// Between Runnel's own stages a windowed key is the key's bytes, then start and end
/// (big-endian i64); output topics for other clients use Kafka's layouts
/// ([`super::windowed_serde`]).
impl<K: Serde> Serde for Windowed<K> {
    fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut out = self.key.to_bytes().unwrap_or_default();
        out.extend_from_slice(&self.window.start.to_be_bytes());
        out.extend_from_slice(&self.window.end.to_be_bytes());
        Some(out)
    }
    fn from_bytes(b: Option<&[u8]>) -> Result<Self> {
        let b = b.ok_or_else(corrupt)?;
        if b.len() < 16 {
            return Err(corrupt());
        }
        let (key, times) = b.split_at(b.len() - 16);
        let num = |s: &[u8]| s.try_into().map(i64::from_be_bytes).map_err(|_| corrupt());
        Ok(Windowed {
            key: K::from_bytes(Some(key))?,
            window: Window {
                start: num(&times[..8])?,
                end: num(&times[8..])?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_orders_by_key_then_time() {
        let mut keys = [
            window_key(b"b", -5),
            window_key(b"a", 10),
            window_key(b"a", -3),
            window_key(b"ab", 0),
        ];
        keys.sort();
        let parsed: Vec<(Vec<u8>, i64)> = keys
            .iter()
            .map(|k| parse_window_key(k).map(|(k, t)| (k.to_vec(), t)).unwrap())
            .collect();
        assert_eq!(
            parsed,
            vec![
                (b"a".to_vec(), -3),
                (b"a".to_vec(), 10),
                (b"b".to_vec(), -5),
                (b"ab".to_vec(), 0)
            ]
        );
        let s = session_key(b"k", 5, 9);
        assert_eq!(parse_session_key(&s).unwrap(), (&b"k"[..], 5, 9));
        assert!(parse_window_key(b"\0\0\0\x09abc").is_err());
        let w = Windowed {
            key: "k".to_string(),
            window: Window { start: 0, end: 10 },
        };
        assert_eq!(
            Windowed::<String>::from_bytes(w.to_bytes().as_deref()).unwrap(),
            w
        );
    }
}
