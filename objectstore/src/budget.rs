//! A process-wide budget of memory for heavy work: indexing pushed packs and building fetches.
//!
//! A count of concurrent requests does not bound memory when one request can need a hundred
//! times what another does. Every heavy step therefore reserves the bytes it may need, worked
//! out from sizes it has already checked against the limits, before it allocates them; while
//! the budget is spent, further steps wait (a bounded time) for reservations to be returned,
//! and fail with [`OverBudget`] after that. Reservations are returned when dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The shared budget.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: Mutex<u64>,
    returned: Condvar,
}

/// A reservation could not be had in time (or can never fit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the server's memory budget cannot hold {requested} more bytes now ({in_use} of {limit} in use); try again later"
)]
pub struct OverBudget {
    /// Bytes asked for.
    pub requested: u64,
    /// Bytes reserved by others at the time.
    pub in_use: u64,
    /// The whole budget.
    pub limit: u64,
}

/// Bytes taken from a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: Mutex::new(0),
            returned: Condvar::new(),
        })
    }

    /// The whole budget.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An empty reservation, to [`Reservation::grow`] later.
    pub fn empty(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Reserve `bytes`, waiting up to `wait` for other reservations to be returned. Blocks the
    /// calling thread: call it from blocking code.
    pub fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        wait: Duration,
    ) -> Result<Reservation, OverBudget> {
        let mut r = self.empty();
        r.grow(bytes, wait)?;
        Ok(r)
    }

    fn take(&self, bytes: u64, wait: Duration) -> Result<(), OverBudget> {
        let over = |in_use| OverBudget {
            requested: bytes,
            in_use,
            limit: self.limit,
        };
        if bytes > self.limit {
            return Err(over(self.in_use()));
        }
        let deadline = Instant::now() + wait;
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        while *used + bytes > self.limit {
            let now = Instant::now();
            if now >= deadline {
                return Err(over(*used));
            }
            used = self
                .returned
                .wait_timeout(used, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *used += bytes;
        Ok(())
    }

    fn give_back(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(bytes);
        drop(used);
        self.returned.notify_all();
    }
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Take `more` bytes, waiting up to `wait`.
    pub fn grow(&mut self, more: u64, wait: Duration) -> Result<(), OverBudget> {
        self.budget.take(more, wait)?;
        self.bytes += more;
        Ok(())
    }

    /// Hold exactly `bytes` from now on (returning or taking the difference).
    pub fn resize(&mut self, bytes: u64, wait: Duration) -> Result<(), OverBudget> {
        if bytes > self.bytes {
            self.grow(bytes - self.bytes, wait)
        } else {
            self.budget.give_back(self.bytes - bytes);
            self.bytes = bytes;
            Ok(())
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_wait_for_returns_and_fail_after_the_wait() {
        let budget = MemoryBudget::new(100);
        let a = budget.reserve(60, Duration::ZERO).ok();
        assert!(a.is_some());
        let err = budget.reserve(50, Duration::from_millis(20)).unwrap_err();
        assert_eq!((err.requested, err.in_use, err.limit), (50, 60, 100));
        assert!(
            budget.reserve(101, Duration::from_secs(5)).is_err(),
            "can never fit"
        );
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget
                    .reserve(50, Duration::from_secs(5))
                    .map(|r| r.bytes())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        assert_eq!(waiter.join().ok().and_then(Result::ok), Some(50));
        assert_eq!(budget.in_use(), 0);
        let mut r = budget.empty();
        assert!(r.grow(30, Duration::ZERO).is_ok());
        assert!(r.resize(10, Duration::ZERO).is_ok());
        assert_eq!(budget.in_use(), 10);
    }
}
