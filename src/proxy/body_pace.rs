//! `server.body_read_timeout`: how long a request body may take to arrive.
//!
//! Pingora waits up to a minute for each read of a body, so a client sending a byte every few
//! seconds could keep a request, its upstream connection and its memory for as long as it liked.
//! Two rules stop that (the shape of Apache's `mod_reqtimeout body=…,MinRate=…`):
//! - no read of a body waits longer than `body_read_timeout` (Pingora's own read timeout, set per
//!   request);
//! - the whole body must arrive within `body_read_timeout` plus one second per [`MIN_RATE`] bytes
//!   received, so a large upload over a slow link is fine and a trickle is not.
//!
//! An upgraded connection (a WebSocket) has no body in this sense and is never paced.

use std::time::{Duration, Instant};

/// Bytes per second a body must average once its first `body_read_timeout` has passed.
pub const MIN_RATE: u64 = 1024;

/// The pace of one request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    started: Instant,
    received: u64,
    allowance: Duration,
}

/// The body arrives more slowly than [`BodyPace`] allows.
#[derive(Debug, PartialEq, Eq)]
pub struct TooSlow {
    pub received: u64,
    pub elapsed: Duration,
}

impl BodyPace {
    pub fn new(allowance: Duration, now: Instant) -> Self {
        BodyPace {
            started: now,
            received: 0,
            allowance,
        }
    }

    /// Counts `bytes` more of the body, arrived at `now`.
    pub fn take(&mut self, bytes: usize, now: Instant) -> Result<(), TooSlow> {
        self.received += bytes as u64;
        let elapsed = now.saturating_duration_since(self.started);
        let earned = Duration::from_secs_f64(self.received as f64 / MIN_RATE as f64);
        if elapsed > self.allowance + earned {
            return Err(TooSlow {
                received: self.received,
                elapsed,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_body_may_take_the_allowance() {
        let start = Instant::now();
        let mut pace = BodyPace::new(Duration::from_secs(30), start);
        assert_eq!(pace.take(1, start + Duration::from_secs(29)), Ok(()));
    }

    #[test]
    fn a_trickle_is_cut_off_soon_after_the_allowance() {
        let start = Instant::now();
        let mut pace = BodyPace::new(Duration::from_secs(30), start);
        let mut cut = None;
        for second in 1..120 {
            if pace.take(1, start + Duration::from_secs(second)).is_err() {
                cut = Some(second);
                break;
            }
        }
        assert_eq!(cut, Some(31));
    }

    #[test]
    fn a_slow_but_steady_upload_keeps_going() {
        let start = Instant::now();
        let mut pace = BodyPace::new(Duration::from_secs(30), start);
        for second in 1..600 {
            let now = start + Duration::from_secs(second);
            assert_eq!(pace.take(MIN_RATE as usize, now), Ok(()), "at {second} s");
        }
    }
}
