//! Brute-force protection: `login_max_failures` failed sign-ins for one user name or from one
//! client address within `login_failure_window` lock that name / address out for `login_lockout`.
//!
//! Attempts still being checked count too: a password check takes tens of milliseconds, and
//! without counting those in flight, a burst of parallel guesses would all pass the lock check
//! before the first failure is recorded (the classic race that turns "5 tries" into "500").

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::time::Timestamp;

/// Entries kept before stale ones are pruned, so a flood of random user names cannot grow memory
/// without bound.
const PRUNE_ABOVE: usize = 10_000;

/// What to tell a client whose attempt may not start because others for the same user or address
/// are still being checked: try again as soon as they are done.
const BUSY_RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Failures {
    recent: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
    in_flight: usize,
}

pub struct Lockout {
    max_failures: usize,
    window: Duration,
    lockout: Duration,
    by_key: Mutex<HashMap<String, Failures>>,
}

/// One sign-in attempt between its lock check and its outcome. Dropping it without an outcome
/// (the client went away) releases its place and records nothing.
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    keys: Vec<String>,
}

impl Attempt<'_> {
    pub fn failed(self, now: Timestamp) {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        self.lockout.record_failure(&keys, now);
    }

    /// A correct password clears the failures of `user_key` only: the address keeps its count, so
    /// an attacker with one valid account cannot reset the count of the address they guess from.
    pub fn succeeded(self, user_key: &str) {
        self.lockout.record_success(user_key);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut entries = self.lockout.entries();
        for key in &self.keys {
            if let Some(f) = entries.get_mut(key) {
                f.in_flight = f.in_flight.saturating_sub(1);
                if f.in_flight == 0 && f.recent.is_empty() && f.locked_until.is_none() {
                    entries.remove(key);
                }
            }
        }
    }
}

impl Lockout {
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> Self {
        Lockout {
            max_failures: max_failures as usize,
            window,
            lockout,
            by_key: Mutex::default(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long any of `keys` stays locked, if one is.
    #[cfg(test)]
    fn locked_for(&self, keys: &[&str], now: Timestamp) -> Option<Duration> {
        longest_lock(&self.entries(), keys, now)
    }

    /// Starts an attempt for `keys`, or says how long to wait: while one is locked, or while the
    /// failures in the window plus the attempts in flight already reach the limit. Check and
    /// reservation happen under one lock, so parallel requests cannot slip between them.
    pub fn begin(&self, keys: &[&str], now: Timestamp) -> Result<Attempt<'_>, Duration> {
        let mut entries = self.entries();
        if let Some(wait) = longest_lock(&entries, keys, now) {
            return Err(wait);
        }
        let window = self.window;
        let busy = keys.iter().any(|k| {
            entries.get(*k).is_some_and(|f| {
                let recent = f.recent.iter().filter(|t| now.since(**t) < window).count();
                recent + f.in_flight >= self.max_failures
            })
        });
        if busy {
            return Err(BUSY_RETRY);
        }
        for key in keys {
            entries.entry(key.to_string()).or_default().in_flight += 1;
        }
        Ok(Attempt {
            lockout: self,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        })
    }

    pub fn record_failure(&self, keys: &[&str], now: Timestamp) {
        let mut entries = self.entries();
        if entries.len() > PRUNE_ABOVE {
            let window = self.window;
            entries.retain(|_, f| {
                f.in_flight > 0
                    || f.locked_until.is_some_and(|u| u > now)
                    || f.recent.back().is_some_and(|t| now.since(*t) < window)
            });
        }
        for key in keys {
            let failures = entries.entry(key.to_string()).or_default();
            while failures
                .recent
                .front()
                .is_some_and(|t| now.since(*t) >= self.window)
            {
                failures.recent.pop_front();
            }
            failures.recent.push_back(now);
            if failures.recent.len() >= self.max_failures {
                failures.locked_until = Some(now.plus(self.lockout));
                failures.recent.clear();
            }
        }
    }

    pub fn record_success(&self, key: &str) {
        if let Some(f) = self.entries().get_mut(key) {
            f.recent.clear();
            f.locked_until = None;
        }
    }
}

fn longest_lock(
    entries: &HashMap<String, Failures>,
    keys: &[&str],
    now: Timestamp,
) -> Option<Duration> {
    keys.iter()
        .filter_map(|k| entries.get(*k)?.locked_until)
        .filter(|until| *until > now)
        .map(|until| now.until(until))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_within_the_window_then_releases() {
        let l = Lockout::new(3, Duration::from_secs(60), Duration::from_secs(30));
        let keys = ["user:alice", "ip:127.0.0.1"];
        l.record_failure(&keys, Timestamp(0));
        l.record_failure(&keys, Timestamp(1_000));
        assert_eq!(l.locked_for(&keys, Timestamp(1_000)), None);
        l.record_failure(&keys, Timestamp(2_000));
        assert_eq!(
            l.locked_for(&["user:alice"], Timestamp(2_000)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            l.locked_for(&["ip:127.0.0.1"], Timestamp(12_000)),
            Some(Duration::from_secs(20))
        );
        assert_eq!(l.locked_for(&keys, Timestamp(32_000)), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let l = Lockout::new(2, Duration::from_secs(10), Duration::from_secs(30));
        l.record_failure(&["user:bob"], Timestamp(0));
        l.record_failure(&["user:bob"], Timestamp(11_000));
        assert_eq!(l.locked_for(&["user:bob"], Timestamp(11_000)), None);
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let l = Lockout::new(3, Duration::from_secs(60), Duration::from_secs(30));
        let keys = ["user:alice", "ip:10.0.0.1"];
        let now = Timestamp(0);
        // Three parallel guesses may start; the fourth must wait, before any has failed.
        let a = l.begin(&keys, now).unwrap();
        let b = l.begin(&keys, now).unwrap();
        let c = l.begin(&["user:alice", "ip:10.0.0.2"], now).unwrap();
        assert_eq!(l.begin(&keys, now).err(), Some(BUSY_RETRY));
        assert_eq!(
            l.begin(&["user:bob", "ip:10.0.0.1"], now).ok().map(|_| ()),
            Some(())
        );
        a.failed(now);
        b.failed(now);
        c.failed(now);
        // Three failures: locked, whatever is in flight.
        assert_eq!(l.begin(&keys, now).err(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_abandoned_attempt_releases_its_place_and_entries_do_not_linger() {
        let l = Lockout::new(1, Duration::from_secs(60), Duration::from_secs(30));
        let attempt = l.begin(&["user:x"], Timestamp(0)).unwrap();
        assert!(l.begin(&["user:x"], Timestamp(0)).is_err());
        drop(attempt);
        assert!(l.entries().is_empty());
        let attempt = l.begin(&["user:x"], Timestamp(0)).unwrap();
        attempt.succeeded("user:x");
        assert!(l.entries().is_empty());
    }
}
