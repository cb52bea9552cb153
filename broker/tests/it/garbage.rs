//! Malformed input closes only the offending connection; the broker keeps serving.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Sends `bytes` and waits until the broker closes the connection (or 2 s pass).
async fn send_and_expect_close(addr: std::net::SocketAddr, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_do_not_hurt_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let addr = broker.local_addr();
    let bs = broker.bootstrap();
    create_topic(&bs, "survivor", 1, &[]).await;

    // A huge length prefix is refused at once.
    assert!(send_and_expect_close(addr, &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).await);
    // A negative length.
    assert!(send_and_expect_close(addr, &[0xff, 0xff, 0xff, 0xf0]).await);
    // A frame that claims more bytes than it sends, then hangs up.
    assert!(send_and_expect_close(addr, &[0, 0, 0, 100, 0, 18, 0, 3]).await);
    // An unknown API key and a truncated header.
    assert!(send_and_expect_close(addr, &[0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1]).await);
    assert!(send_and_expect_close(addr, &[0, 0, 0, 3, 0, 3, 0]).await);
    // A Produce v9 header followed by junk.
    let mut junk = vec![0, 0, 0, 40, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0];
    junk.extend_from_slice(&[0xee; 25]);
    assert!(send_and_expect_close(addr, &junk).await);
    // Random bytes with small, valid-looking lengths.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let len: usize = rng.gen_range(8..300);
        let mut frame = (len as i32).to_be_bytes().to_vec();
        let mut body: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Aim at real API keys and versions sometimes, so the decoders see garbage.
        if rng.gen_bool(0.7) {
            body[0] = 0;
            body[1] = rng.gen_range(0..70);
            body[2] = 0;
            body[3] = rng.gen_range(0..10);
        }
        frame.extend_from_slice(&body);
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&frame).await;
        drop(s);
    }

    // A normal client is still served.
    let values: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    produce_all(&producer(&bs, &[("acks", "all")]), "survivor", &values, 1).await;
    assert_eq!(read_all(&bs, "survivor", 100).await.len(), 100);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_element_counts_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let addr = broker.local_addr();
    // Metadata v9 (flexible, header v2) whose topic array claims 4 billion entries.
    let mut frame = vec![0, 0, 0, 16, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0];
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(send_and_expect_close(addr, &frame).await);
    // Metadata v1 (classic array) claiming i32::MAX topics.
    let frame = [
        0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
    ];
    assert!(send_and_expect_close(addr, &frame).await);
    // The broker is still there for a real client.
    let bs = broker.bootstrap();
    create_topic(&bs, "still-here", 1, &[]).await;
    produce_all(&producer(&bs, &[]), "still-here", &["x".to_string()], 1).await;
    broker.shutdown().await.unwrap();
}
