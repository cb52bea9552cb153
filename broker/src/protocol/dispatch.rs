//! Request dispatch: parse the header, check the version against what we advertise,
//! decode the body and hand it to its API family's handler. Each handler yields a
//! [`Reply`]: a future of the encoded response frame (`None` for acks=0 produces).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use super::{
    admin, api_versions, configs, fetch, groups, metadata, offsets, produce, transactions,
};
use crate::broker::BrokerState;
use crate::error::ErrorCode;

pub(crate) type Reply = Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// What a handler knows of the connection.
pub(crate) struct Connection {
    pub peer: SocketAddr,
}

/// Request context passed to handlers.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

impl Ctx {
    /// Encodes a response frame: length, header (v0 or v1 by API and version), body.
    pub(crate) fn frame<R: Encodable>(&self, body: &R) -> Option<Bytes> {
        let header_version = self.api_key.response_header_version(self.version);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        let mut header = ResponseHeader::default();
        header.correlation_id = self.correlation_id;
        let encoded = header
            .encode(&mut buf, header_version)
            .and_then(|_| body.encode(&mut buf, self.version));
        if let Err(e) = encoded {
            tracing::error!(api = ?self.api_key, version = self.version, error = %e, "could not encode a response");
            return None;
        }
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Some(buf.freeze())
    }

    pub(crate) fn ready<R: Encodable>(&self, body: R) -> Reply {
        let frame = self.frame(&body);
        Box::pin(async move { frame })
    }

    pub(crate) fn later<R, F>(self, fut: F) -> Reply
    where
        R: Encodable,
        F: Future<Output = R> + Send + 'static,
    {
        Box::pin(async move { self.frame(&fut.await) })
    }
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, String> {
    T::decode(body, version).map_err(|e| format!("cannot decode request body: {e}"))
}

/// Parses one request frame and starts handling it. An error means the connection
/// should be closed (the message says why).
pub(crate) fn dispatch(
    state: &Arc<BrokerState>,
    conn: &Connection,
    frame: Bytes,
) -> Result<Reply, String> {
    if frame.len() < 8 {
        return Err(format!(
            "request of {} bytes is shorter than a header",
            frame.len()
        ));
    }
    let mut peek = frame.clone();
    let key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api_key = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    if !api_versions::is_supported(api_key, version) {
        if api_key == ApiKey::ApiVersions {
            let reply = api_versions::unsupported_version_frame(correlation_id);
            return Ok(Box::pin(async move { reply }));
        }
        return Err(format!("unsupported version {version} of {api_key:?}"));
    }
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api_key.request_header_version(version))
        .map_err(|e| format!("cannot decode request header: {e}"))?;
    let client_id = header
        .client_id
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let ctx = Ctx {
        api_key,
        version,
        correlation_id,
    };
    let st = state.clone();
    let b = &mut body;
    let v = version;
    let reply = match api_key {
        ApiKey::ApiVersions => {
            let _: ApiVersionsRequest = decode(b, v)?;
            ctx.ready(api_versions::response(ErrorCode::None))
        }
        ApiKey::Metadata => ctx.ready(metadata::metadata(&st, decode(b, v)?, v)),
        ApiKey::DescribeCluster => ctx.ready(metadata::describe_cluster(&st, decode(b, v)?)),
        ApiKey::Produce => produce::produce(st, decode(b, v)?, ctx),
        ApiKey::InitProducerId => ctx.later(transactions::init_producer_id(st, decode(b, v)?, v)),
        ApiKey::AddPartitionsToTxn => {
            ctx.later(transactions::add_partitions_to_txn(st, decode(b, v)?, v))
        }
        ApiKey::AddOffsetsToTxn => {
            ctx.later(transactions::add_offsets_to_txn(st, decode(b, v)?, v))
        }
        ApiKey::TxnOffsetCommit => ctx.later(transactions::txn_offset_commit(st, decode(b, v)?)),
        ApiKey::EndTxn => ctx.later(transactions::end_txn(st, decode(b, v)?, v)),
        ApiKey::DescribeTransactions => {
            ctx.later(transactions::describe_transactions(st, decode(b, v)?))
        }
        ApiKey::ListTransactions => ctx.later(transactions::list_transactions(st, decode(b, v)?)),
        ApiKey::Fetch => ctx.later(fetch::fetch(st, decode(b, v)?)),
        ApiKey::ListOffsets => ctx.ready(fetch::list_offsets(&st, decode(b, v)?)),
        ApiKey::CreateTopics => ctx.ready(admin::create_topics(&st, decode(b, v)?, v)),
        ApiKey::DeleteTopics => ctx.ready(admin::delete_topics(&st, decode(b, v)?)),
        ApiKey::CreatePartitions => ctx.ready(admin::create_partitions(&st, decode(b, v)?)),
        ApiKey::DescribeConfigs => ctx.ready(configs::describe_configs(&st, decode(b, v)?)),
        ApiKey::AlterConfigs => ctx.ready(configs::alter_configs(&st, decode(b, v)?)),
        ApiKey::IncrementalAlterConfigs => {
            ctx.ready(configs::incremental_alter_configs(&st, decode(b, v)?))
        }
        ApiKey::FindCoordinator => ctx.ready(groups::find_coordinator(&st, decode(b, v)?, v)),
        ApiKey::JoinGroup => {
            let req = decode(b, v)?;
            let host = format!("/{}", conn.peer.ip());
            ctx.later(async move { groups::join_group(&st, req, v, client_id, host).await })
        }
        ApiKey::SyncGroup => {
            let req = decode(b, v)?;
            ctx.later(async move { groups::sync_group(&st, req).await })
        }
        ApiKey::Heartbeat => ctx.ready(groups::heartbeat(&st, decode(b, v)?)),
        ApiKey::LeaveGroup => ctx.ready(groups::leave_group(&st, decode(b, v)?, v)),
        ApiKey::ListGroups => ctx.ready(groups::list_groups(&st, decode(b, v)?)),
        ApiKey::DescribeGroups => ctx.ready(groups::describe_groups(&st, decode(b, v)?)),
        ApiKey::DeleteGroups => ctx.ready(groups::delete_groups(&st, decode(b, v)?)),
        ApiKey::OffsetCommit => ctx.ready(offsets::offset_commit(&st, decode(b, v)?)),
        ApiKey::OffsetFetch => ctx.ready(offsets::offset_fetch(&st, decode(b, v)?)),
        other => return Err(format!("{other:?} is not implemented")),
    };
    Ok(reply)
}
