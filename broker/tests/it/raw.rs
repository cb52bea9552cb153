//! Raw protocol checks where a client library would hide the broker's answer:
//! idempotent retries and sequence gaps, the ApiVersions fallback.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// One request frame: length, header (version by API), body.
pub(crate) fn frame<Req: Encodable>(key: ApiKey, version: i16, req: &Req) -> BytesMut {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = 42;
    header.client_id = Some(StrBytes::from_static_str("raw-test"));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    frame
}

/// Reads one response; `None` when the connection closed first.
pub(crate) async fn read_response<Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
) -> Option<Resp> {
    let len = s.read_i32().await.ok()?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    let mut buf = Bytes::from(buf);
    let resp_header =
        ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    assert_eq!(resp_header.correlation_id, 42);
    Some(Resp::decode(&mut buf, version).unwrap())
}

pub(crate) async fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    s.write_all(&frame(key, version, req)).await.unwrap();
    read_response(s, key, version)
        .await
        .expect("the broker answered")
}

pub(crate) fn idempotent_batch(producer_id: i64, epoch: i16, first_seq: i32, n: i32) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: first_seq + i,
            timestamp: 1000,
            key: None,
            value: Some(Bytes::from(format!("seq{}", first_seq + i))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

pub(crate) fn produce_req(topic: &str, records: Bytes) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = 0;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![td];
    req
}

fn result(resp: &ProduceResponse) -> (i16, i64) {
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_get_their_original_offsets_and_gaps_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    create_topic(&broker.bootstrap(), "seq", 1, &[]).await;
    let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
    let mut init_req = InitProducerIdRequest::default();
    init_req.transactional_id = None;
    init_req.producer_id = ProducerId(-1);
    init_req.producer_epoch = -1;
    let init: InitProducerIdResponse = call(&mut s, ApiKey::InitProducerId, 4, &init_req).await;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    let v = 9;
    let first: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 0, 0, 3)),
    )
    .await;
    assert_eq!(result(&first), (0, 0));
    let second: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 0, 3, 2)),
    )
    .await;
    assert_eq!(result(&second), (0, 3));
    // A retry of the first batch is acknowledged with its original offset, not appended.
    let retry: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 0, 0, 3)),
    )
    .await;
    assert_eq!(result(&retry), (0, 0));
    // A gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    let gap: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 0, 9, 1)),
    )
    .await;
    assert_eq!(result(&gap).0, 45);
    // An older epoch after a newer one: INVALID_PRODUCER_EPOCH (47).
    let bumped: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 1, 0, 1)),
    )
    .await;
    assert_eq!(result(&bumped), (0, 5));
    let stale: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 0, 5, 1)),
    )
    .await;
    assert_eq!(result(&stale).0, 47);
    assert_eq!(
        read_all(&broker.bootstrap(), "seq", 6).await.len(),
        6,
        "exactly 6 records were appended"
    );

    // Producer state survives a restart: the retry is still recognised.
    broker.shutdown().await.unwrap();
    let broker = start(dir.path(), &[]).await;
    let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
    let retry: ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        v,
        &produce_req("seq", idempotent_batch(pid, 1, 0, 1)),
    )
    .await;
    assert_eq!(result(&retry), (0, 5));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_api_versions_request_gets_a_v0_reply() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
    // ApiVersions v99 with a v2 header: answered with header v0 and a v0 body.
    let mut frame = BytesMut::new();
    frame.put_i32(10);
    frame.put_i16(18);
    frame.put_i16(99);
    frame.put_i32(7);
    frame.put_i16(-1);
    s.write_all(&frame).await.unwrap();
    let len = s.read_i32().await.unwrap();
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.unwrap();
    let mut buf = Bytes::from(buf);
    assert_eq!(buf.get_i32(), 7);
    let resp = ApiVersionsResponse::decode(&mut buf, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    let produce = resp.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (3, 9));
    // The connection stays usable: a supported ApiVersions now.
    let ok: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert_eq!(ok.error_code, 0);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_names_this_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("node.id", "7")]).await;
    let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
    let resp: DescribeClusterResponse = call(
        &mut s,
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default(),
    )
    .await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.controller_id.0, 7);
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(resp.brokers[0].port, broker.local_addr().port() as i32);
    assert!(!resp.cluster_id.is_empty());
    broker.shutdown().await.unwrap();
}
