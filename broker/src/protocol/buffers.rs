//! A small broker-wide pool of request buffers. Reading each produce request into a
//! freshly allocated megabyte made the kernel fault in and zero new pages for every
//! request (about 7% of the broker's time under kcat, measured with perf); buffers
//! handed back when the request's bytes are dropped arrive already mapped.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Size of a pooled buffer: holds a whole librdkafka request (batch.size and
/// message.max.bytes default to 1 MB).
pub(crate) const POOLED_SIZE: usize = 1024 * 1024;
/// Idle buffers kept at most (memory held when idle: this many megabytes).
const MAX_IDLE: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

/// A pooled buffer inside a `Bytes`; goes back to the pool when the last view drops.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut idle = crate::sync::lock(&self.pool.idle);
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }
}

impl BufferPool {
    /// An empty buffer of capacity [`POOLED_SIZE`], reused when one is idle.
    pub(crate) fn take(&self) -> Vec<u8> {
        let reused = crate::sync::lock(&self.idle).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(POOLED_SIZE))
    }

    /// The buffer's contents as `Bytes`; a pooled buffer returns to the pool afterwards.
    pub(crate) fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        if buf.capacity() == POOLED_SIZE {
            Bytes::from_owner(Pooled {
                buf,
                pool: self.clone(),
            })
        } else {
            Bytes::from(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_bytes_are_dropped() {
        let pool = Arc::new(BufferPool::default());
        let mut b = pool.take();
        b.extend_from_slice(b"request");
        let ptr = b.as_ptr();
        let bytes = pool.freeze(b);
        let view = bytes.slice(1..4);
        drop(bytes);
        assert!(
            pool.idle.lock().unwrap().is_empty(),
            "a view still holds it"
        );
        assert_eq!(&view[..], b"equ");
        drop(view);
        let again = pool.take();
        assert_eq!(
            (again.as_ptr(), again.len()),
            (ptr, 0),
            "the same buffer, emptied"
        );
        // Other sizes are not pooled.
        drop(pool.freeze(vec![1, 2, 3]));
        assert!(pool.idle.lock().unwrap().is_empty());
    }
}
