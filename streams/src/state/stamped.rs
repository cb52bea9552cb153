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

/// Whether `new` repeats `old`'s value at the same or a later time (both absent
/// counts too): Kafka's `ValueAndTimestampSerializer.valuesAreSameAndTimeIsIncreasing`,
/// by which a table source drops idempotent updates (KIP-557).
pub fn same_value_not_older(old: Option<&[u8]>, new: Option<&[u8]>) -> bool {
    match (old.map(split), new.map(split)) {
        (None, None) => true,
        (Some(Some((ov, ot))), Some(Some((nv, nt)))) => ov == nv && nt >= ot,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_value_is_idempotent_unless_older() {
        let at = |v: &[u8], t| Some(super::join(v, t));
        let same = |a: Option<Vec<u8>>, b: Option<Vec<u8>>| {
            super::same_value_not_older(a.as_deref(), b.as_deref())
        };
        assert!(same(at(b"x", 1), at(b"x", 1)));
        assert!(same(at(b"x", 1), at(b"x", 2)));
        assert!(!same(at(b"x", 2), at(b"x", 1)));
        assert!(!same(at(b"x", 1), at(b"y", 1)));
        assert!(!same(at(b"x", 1), None));
        assert!(same(None, None));
    }

    #[test]
    fn round_trip() {
        let stored = super::join(b"abc", -5);
        assert_eq!(stored.len(), 11);
        assert_eq!(super::split(&stored), Some((&b"abc"[..], -5)));
        assert_eq!(super::split(b"short"), None);
    }
}
