//! Brute-force protection: `login_max_failures` failed sign-ins for one user name or from one
//! client address within `login_failure_window` lock that name / address out for `login_lockout`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::time::Timestamp;

/// Entries kept before stale ones are pruned, so a flood of random user names cannot grow memory
/// without bound.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
struct Failures {
    recent: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
}

pub struct Lockout {
    max_failures: usize,
    window: Duration,
    lockout: Duration,
    by_key: Mutex<HashMap<String, Failures>>,
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
    pub fn locked_for(&self, keys: &[&str], now: Timestamp) -> Option<Duration> {
        let entries = self.entries();
        keys.iter()
            .filter_map(|k| entries.get(*k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| now.until(until))
            .max()
    }

    pub fn record_failure(&self, keys: &[&str], now: Timestamp) {
        let mut entries = self.entries();
        if entries.len() > PRUNE_ABOVE {
            let window = self.window;
            entries.retain(|_, f| {
                f.locked_until.is_some_and(|u| u > now)
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
        self.entries().remove(key);
    }
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
}
