//! Who waits for which run's context ([`super::Store::wait_run`]): a job's `queued` event often
//! reaches the guard before its run's `workflow_run`, and waits for it. Each waiter is woken
//! only when the store commits the run attempt it waits for, so a burst of waiting jobs costs
//! one wake-up each, not one per run stored.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

/// A run attempt: (run id, attempt).
type Key = (i64, i64);

#[derive(Debug, Default)]
pub(super) struct RunWaiters {
    waiting: Mutex<HashMap<Key, Arc<Notify>>>,
}

impl RunWaiters {
    /// Registers a wait for `key`, ended when the returned [`Waiting`] is dropped.
    pub(super) fn wait_for(&self, key: Key) -> Waiting<'_> {
        let notify = self
            .lock()
            .entry(key)
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        Waiting {
            waiters: self,
            key,
            notify,
        }
    }

    /// Wakes whoever waits for one of `stored`.
    pub(super) fn stored(&self, stored: impl IntoIterator<Item = Key>) {
        let waiting = self.lock();
        if waiting.is_empty() {
            return;
        }
        for key in stored {
            if let Some(notify) = waiting.get(&key) {
                notify.notify_waiters();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Notify>>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// One registered wait; dropping it (the wait ended, or its task was cancelled) forgets the
/// run when no one else waits for it.
pub(super) struct Waiting<'a> {
    waiters: &'a RunWaiters,
    key: Key,
    pub(super) notify: Arc<Notify>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = self.waiters.lock();
        // The map's handle and this one: no other waiter.
        if waiting
            .get(&self.key)
            .is_some_and(|n| Arc::strong_count(n) <= 2)
        {
            waiting.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_waiters_of_a_stored_run_are_woken_and_none_is_left_behind() {
        let waiters = RunWaiters::default();
        let a = waiters.wait_for((1, 1));
        let a2 = waiters.wait_for((1, 1));
        let b = waiters.wait_for((2, 1));
        {
            let (woken_a, woken_a2, woken_b) = (
                a.notify.notified(),
                a2.notify.notified(),
                b.notify.notified(),
            );
            tokio::pin!(woken_a, woken_a2, woken_b);
            for w in [woken_a.as_mut(), woken_a2.as_mut(), woken_b.as_mut()] {
                w.enable();
            }
            waiters.stored([(1, 1), (3, 1)]);
            let now = std::time::Duration::from_millis(1);
            assert!(tokio::time::timeout(now, woken_a).await.is_ok());
            assert!(tokio::time::timeout(now, woken_a2).await.is_ok());
            assert!(tokio::time::timeout(now, woken_b).await.is_err());
        }
        drop(a);
        assert_eq!(waiters.len(), 2, "run 1 still has a waiter");
        drop((a2, b));
        assert_eq!(waiters.len(), 0);
    }
}
