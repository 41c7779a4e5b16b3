//! Locks that outlive a panic: every host lock is taken through these, so a thread that
//! panicked while holding one never stops the others (what it guarded is kept as it was).

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

/// The lock, waiting for it; a poisoned one is taken as it is.
///
/// ```
/// let m = std::sync::Mutex::new(1);
/// *mcp_policy_gateway::host::sync::lock(&m) += 1;
/// assert_eq!(*mcp_policy_gateway::host::sync::lock(&m), 2);
/// ```
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The lock when it is free now (a poisoned one is taken as it is), else `None`.
pub fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_still_taken_and_a_held_one_is_not_tried() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = std::sync::Arc::clone(&m);
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
        let held = lock(&m);
        assert!(try_lock(&m).is_none());
        drop(held);
        assert_eq!(try_lock(&m).map(|g| *g), Some(2));
    }
}
