//! ApiVersions: the versions this broker implements, and the v0-format fallback reply
//! for clients that ask with a version we do not support (KIP-511).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::Encodable;

use crate::error::ErrorCode;

/// Every API and version range advertised; each is implemented and tested.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 9),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

pub(crate) fn is_supported(key: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|(k, lo, hi)| *k == key && (*lo..=*hi).contains(&version))
}

pub(crate) fn response(error: ErrorCode) -> ApiVersionsResponse {
    let mut r = listing(SUPPORTED);
    r.error_code = error.code();
    r
}

/// An ApiVersions response advertising `ranges` (API, lowest, highest version).
pub fn listing(ranges: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.finalized_features_epoch = -1;
    r.api_keys = ranges
        .iter()
        .map(|(k, lo, hi)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = *lo;
            v.max_version = *hi;
            v
        })
        .collect();
    r
}

/// The reply to an ApiVersions request of a version we do not support: response header
/// v0 and a v0 body carrying UNSUPPORTED_VERSION and our ranges, so the client retries.
pub(crate) fn unsupported_version_frame(correlation_id: i32) -> Option<Bytes> {
    let mut body = BytesMut::new();
    response(ErrorCode::UnsupportedVersion)
        .encode(&mut body, 0)
        .ok()?;
    let mut frame = BytesMut::with_capacity(body.len() + 8);
    frame.put_i32(body.len() as i32 + 4);
    frame.put_i32(correlation_id);
    frame.put_slice(&body);
    Some(frame.freeze())
}
