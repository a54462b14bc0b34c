//! A byte budget for plaintext in flight: what bounds the engine's memory.
//!
//! Every blob handed to the engine holds a [`Lease`] on its plaintext size
//! from the moment it is queued until it is sealed into a pack (or found to
//! be on the server already). A caller that would take the engine past the
//! budget waits, so readers can never run ahead of sealing and uploading by
//! more than the budget, however fast they read. A single blob larger than
//! the whole budget is let through when nothing else is in flight, so no
//! blob can wait forever.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Bytes of plaintext that may be queued at once.
#[derive(Debug)]
pub(super) struct ByteBudget {
    /// The most that may be leased at once.
    limit: u64,
    /// Bytes leased now.
    used: Mutex<u64>,
    /// Signalled whenever a lease is returned.
    returned: Condvar,
}

/// Bytes taken from a [`ByteBudget`], given back on drop.
#[derive(Debug)]
pub(super) struct Lease {
    budget: Arc<ByteBudget>,
    bytes: u64,
}

impl ByteBudget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: Mutex::new(0),
            returned: Condvar::new(),
        })
    }

    /// Takes `bytes`, waiting until they fit (or nothing else is leased).
    pub fn acquire(self: &Arc<Self>, bytes: u64) -> Lease {
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used > 0 && *used + bytes > self.limit {
            used = self
                .returned
                .wait(used)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *used += bytes;
        Lease {
            budget: Arc::clone(self),
            bytes,
        }
    }

    /// Bytes leased now.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used -= self.bytes;
        drop(used);
        self.budget.returned.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_lease_that_does_not_fit_waits_until_another_is_returned() {
        // Arrange
        let budget = ByteBudget::new(100);
        let first = budget.acquire(70);
        let (sent, received) = mpsc::channel();

        // Act
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let lease = budget.acquire(40);
                sent.send(()).unwrap();
                drop(lease);
            })
        };

        // Assert
        assert!(
            received.recv_timeout(Duration::from_millis(100)).is_err(),
            "70 + 40 bytes went past a budget of 100"
        );
        drop(first);
        received
            .recv_timeout(Duration::from_secs(5))
            .expect("the waiter got its lease once the first was returned");
        waiter.join().unwrap();
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_blob_larger_than_the_budget_passes_alone() {
        let budget = ByteBudget::new(10);
        let lease = budget.acquire(1000);
        assert_eq!(budget.used(), 1000);
        drop(lease);
        assert_eq!(budget.used(), 0);
    }
}
