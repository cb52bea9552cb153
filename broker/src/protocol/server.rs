//! The TCP server: accepts connections and runs one reader and one writer per
//! connection. Requests are decoded and dispatched in arrival order (so produce
//! appends keep the client's order); their replies may complete concurrently
//! (a long-polling fetch, an fsync) but are written back in request order, as Kafka
//! clients require. A malformed or oversized frame closes only its own connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::buffers::{BufferPool, POOLED_SIZE};
use super::dispatch::{dispatch, Connection};
use crate::broker::BrokerState;

/// Replies in flight per connection before the reader waits (librdkafka sends ≤ 5).
const MAX_IN_FLIGHT: usize = 64;
/// A request body is read (and its memory reserved) this much at a time at first,
/// then in doubling steps, so memory follows the bytes that actually arrived. 1 MiB
/// holds a whole librdkafka request (batch.size and message.max.bytes default to 1 MB)
/// in one allocation, without copies as the buffer grows.
const READ_CHUNK: usize = POOLED_SIZE;
/// How long shutdown waits for connections to finish the requests they are handling.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Broker-wide limits on connections and on the memory of requests in flight.
struct Limits {
    /// Permits are bytes (`queued.max.request.bytes`); `None` when unbounded.
    memory: Option<Arc<Semaphore>>,
    /// `max.connections`.
    connections: Arc<Semaphore>,
    max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    buffers: Arc<BufferPool>,
}

/// A connection's place in its address's count; given back when dropped.
struct IpSlot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = crate::sync::lock(&self.limits.per_ip);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    fn new(state: &BrokerState) -> Limits {
        let c = &state.config;
        let permits = |n: usize| n.min(Semaphore::MAX_PERMITS);
        Limits {
            memory: c
                .queued_max_request_bytes
                .map(|q| Arc::new(Semaphore::new(permits(q)))),
            connections: Arc::new(Semaphore::new(permits(c.max_connections))),
            max_per_ip: c.max_connections_per_ip,
            per_ip: Mutex::new(HashMap::new()),
            buffers: Arc::default(),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut m = crate::sync::lock(&self.per_ip);
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            limits: self.clone(),
            ip,
        })
    }
}

/// Accepts connections until `stop`, then drains them: each stops reading at its next
/// request boundary and finishes the requests it already has (so no append lands
/// after the shutdown flush); connections still busy after [`DRAIN_TIMEOUT`] are
/// aborted, which is safe since appends happen synchronously in dispatch.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = Arc::new(Limits::new(&state));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let slot = tokio::select! {
            p = limits.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(ip_slot) = limits.admit(peer.ip()) else {
                    tracing::warn!(%peer, max = limits.max_per_ip,
                        "closing a new connection: max.connections.per.ip reached");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (state, stop, limits) = (state.clone(), stop.clone(), limits.clone());
                conns.spawn(async move {
                    let memory = limits.memory.clone();
                    serve(stream, peer, state, stop, memory, limits.buffers.clone()).await;
                    drop((slot, ip_slot));
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        tracing::warn!(
            open = conns.len(),
            "connections still busy after the drain timeout; closing them"
        );
        conns.shutdown().await;
    }
}

/// Reads a body of `len` bytes, reserving memory from `memory` as it grows. Bodies up
/// to [`POOLED_SIZE`] go into a pooled buffer.
async fn read_body<R: AsyncRead + Unpin>(
    rd: &mut R,
    len: usize,
    memory: Option<&Arc<Semaphore>>,
    pool: &Arc<BufferPool>,
) -> std::io::Result<(Bytes, Option<OwnedSemaphorePermit>)> {
    let mut buf: Vec<u8> = if len <= POOLED_SIZE {
        pool.take()
    } else {
        Vec::new()
    };
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut reserved = 0;
    while buf.len() < len {
        if reserved == buf.len() {
            let grow = reserved.max(READ_CHUNK).min(len - reserved);
            reserved += grow;
            if let Some(m) = memory {
                let p = m
                    .clone()
                    .acquire_many_owned(grow as u32)
                    .await
                    .map_err(std::io::Error::other)?;
                match &mut held {
                    Some(h) => h.merge(p),
                    None => held = Some(p),
                }
            }
            buf.reserve_exact(reserved.saturating_sub(buf.capacity()));
        }
        let want = reserved - buf.len();
        let n = (&mut *rd).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok((pool.freeze(buf), held))
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
    memory: Option<Arc<Semaphore>>,
    pool: Arc<BufferPool>,
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
        if *stop.borrow() {
            break;
        }
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
        let body = tokio::select! {
            b = read_body(&mut rd, len as usize, memory.as_ref(), &pool) => b,
            _ = stop.changed() => break,
        };
        let (buf, reserved) = match body {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%peer, len, error = %e, "closing connection: truncated frame");
                break;
            }
        };
        match dispatch(&state, &conn, buf) {
            Ok(reply) => {
                // The reservation lasts until the request is answered.
                let handle = tokio::spawn(async move {
                    let frame = reply.await;
                    drop(reserved);
                    frame
                });
                if tx.send(handle).await.is_err() {
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
