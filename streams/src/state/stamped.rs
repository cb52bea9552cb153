//! Timestamped values (KIP-258, Kafka's `ValueAndTimestamp`): the 8-byte big-endian
//! timestamp of the record behind a value, then the value's bytes, the layout of
//! Kafka's timestamped key-value and window stores. The DSL's stores keep them so an
//! aggregation or a join can stamp its result with the latest timestamp behind it.

/// A value's bytes prefixed with its timestamp.
pub fn join(value: &[u8], timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// The value's bytes and its timestamp; `None` if too short to hold a timestamp.
pub fn split(stored: &[u8]) -> Option<(&[u8], i64)> {
    let (ts, value) = stored.split_first_chunk::<8>()?;
    Some((value, i64::from_be_bytes(*ts)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let stored = super::join(b"abc", -5);
        assert_eq!(stored.len(), 11);
        assert_eq!(super::split(&stored), Some((&b"abc"[..], -5)));
        assert_eq!(super::split(b"short"), None);
    }
}
