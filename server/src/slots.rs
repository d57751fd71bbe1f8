//! The cap on heavy requests (clones, fetches, pushes) working at once.
//!
//! A slot is taken only once a request is known to be valid: after an upload-pack request's
//! small body was read and parsed, after a push's pack was received. A client that stalls
//! while sending therefore never holds one, and cannot starve others of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::ResponseBody;

/// The shared cap.
#[derive(Debug, Clone)]
pub struct Slots {
    permits: Arc<Semaphore>,
}

/// One taken slot, returned on drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slots {
    /// At most `max` heavy requests at once.
    pub fn new(max: usize) -> Self {
        Slots {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// A slot now, or `None` when every slot is taken.
    pub fn try_take(&self) -> Option<Slot> {
        self.permits
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| Slot { _permit: p })
    }

    /// A slot, waiting up to `wait` for one.
    pub async fn take(&self, wait: Duration) -> Option<Slot> {
        tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|p| Slot { _permit: p })
    }
}

impl Slot {
    /// Keep the slot until `body` has been sent (or dropped): a streamed response is where a
    /// clone does its work.
    pub fn hold(self, body: ResponseBody) -> ResponseBody {
        crate::body::holding(body, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_capped_and_returned_with_the_body() {
        let slots = Slots::new(1);
        let first = slots.try_take();
        assert!(first.is_some());
        assert!(slots.try_take().is_none());
        assert!(slots.take(Duration::from_millis(20)).await.is_none());
        let body = first.map(|s| s.hold(crate::body::full("x")));
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take(Duration::from_secs(5)).await.is_some() }
        });
        drop(body);
        assert!(waiter.await.unwrap_or(false));
    }
}
