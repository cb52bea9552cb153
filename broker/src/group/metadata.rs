//! Group metadata records in `__consumer_offsets`, in Kafka's formats (key version 2:
//! the group id; value version 3: protocol type, generation, protocol, leader, state
//! timestamp and each member with its subscription and assignment), so a restarted
//! broker knows its groups' generations and members and consumers need not rejoin.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// One member as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the chosen protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group as stored (Kafka's `GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

const KEY_VERSION: i16 = 2;
const VALUE_VERSION: i16 = 3;

/// A Kafka STRING (i16 length); shared with the offset-commit records.
pub(crate) fn put_str(b: &mut BytesMut, s: &str) {
    // Callers bound every string (group ids, client ids, member ids) to i16::MAX.
    b.put_i16(s.len().min(i16::MAX as usize) as i16);
    b.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

fn put_nullable(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

fn get_nullable(b: &mut Bytes) -> Option<Option<String>> {
    if b.remaining() < 2 {
        return None;
    }
    let len = b.get_i16();
    if len < 0 {
        return Some(None);
    }
    if b.remaining() < len as usize {
        return None;
    }
    String::from_utf8(b.split_to(len as usize).to_vec())
        .ok()
        .map(Some)
}

/// A Kafka STRING or NULLABLE_STRING (null reads as empty).
pub(crate) fn get_str(b: &mut Bytes) -> Option<String> {
    get_nullable(b).map(Option::unwrap_or_default)
}

fn get_bytes(b: &mut Bytes) -> Option<Bytes> {
    if b.remaining() < 4 {
        return None;
    }
    let len = b.get_i32();
    if len < 0 {
        return Some(Bytes::new());
    }
    (b.remaining() >= len as usize).then(|| b.split_to(len as usize))
}

fn get_i32(b: &mut Bytes) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

/// The key of a group's metadata record.
pub fn encode_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(KEY_VERSION);
    put_str(&mut b, group);
    b.freeze()
}

/// The group id of a metadata key; `None` for other record kinds.
pub fn decode_key(mut b: Bytes) -> Option<String> {
    if b.remaining() < 2 || b.get_i16() != KEY_VERSION {
        return None;
    }
    get_str(&mut b)
}

pub fn encode_value(g: &GroupMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(VALUE_VERSION);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable(&mut b, g.protocol.as_deref());
    put_nullable(&mut b, g.leader.as_deref());
    b.put_i64(g.current_state_timestamp);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// Decodes value versions 0 to 3 (fields a version lacks take Kafka's defaults).
pub fn decode_value(mut b: Bytes) -> Option<GroupMetadata> {
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if !(0..=VALUE_VERSION).contains(&version) {
        return None;
    }
    let protocol_type = get_str(&mut b)?;
    let generation = get_i32(&mut b)?;
    let protocol = get_nullable(&mut b)?;
    let leader = get_nullable(&mut b)?;
    let current_state_timestamp = if version >= 2 {
        (b.remaining() >= 8).then(|| b.get_i64())?
    } else {
        -1
    };
    let count = get_i32(&mut b)?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_str(&mut b)?;
        let group_instance_id = if version >= 3 {
            get_nullable(&mut b)?
        } else {
            None
        };
        let client_id = get_str(&mut b)?;
        let client_host = get_str(&mut b)?;
        let session_first = version == 0;
        let (rebalance_timeout_ms, session_timeout_ms) = if session_first {
            let s = get_i32(&mut b)?;
            (s, s)
        } else {
            (get_i32(&mut b)?, get_i32(&mut b)?)
        };
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription: get_bytes(&mut b)?,
            assignment: get_bytes(&mut b)?,
        });
    }
    Some(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_other_keys() {
        let g = GroupMetadata {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 123,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_value(encode_value(&g)), Some(g));
        assert_eq!(decode_key(encode_key("grp")), Some("grp".into()));
        // An offset-commit key (version 1) is not a group key.
        assert_eq!(decode_key(Bytes::from_static(&[0, 1, 0, 1, b'g'])), None);
        assert_eq!(decode_value(Bytes::from_static(&[0, 3, 0])), None);
    }
}
