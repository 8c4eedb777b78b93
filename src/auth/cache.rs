//! The verification cache: what a full verification established, kept for `cache_ttl` under
//! hash(app token) + session id, so the hot path does no JWT work and no store round trip.
//!
//! Alongside it, per session, the activity this instance saw (for the idle timeout and for
//! throttling last-seen writes) and the ids of sessions that ended (so cached grants of a session
//! signed out a moment ago are refused at once, not after `cache_ttl`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use super::Identity;
use crate::session::{EndReason, Session, SessionId};
use crate::time::Timestamp;

pub type GrantKey = [u8; 32];

/// One hash of both values: a token presented with another session id is another entry.
pub fn grant_key(token: &str, session_id: &str) -> GrantKey {
    let mut hasher = Sha256::new();
    hasher.update(token.as_bytes());
    hasher.update([0u8]);
    hasher.update(session_id.as_bytes());
    hasher.finalize().into()
}

/// What this instance knows of a live session.
#[derive(Debug)]
pub struct LiveSession {
    pub id: SessionId,
    pub identity: Arc<Identity>,
    pub expires_at: Timestamp,
    pub remember_me: bool,
    last_seen: AtomicU64,
    last_written: AtomicU64,
    last_renewal: Mutex<HashMap<String, Timestamp>>,
}

impl LiveSession {
    fn from_session(session: &Session) -> Self {
        LiveSession {
            id: session.id.clone(),
            identity: Identity::shared(&session.user, &session.groups, &session.email),
            expires_at: session.expires_at,
            remember_me: session.remember_me,
            last_seen: AtomicU64::new(session.last_seen.0),
            last_written: AtomicU64::new(session.last_seen.0),
            last_renewal: Mutex::default(),
        }
    }

    pub fn last_seen(&self) -> Timestamp {
        Timestamp(self.last_seen.load(Ordering::Relaxed))
    }

    /// Judged on this instance's view; a session that looks idle here may have been busy on
    /// another instance, so the caller asks the store before ending it.
    pub fn limit_reached(&self, idle_timeout: Option<Duration>, now: Timestamp) -> bool {
        now >= self.expires_at
            || idle_timeout.is_some_and(|idle| now.since(self.last_seen()) >= idle)
    }

    /// Notes activity; true when it is time to write it to the store (at most once per
    /// `write_interval` per session on this instance).
    pub fn record_activity(&self, now: Timestamp, write_interval: Duration) -> bool {
        self.last_seen.fetch_max(now.0, Ordering::Relaxed);
        let written = self.last_written.load(Ordering::Relaxed);
        now.since(Timestamp(written)) >= write_interval
            && self
                .last_written
                .compare_exchange(written, now.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// True (and noted) when no renewal for `app` happened within `min_interval`.
    pub fn claim_renewal(
        &self,
        app: &str,
        now: Timestamp,
        min_interval: Duration,
        force: bool,
    ) -> bool {
        let mut renewals = self.last_renewal.lock().unwrap_or_else(|p| p.into_inner());
        let due = force
            || renewals
                .get(app)
                .is_none_or(|last| now.since(*last) >= min_interval);
        if due {
            renewals.insert(app.to_string(), now);
        }
        due
    }

    fn merge_activity(&self, last_seen: Timestamp) {
        self.last_seen.fetch_max(last_seen.0, Ordering::Relaxed);
        self.last_written.fetch_max(last_seen.0, Ordering::Relaxed);
    }
}

/// A verified (token, session id) pair, valid for one app.
#[derive(Debug)]
pub struct Grant {
    pub app: String,
    pub token_expires_at: Timestamp,
    pub session: Arc<LiveSession>,
}

pub enum CacheLookup {
    Hit(Arc<Grant>),
    /// The session ended while its grants were cached.
    Ended(EndReason),
    Miss,
}

pub struct VerifyCache {
    /// `None` when `cache_ttl = "0s"`: every request is verified against the store.
    grants: Option<Cache<GrantKey, Arc<Grant>>>,
    sessions: Cache<SessionId, Arc<LiveSession>>,
    ended: Cache<SessionId, EndReason>,
    /// False while this instance may be missing revocations (its subscription to a shared store
    /// is down): cached grants are then not used.
    trusted: AtomicBool,
}

impl VerifyCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        let grants = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        VerifyCache {
            grants,
            // Outlives the grants that point at it, and keeps a busy session's activity between
            // store writes even when nothing is cached.
            sessions: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(ttl + Duration::from_secs(120))
                .build(),
            // A grant lives at most `ttl`; the marker must outlive every grant cached before it.
            ended: Cache::builder()
                .max_capacity(capacity.max(10_000))
                .time_to_live(ttl + Duration::from_secs(1))
                .build(),
            trusted: AtomicBool::new(true),
        }
    }

