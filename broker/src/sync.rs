//! Locks that outlive a panic: a thread that panicked while holding one has failed
//! already (and is reported as failed); the data it guarded stays consistent enough
//! to serve, so the other threads go on instead of cascading the panic through lock
//! poisoning. One definition for the crate.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The mutex's data, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lock's data to read, also after a panic elsewhere poisoned it.
pub(crate) fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// The lock's data to write, also after a panic elsewhere poisoned it.
pub(crate) fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
