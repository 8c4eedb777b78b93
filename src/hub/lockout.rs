//! Brute-force protection: `login_max_failures` failed sign-ins for one user name or from one
//! client address within `login_failure_window` lock that name / address out for `login_lockout`.
//!
//! Attempts still being checked count too: a password check takes tens of milliseconds, and
//! without counting those in flight, a burst of parallel guesses would all pass the lock check
//! before the first failure is recorded (the classic race that turns "5 tries" into "500").
//!
//! With the memory store the counts live in this process; with the Redis store in Redis
//! ([`super::lockout_redis`]), so that N instances do not allow N times the guesses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lockout_redis::SharedCounts;
use crate::config::{HubConfig, SessionConfig, StoreKind};
use crate::time::Timestamp;

/// Entries kept before stale ones are pruned, so a flood of random user names cannot grow memory
/// without bound.
const PRUNE_ABOVE: usize = 10_000;

/// What to tell a client whose attempt may not start because others for the same user or address
/// are still being checked: try again as soon as they are done.
const BUSY_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_failures: usize,
    pub window: Duration,
    pub lockout: Duration,
}

/// Why an attempt may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Locked out, or too many attempts in flight: try again after this long.
    Wait(Duration),
    /// The shared counts cannot be read: no attempt is allowed without them.
    StoreUnavailable,
}

pub enum Lockout {
    InProcess(InProcess),
    Shared {
        limits: Limits,
        counts: Arc<SharedCounts>,
    },
}

impl Lockout {
    pub fn new(hub: &HubConfig, session: &SessionConfig) -> Self {
        let limits = Limits {
            max_failures: hub.login_max_failures as usize,
            window: hub.login_failure_window,
            lockout: hub.login_lockout,
        };
        match session.store {
            StoreKind::Memory => Lockout::InProcess(InProcess::new(limits)),
            StoreKind::Redis => Lockout::Shared {
                limits,
                counts: Arc::new(SharedCounts::new(session)),
            },
        }
    }

    /// Starts an attempt for `keys`, or says why not: one of them is locked, or the failures in
    /// the window plus the attempts in flight already reach the limit. Check and reservation are
    /// one step (under one lock, or one script), so parallel requests cannot slip between them.
    pub async fn begin(&self, keys: &[&str], now: Timestamp) -> Result<Attempt<'_>, Refused> {
        match self {
            Lockout::InProcess(counts) => counts.begin(keys, now).map_err(Refused::Wait)?,
            Lockout::Shared { limits, counts } => {
                match counts.run("begin", &owned(keys), now, limits).await {
                    Ok(0) => {}
                    Ok(wait) if wait < 0 => return Err(Refused::Wait(BUSY_RETRY)),
                    Ok(wait) => {
                        return Err(Refused::Wait(Duration::from_millis(wait.unsigned_abs())))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "sign-in lockout counts unreachable");
                        return Err(Refused::StoreUnavailable);
                    }
                }
            }
        }
        Ok(Attempt {
            lockout: self,
            keys: owned(keys),
            open: true,
        })
    }
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// One sign-in attempt between its lock check and its outcome. Dropping it without an outcome
/// (the client went away) releases its place and records nothing.
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    keys: Vec<String>,
    open: bool,
}

impl Attempt<'_> {
    pub async fn failed(mut self, now: Timestamp) {
        self.open = false;
        match self.lockout {
            Lockout::InProcess(counts) => {
                let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
                counts.record_failure(&keys, now);
                counts.release(&keys);
            }
            Lockout::Shared { limits, counts } => {
                if let Err(e) = counts.run("fail", &self.keys, now, limits).await {
                    tracing::warn!(error = %e, "a failed sign-in could not be counted");
                }
            }
        }
    }

    /// A correct password clears the failures of `user_key` only: the address keeps its count, so
    /// an attacker with one valid account cannot reset the count of the address they guess from.
    pub async fn succeeded(mut self, user_key: &str, now: Timestamp) {
        self.open = false;
        match self.lockout {
            Lockout::InProcess(counts) => {
                counts.record_success(user_key);
                let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
                counts.release(&keys);
            }
            Lockout::Shared { limits, counts } => {
                // The script clears the first key's failures.
                let mut keys = vec![user_key.to_string()];
                keys.extend(self.keys.iter().filter(|k| *k != user_key).cloned());
                if let Err(e) = counts.run("success", &keys, now, limits).await {
                    tracing::warn!(error = %e, "a sign-in's place could not be given back");
                }
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match self.lockout {
            Lockout::InProcess(counts) => {
                let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
                counts.release(&keys);
            }
            Lockout::Shared { limits, counts } => {
                // Given back in the background; if even that fails, the place expires.
                let (limits, counts, keys) =
                    (*limits, counts.clone(), std::mem::take(&mut self.keys));
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = counts
                            .run("release", &keys, Timestamp::now(), &limits)
                            .await;
                    });
                }
            }
        }
    }
}