    /// Whether cached grants may be used; see [`VerifyCache::trusted`].
    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
    }

    /// Whether this instance knows the session ended (recently enough to still remember).
    pub fn is_ended(&self, id: &SessionId) -> bool {
        self.ended.contains_key(id)
    }

    pub fn lookup(&self, key: &GrantKey) -> CacheLookup {
        if !self.trusted.load(Ordering::Relaxed) {
            return CacheLookup::Miss;
        }
        let Some(grant) = self.grants.as_ref().and_then(|g| g.get(key)) else {
            return CacheLookup::Miss;
        };
        match self.ended.get(&grant.session.id) {
            Some(reason) => CacheLookup::Ended(reason),
            None => CacheLookup::Hit(grant),
        }
    }

    pub fn insert(&self, key: GrantKey, grant: Arc<Grant>) {
        if let Some(grants) = &self.grants {
            grants.insert(key, grant);
        }
    }

    /// This instance's record of a session fetched from the store, merged with what it knew.
    pub fn live_session(&self, session: &Session) -> Arc<LiveSession> {
        let live = self
            .sessions
            .get_with_by_ref(&session.id, || Arc::new(LiveSession::from_session(session)));
        live.merge_activity(session.last_seen);
        live
    }

    pub fn last_seen(&self, id: &SessionId) -> Option<Timestamp> {
        self.sessions.get(id).map(|s| s.last_seen())
    }

    /// Stops admitting a session's cached grants at once.
    pub fn end(&self, id: &SessionId, reason: EndReason) {
        self.ended.insert(id.clone(), reason);
        self.sessions.invalidate(id);
    }

    /// Forgets every grant: for an instance that can no longer trust what it cached.
    pub fn clear(&self) {
        if let Some(grants) = &self.grants {
            grants.invalidate_all();
        }
    }

    pub fn grant_count(&self) -> u64 {
        self.grants.as_ref().map_or(0, |g| {
            g.run_pending_tasks();
            g.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn session() -> Session {
        Session {
            id: SessionId::generate(),
            user: "alice".into(),
            groups: vec![],
            email: String::new(),
            created_at: Timestamp(0),
            expires_at: Timestamp(1_000_000),
            last_seen: Timestamp(1_000),
            remember_me: false,
            app_tokens: BTreeMap::new(),
        }
    }

    #[test]
    fn an_ended_session_is_refused_even_while_its_grant_is_cached() {
        let cache = VerifyCache::new(Duration::from_secs(60), 100);
        let s = session();
        let key = grant_key("token", s.id.as_str());
        let grant = Arc::new(Grant {
            app: "a".into(),
            token_expires_at: Timestamp(9_000),
            session: cache.live_session(&s),
        });
        cache.insert(key, grant);
        assert!(matches!(cache.lookup(&key), CacheLookup::Hit(_)));
        assert!(matches!(
            cache.lookup(&grant_key("token", "other")),
            CacheLookup::Miss
        ));
        cache.end(&s.id, EndReason::Logout);
        assert!(matches!(
            cache.lookup(&key),
            CacheLookup::Ended(EndReason::Logout)
        ));
    }

    #[test]
    fn activity_writes_are_throttled_per_session() {
        let live = LiveSession::from_session(&session());
        let interval = Duration::from_secs(10);
        let writes = (0..1000u64)
            .filter(|i| live.record_activity(Timestamp(1_000 + i * 100), interval))
            .count();
        // 100 seconds of requests every 100 ms: one write per 10 s.
        assert_eq!(writes, 9);
        assert_eq!(live.last_seen(), Timestamp(1_000 + 999 * 100));
    }

    #[test]
    fn renewals_are_spaced_by_the_minimum_interval_unless_forced() {
        let live = LiveSession::from_session(&session());
        let min = Duration::from_secs(60);
        assert!(live.claim_renewal("a", Timestamp(0), min, false));
        assert!(!live.claim_renewal("a", Timestamp(59_999), min, false));
        assert!(live.claim_renewal("b", Timestamp(59_999), min, false));
        assert!(live.claim_renewal("a", Timestamp(60_000), min, false));
        assert!(live.claim_renewal("a", Timestamp(60_001), min, true));
    }

    #[test]
    fn nothing_is_cached_with_a_zero_ttl() {
        let cache = VerifyCache::new(Duration::ZERO, 100);
        let s = session();
        let key = grant_key("t", s.id.as_str());
        cache.insert(
            key,
            Arc::new(Grant {
                app: "a".into(),
                token_expires_at: Timestamp(9_000),
                session: cache.live_session(&s),
            }),
        );
        assert!(matches!(cache.lookup(&key), CacheLookup::Miss));
    }
}
