//! Locks that outlive a panic: a thread that panicked while holding one has failed
//! already (and is reported as failed); the data it guarded stays consistent enough
//! to serve, so the other threads go on instead of cascading the panic through lock
//! poisoning. One definition for the crate.

use std::sync::{Mutex, MutexGuard};

/// The mutex's data, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
