//! The TCP server: accepts connections and runs one reader and one writer per
//! connection. Requests are decoded and dispatched in arrival order (so produce
//! appends keep the client's order); their replies may complete concurrently
//! (a long-polling fetch, an fsync) but are written back in request order, as Kafka
//! clients require. A malformed or oversized frame closes only its own connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::dispatch::{dispatch, Connection};
use crate::broker::BrokerState;

/// Replies in flight per connection before the reader waits (librdkafka sends ≤ 5).
const MAX_IN_FLIGHT: usize = 64;

pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, peer, state.clone(), stop.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<tokio::task::JoinHandle<Option<Bytes>>>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            match reply.await {
                Ok(Some(frame)) => {
                    if wr.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(%peer, error = %e, "request handler failed; closing connection");
                    return;
                }
            }
        }
    });
    let conn = Connection { peer };
    let max = state.config.socket_request_max_bytes;
    loop {
        let len = tokio::select! {
            r = rd.read_i32() => match r {
                Ok(n) => n,
                Err(_) => break, // the client went away
            },
            _ = stop.changed() => break,
        };
        if len < 0 || len as usize > max {
            tracing::warn!(%peer, len, max, "closing connection: frame size is negative or above socket.request.max.bytes");
            break;
        }
        let mut buf = vec![0u8; len as usize];
        if let Err(e) = rd.read_exact(&mut buf).await {
            tracing::warn!(%peer, len, error = %e, "closing connection: truncated frame");
            break;
        }
        match dispatch(&state, &conn, Bytes::from(buf)) {
            Ok(reply) => {
                if tx.send(tokio::spawn(reply)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: malformed request");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
