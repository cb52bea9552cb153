//! `runnel perf sink`: the thinnest Kafka endpoint a producer can talk to, as a
//! reference for the broker's produce figures that includes the client's own work. It
//! answers ApiVersions, Metadata (every topic has one partition, led by itself) and
//! Produce, writing each request's record bytes to one file in the page cache with no
//! validation, index, offsets check or durability. A client against it runs at the
//! machine's limit for that client; the broker's throughput is measured against that.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The versions the sink speaks (what librdkafka needs to produce).
const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Metadata, 0, 9),
    (ApiKey::ApiVersions, 0, 3),
];

/// Serves until killed; one thread per connection.
pub fn run(listen: &str, dir: &Path) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    println!("sink listening on {addr}");
    for (n, conn) in listener.incoming().enumerate() {
        let conn = conn?;
        let path = dir.join(format!("sink-{n}.bin"));
        std::thread::spawn(move || {
            if let Err(e) = serve(conn, addr, &path) {
                eprintln!("sink connection: {e:#}");
            }
        });
    }
    Ok(())
}

fn serve(mut conn: TcpStream, addr: std::net::SocketAddr, path: &Path) -> anyhow::Result<()> {
    conn.set_nodelay(true)?;
    let mut file = std::fs::File::create(path)?;
    let mut next_offset = 0i64;
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if conn.read_exact(&mut len).is_err() {
            return Ok(());
        }
        body.resize(i32::from_be_bytes(len).max(8) as usize, 0);
        conn.read_exact(&mut body)?;
        let key = ApiKey::try_from((&body[..2]).get_i16())
            .map_err(|_| anyhow::anyhow!("unknown API key"))?;
        let version = (&body[2..4]).get_i16();
        // The request buffer is lent to the decoder and taken back after (no copy, and
        // no fresh pages per request).
        let frame_bytes = Bytes::from(std::mem::take(&mut body));
        let mut buf = frame_bytes.clone();
        let header = RequestHeader::decode(&mut buf, key.request_header_version(version))?;
        let reply = match key {
            ApiKey::ApiVersions => {
                let r = runnel_broker::protocol::api_versions_listing(VERSIONS);
                frame(key, version.min(3), header.correlation_id, &r)?
            }
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut buf, version)?;
                let mut r = MetadataResponse::default();
                let mut b = MetadataResponseBroker::default();
                b.node_id = BrokerId(0);
                b.host = StrBytes::from_string(addr.ip().to_string());
                b.port = addr.port() as i32;
                r.brokers = vec![b];
                r.controller_id = BrokerId(0);
                r.cluster_id = Some(StrBytes::from_static_str("runnel-sink"));
                for t in req.topics.unwrap_or_default() {
                    let mut p = MetadataResponsePartition::default();
                    p.leader_id = BrokerId(0);
                    p.replica_nodes = vec![BrokerId(0)];
                    p.isr_nodes = vec![BrokerId(0)];
                    let mut topic = MetadataResponseTopic::default();
                    topic.name = t.name;
                    topic.partitions = vec![p];
                    r.topics.push(topic);
                }
                frame(key, version, header.correlation_id, &r)?
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut buf, version)?;
                let mut r = ProduceResponse::default();
                for t in req.topic_data {
                    let mut tr = TopicProduceResponse::default();
                    tr.name = t.name;
                    for p in t.partition_data {
                        let records = p.records.unwrap_or_default();
                        file.write_all(&records)?;
                        let mut pr = PartitionProduceResponse::default();
                        pr.index = p.index;
                        pr.base_offset = next_offset;
                        next_offset += record_count(&records);
                        pr.log_append_time_ms = -1;
                        tr.partition_responses.push(pr);
                    }
                    r.responses.push(tr);
                }
                if req.acks == 0 {
                    drop(buf);
                    body = Vec::from(frame_bytes);
                    continue;
                }
                frame(key, version, header.correlation_id, &r)?
            }
            other => anyhow::bail!("the sink does not speak {other:?}"),
        };
        drop(buf);
        body = Vec::from(frame_bytes);
        conn.write_all(&reply)?;
    }
}

/// Records in a request's batches, from each v2 header's record count.
fn record_count(mut b: &[u8]) -> i64 {
    let mut n = 0;
    while b.len() >= 61 {
        let size = (&b[8..12]).get_i32().max(0) as usize + 12;
        n += (&b[57..61]).get_i32() as i64;
        b = &b[size.min(b.len())..];
    }
    n
}

fn frame<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> anyhow::Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header.encode(&mut buf, key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.to_vec())
}