#[derive(Default)]
struct Failures {
    recent: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
    in_flight: usize,
}

/// The counts of this process alone (the memory store: one instance).
pub struct InProcess {
    limits: Limits,
    by_key: Mutex<HashMap<String, Failures>>,
}

impl InProcess {
    fn new(limits: Limits) -> Self {
        InProcess {
            limits,
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

    /// Reserves a place for an attempt on each of `keys`, or says how long to wait.
    fn begin(&self, keys: &[&str], now: Timestamp) -> Result<(), Duration> {
        let mut entries = self.entries();
        if let Some(wait) = longest_lock(&entries, keys, now) {
            return Err(wait);
        }
        let Limits {
            max_failures,
            window,
            ..
        } = self.limits;
        let busy = keys.iter().any(|k| {
            entries.get(*k).is_some_and(|f| {
                let recent = f.recent.iter().filter(|t| now.since(**t) < window).count();
                recent + f.in_flight >= max_failures
            })
        });
        if busy {
            return Err(BUSY_RETRY);
        }
        for key in keys {
            entries.entry(key.to_string()).or_default().in_flight += 1;
        }
        Ok(())
    }

    fn release(&self, keys: &[&str]) {
        let mut entries = self.entries();
        for key in keys {
            if let Some(f) = entries.get_mut(*key) {
                f.in_flight = f.in_flight.saturating_sub(1);
                if f.in_flight == 0 && f.recent.is_empty() && f.locked_until.is_none() {
                    entries.remove(*key);
                }
            }
        }
    }

    fn record_failure(&self, keys: &[&str], now: Timestamp) {
        let mut entries = self.entries();
        let Limits {
            max_failures,
            window,
            lockout,
        } = self.limits;
        if entries.len() > PRUNE_ABOVE {
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
                .is_some_and(|t| now.since(*t) >= window)
            {
                failures.recent.pop_front();
            }
            failures.recent.push_back(now);
            if failures.recent.len() >= max_failures {
                failures.locked_until = Some(now.plus(lockout));
                failures.recent.clear();
            }
        }
    }

    fn record_success(&self, key: &str) {
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

    fn in_process(max_failures: usize, window_secs: u64, lockout_secs: u64) -> InProcess {
        InProcess::new(Limits {
            max_failures,
            window: Duration::from_secs(window_secs),
            lockout: Duration::from_secs(lockout_secs),
        })
    }

    fn entries_of(l: &Lockout) -> usize {
        match l {
            Lockout::InProcess(counts) => counts.entries().len(),
            Lockout::Shared { .. } => unreachable!("in-process tests only"),
        }
    }

    #[test]
    fn locks_after_max_failures_within_the_window_then_releases() {
        let l = in_process(3, 60, 30);
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
        let l = in_process(2, 10, 30);
        l.record_failure(&["user:bob"], Timestamp(0));
        l.record_failure(&["user:bob"], Timestamp(11_000));
        assert_eq!(l.locked_for(&["user:bob"], Timestamp(11_000)), None);
    }

    #[tokio::test]
    async fn attempts_in_flight_count_against_the_limit() {
        let l = Lockout::InProcess(in_process(3, 60, 30));
        let keys = ["user:alice", "ip:10.0.0.1"];
        let now = Timestamp(0);
        // Three parallel guesses may start; the fourth must wait, before any has failed.
        let a = l.begin(&keys, now).await.unwrap();
        let b = l.begin(&keys, now).await.unwrap();
        let c = l.begin(&["user:alice", "ip:10.0.0.2"], now).await.unwrap();
        assert_eq!(
            l.begin(&keys, now).await.err(),
            Some(Refused::Wait(BUSY_RETRY))
        );
        assert!(l.begin(&["user:bob", "ip:10.0.0.1"], now).await.is_ok());
        a.failed(now).await;
        b.failed(now).await;
        c.failed(now).await;
        // Three failures: locked, whatever is in flight.
        assert_eq!(
            l.begin(&keys, now).await.err(),
            Some(Refused::Wait(Duration::from_secs(30)))
        );
    }

    #[tokio::test]
    async fn an_abandoned_attempt_releases_its_place_and_entries_do_not_linger() {
        let l = Lockout::InProcess(in_process(1, 60, 30));
        let attempt = l.begin(&["user:x"], Timestamp(0)).await.unwrap();
        assert!(l.begin(&["user:x"], Timestamp(0)).await.is_err());
        drop(attempt);
        assert_eq!(entries_of(&l), 0);
        let attempt = l.begin(&["user:x"], Timestamp(0)).await.unwrap();
        attempt.succeeded("user:x", Timestamp(0)).await;
        assert_eq!(entries_of(&l), 0);
    }
}
