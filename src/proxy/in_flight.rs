//! Counts requests in progress, so a stop waits exactly as long as they need — and no longer than
//! `server.shutdown_grace` — instead of always sleeping the whole grace period.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

/// Held by a request's context; the count drops when the request is done, however it ended.
pub struct InFlightGuard(Arc<AtomicUsize>);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.0.clone())
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits until no request is in progress or `limit` has passed; true if all finished.
    pub async fn drained(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.count() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drains_when_the_last_request_ends_or_gives_up_at_the_limit() {
        let in_flight = InFlight::default();
        let guard = in_flight.enter();
        assert_eq!(in_flight.count(), 1);
        assert!(!in_flight.drained(Duration::from_millis(30)).await);
        drop(guard);
        assert!(in_flight.drained(Duration::from_millis(30)).await);
    }
}
