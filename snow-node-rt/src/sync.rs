//! Lock helpers shared by the runtime's modules.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the value of a lock poisoned by a panic as it is: every lock in the runtime
/// guards state that each operation leaves consistent before it can panic, and a node must go
/// on serving its other processes after one of them panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
