//! Resource limits (Kafka's `queued.max.request.bytes`, `max.connections`,
//! `max.connections.per.ip`) and a shutdown that drains connections first.

use std::time::Duration;

use bytes::BufMut;
use kafka_protocol::messages::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;
use crate::raw::{call, frame, idempotent_batch, produce_req, read_response};

/// The process's virtual memory size in KiB (Linux).
fn vm_size_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn api_versions(s: &mut TcpStream) -> Option<ApiVersionsResponse> {
    let f = frame(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());
    s.write_all(&f).await.ok()?;
    read_response(s, ApiKey::ApiVersions, 0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_huge_frames_do_not_take_memory() {
    // Each connection declares a 100 MiB request and sends 10 bytes of it. The broker
    // used to allocate every declared frame before reading its body (100 x 100 MiB);
    // it now reserves memory as bytes arrive, within queued.max.request.bytes.
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let before = vm_size_kib();
    let mut conns = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
        let mut f = Vec::new();
        f.put_i32(100 << 20);
        f.put_slice(&[0u8; 10]);
        s.write_all(&f).await.unwrap();
        conns.push(s);
    }
    // A well-behaved client is served meanwhile, so the broker has read the frames.
    let mut ok = TcpStream::connect(broker.local_addr()).await.unwrap();
    assert_eq!(api_versions(&mut ok).await.unwrap().error_code, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown_mib = vm_size_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 2048,
        "100 half-sent 100 MiB frames grew the process by {grown_mib} MiB"
    );
    drop(conns);
    broker.shutdown().await.unwrap();
}

/// Two connections, each answered once.
async fn two_served(addr: std::net::SocketAddr) -> (TcpStream, TcpStream) {
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    assert!(api_versions(&mut a).await.is_some());
    assert!(api_versions(&mut b).await.is_some());
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_overall_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("max.connections.per.ip", "2")]).await;
    let addr = broker.local_addr();
    let (a, _b) = two_served(addr).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert!(
        api_versions(&mut c).await.is_none(),
        "a third connection from 127.0.0.1 is closed"
    );
    drop(a);
    // The freed place is taken by the next connection (the count is per address).
    let mut d = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if api_versions(&mut s).await.is_some() {
            d = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        d.is_some(),
        "a place freed by a closed connection is reused"
    );
    broker.shutdown().await.unwrap();

    // max.connections: the third connection waits to be accepted until one closes.
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[("max.connections", "2")]).await;
    let addr = broker.local_addr();
    let (a, _b) = two_served(addr).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), api_versions(&mut c)).await;
    assert!(
        waiting.is_err(),
        "not served while two connections are open"
    );
    drop(a);
    let served = tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = c;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf)
            .await
            .map(|_| i32::from_be_bytes(buf))
    })
    .await;
    assert!(
        matches!(served, Ok(Ok(n)) if n > 0),
        "served once a place is free: {served:?}"
    );
    broker.shutdown().await.unwrap();
}

#[test]
fn queued_max_request_bytes_must_hold_one_request() {
    let c = runnel_broker::BrokerConfig::default();
    assert_eq!(c.queued_max_request_bytes, Some(2 * 104_857_600));
    let c = c.with_property("queued.max.request.bytes", "-1").unwrap();
    assert_eq!(c.queued_max_request_bytes, None, "Kafka's -1: unbounded");
    let e = c
        .with_property("queued.max.request.bytes", "1000")
        .unwrap_err();
    assert!(e.to_string().contains("socket.request.max.bytes"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_connections_before_the_final_flush() {
    // Producers keep sending while the broker shuts down. Every acknowledged record
    // must be there after the restart, and nothing may be appended once shutdown()
    // returned (it used to wait only for the accept loop, so an append could land
    // after the final flush and the clean-shutdown marker).
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    create_topic(&broker.bootstrap(), "drain", 1, &[]).await;
    let addr = broker.local_addr();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut acked_end = 0i64;
                for _ in 0..100_000 {
                    let mut req = produce_req("drain", idempotent_batch(-1, -1, -1, 10));
                    req.acks = 1;
                    if s.write_all(&frame(ApiKey::Produce, 9, &req)).await.is_err() {
                        break;
                    }
                    let Some(r) =
                        read_response::<ProduceResponse>(&mut s, ApiKey::Produce, 9).await
                    else {
                        break;
                    };
                    let p = &r.responses[0].partition_responses[0];
                    if p.error_code != 0 {
                        break;
                    }
                    acked_end = acked_end.max(p.base_offset + 10);
                }
                acked_end
            })
        })
        .collect();
    // A slow producer has sent half of a request when the shutdown begins.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let mut req = produce_req("drain", idempotent_batch(-1, -1, -1, 10));
    req.acks = 1;
    let slow_frame = frame(ApiKey::Produce, 9, &req);
    let half = slow_frame.len() / 2;
    slow.write_all(&slow_frame[..half]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.shutdown().await.unwrap();
    let log = dir.path().join("drain-0").join(format!("{:020}.log", 0));
    let size_at_shutdown = std::fs::metadata(&log).unwrap().len();
    // Its second half arrives after shutdown() returned: it must not be appended.
    let _ = slow.write_all(&slow_frame[half..]).await;
    let late = tokio::time::timeout(
        Duration::from_millis(500),
        read_response::<ProduceResponse>(&mut slow, ApiKey::Produce, 9),
    )
    .await;
    assert!(
        !matches!(late, Ok(Some(_))),
        "a request completed after shutdown was answered"
    );
    let mut acked = 0;
    for p in producers {
        acked = acked.max(p.await.unwrap());
    }
    assert!(
        acked > 0,
        "the producers were acknowledged before the shutdown"
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        size_at_shutdown,
        "nothing is appended after shutdown() returned"
    );
    let broker = start(dir.path(), &[]).await;
    let mut s = TcpStream::connect(broker.local_addr()).await.unwrap();
    let mut req = ListOffsetsRequest::default();
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = TopicName(kafka_protocol::protocol::StrBytes::from_static_str("drain"));
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.timestamp = -1;
    t.partitions = vec![p];
    req.topics = vec![t];
    let r: ListOffsetsResponse = call(&mut s, ApiKey::ListOffsets, 1, &req).await;
    let end = r.topics[0].partitions[0].offset;
    assert!(
        end >= acked,
        "log end {end} after restart, {acked} acknowledged"
    );
    broker.shutdown().await.unwrap();
}
