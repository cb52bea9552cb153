//! The Kafka wire protocol: the server, request dispatch and one module per API family.
//! Decoding and encoding use the `kafka-protocol` crate; handlers never touch sockets.

pub(crate) mod admin;
pub(crate) mod api_versions;
pub(crate) mod buffers;
pub(crate) mod configs;
pub(crate) mod dispatch;
pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod metadata;
pub(crate) mod offsets;
pub(crate) mod produce;
pub(crate) mod server;
pub(crate) mod transactions;

use kafka_protocol::protocol::StrBytes;

/// An ApiVersions response for given version ranges (used by `runnel perf sink`).
pub use api_versions::listing as api_versions_listing;

/// A `StrBytes` from any string.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
