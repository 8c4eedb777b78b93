//! The verification cache: per session, what a full verification established — who the user is,
//! the session's limits, the activity this instance saw, and which (app, token) pairs were
//! verified, each trusted for `cache_ttl` — so the hot path does no JWT work and no store round
//! trip. Alongside it, the ids of sessions that ended, so cached grants of a session signed out a
//! moment ago are refused at once, not after `cache_ttl`.
//!
//! One compact record per session in a sharded hash map, because this is what a gateway with many
//! signed-in users holds in memory: under 300 bytes per session, identity included (a
//! general-purpose cache entry costs several hundred bytes of bookkeeping on its own; `bench/run`
//! measures the total).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use base64::Engine;
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

use super::Identity;
use crate::session::{EndReason, Session, SessionId};
use crate::time::Timestamp;

const SHARDS: usize = 16;

/// How long a session's record outlives its last activity and its newest grant: keeps a busy
/// session's activity between store writes even when nothing is cached (`cache_ttl = "0s"`).
const KEEP_AFTER_USE: Duration = Duration::from_secs(120);

/// The map key of a session: the first 128 of its id's 256 random bits. Which session a grant
/// belongs to is settled by the grant's digest, which covers the whole id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey([u8; 16]);

impl SessionKey {
    /// `None` for text that is not a session id as [`SessionId::generate`] makes them.
    pub fn of(id: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(id, &mut bytes)
            .ok()?;
        let mut key = [0u8; 16];
        key.copy_from_slice(bytes.get(..16)?);
        (decoded == 32).then_some(SessionKey(key))
    }

    fn shard(&self) -> usize {
        usize::from(self.0[0]) % SHARDS
    }
}

type Shard = Mutex<HashMap<SessionKey, CachedSession>>;

/// A shard's map. A panic elsewhere while it was held leaves plain data behind, still usable.
fn lock(shard: &Shard) -> MutexGuard<'_, HashMap<SessionKey, CachedSession>> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub type GrantDigest = [u8; 16];

/// One (app, token, session id) triple: a token presented to another app, or with another
/// session-id cookie, is another digest. 128 bits of SHA-256 over the whole token: a token with
/// any byte changed is never a hit, so it is always refused as the verifier would refuse it.
pub fn grant_digest(app: &str, token: &str, session_id: &str) -> GrantDigest {
    let mut hasher = Sha256::new();
    for part in [app, token, session_id] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&hasher.finalize()[..16]);
    digest
}

/// A verified token, trusted without the store until `verified_until`.
#[derive(Debug, Clone, Copy)]
struct Grant {
    digest: GrantDigest,
    token_expires_at: Timestamp,
    verified_until: Timestamp,
}

/// At most this many grants per session (one per app in use, and a renewed token next to the one
/// it replaces): beyond it the one verified longest ago goes.
const GRANTS_PER_SESSION: usize = 8;

/// An app and when its token was last renewed.
type Renewal = (Box<str>, Timestamp);

/// What this instance knows of a live session.
#[derive(Debug)]
pub struct CachedSession {
    pub identity: Arc<Identity>,
    pub expires_at: Timestamp,
    pub remember_me: bool,
    last_seen: Timestamp,
    last_written: Timestamp,
    grants: SmallVec<[Grant; 1]>,
    /// When each app's token was last renewed: `renew_min_interval` is per session and app.
    /// A boxed slice, grown on the rare renewal of a new app: most cached sessions never renew.
    renewals: Option<Box<[Renewal]>>,
}

impl CachedSession {
    fn from_session(session: &Session) -> Self {
        CachedSession {
            identity: Identity::shared(&session.user, &session.groups, &session.email),
            expires_at: session.expires_at,
            remember_me: session.remember_me,
            last_seen: session.last_seen,
            last_written: session.last_seen,
            grants: SmallVec::new(),
            renewals: None,
        }
    }

    pub fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    /// Judged on this instance's view; a session that looks idle here may have been busy on
    /// another instance, so the caller asks the store before ending it.
    pub fn limit_reached(&self, idle_timeout: Option<Duration>, now: Timestamp) -> bool {
        now >= self.expires_at || idle_timeout.is_some_and(|idle| now.since(self.last_seen) >= idle)
    }

    /// Notes activity; true when it is time to write it to the store (at most once per
    /// `write_interval` per session on this instance).
    pub fn record_activity(&mut self, now: Timestamp, write_interval: Duration) -> bool {
        self.last_seen = self.last_seen.max(now);
        let due = now.since(self.last_written) >= write_interval;
        if due {
            self.last_written = now;
        }
        due
    }

    /// True (and noted) when no renewal for `app` happened within `min_interval`.
    pub fn claim_renewal(
        &mut self,
        app: &str,
        now: Timestamp,
        min_interval: Duration,
        force: bool,
    ) -> bool {
        let renewals = self.renewals.get_or_insert_with(Box::default);
        match renewals.iter_mut().find(|(a, _)| **a == *app) {
            Some((_, last)) if force || now.since(*last) >= min_interval => *last = now,
            Some(_) => return false,
            None => {
                let mut grown = std::mem::take(renewals).into_vec();
                grown.push((app.into(), now));
                *renewals = grown.into_boxed_slice();
            }
        }
        true
    }

    /// Trusts a verified (or freshly issued) token until `verified_until`.
    pub fn add_grant(
        &mut self,
        digest: GrantDigest,
        token_expires_at: Timestamp,
        verified_until: Timestamp,
    ) {
        let grant = Grant {
            digest,
            token_expires_at,
            verified_until,
        };
        self.grants.retain(|g| g.digest != grant.digest);
        if self.grants.len() >= GRANTS_PER_SESSION {
            if let Some(oldest) =
                (0..self.grants.len()).min_by_key(|&i| self.grants[i].verified_until)
            {
                self.grants.swap_remove(oldest);
            }
        }
        self.grants.push(grant);
    }

    fn merge_activity(&mut self, last_seen: Timestamp) {
        self.last_seen = self.last_seen.max(last_seen);
        self.last_written = self.last_written.max(last_seen);
    }

    /// Worth keeping: recently active, or holding a grant still trusted.
    fn kept_at(&self, now: Timestamp) -> bool {
        now.since(self.last_seen) < KEEP_AFTER_USE
            || self.grants.iter().any(|g| now < g.verified_until)
    }
}

pub enum CacheLookup<R> {
    Hit(R),
    Miss,
}

pub struct VerifyCache {
    /// Zero when `cache_ttl = "0s"`: no grant is kept, every request is verified against the store.
    ttl: Duration,
    shard_capacity: usize,
    shards: Box<[Shard]>,
    ended: Cache<SessionKey, EndReason>,
    /// False while this instance may be missing revocations (its subscription to a shared store
    /// is down): cached grants are then not used.
    trusted: AtomicBool,
}

impl VerifyCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        VerifyCache {
            ttl,
            shard_capacity: (capacity / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            // A grant lives at most `ttl`; the marker must outlive every grant cached before it.
            ended: Cache::builder()
                .max_capacity(capacity.max(10_000) as u64)
                .time_to_live(ttl + Duration::from_secs(1))
                .build(),
            trusted: AtomicBool::new(true),
        }
    }

    fn shard(&self, key: &SessionKey) -> MutexGuard<'_, HashMap<SessionKey, CachedSession>> {
        lock(&self.shards[key.shard()])
    }

    /// Whether cached grants may be used; see [`VerifyCache::trusted`].
    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Ordering::SeqCst);
    }

    /// Whether this instance knows the session ended (recently enough to still remember).
    pub fn is_ended(&self, id: &SessionId) -> bool {
        SessionKey::of(id.as_str()).is_some_and(|key| self.ended.contains_key(&key))
    }

    /// Until when a grant made now is trusted without the store; `None` when nothing is cached.
    pub fn trust_until(&self, now: Timestamp) -> Option<Timestamp> {
        (!self.ttl.is_zero()).then(|| now.plus(self.ttl))
    }

    /// When `digest` was verified less than `cache_ttl` ago: `use_hit` with the session's record
    /// (under its shard's lock, so keep it short) and the token's expiry.
    pub fn lookup<R>(
        &self,
        session_id: &str,
        digest: &GrantDigest,
        now: Timestamp,
        use_hit: impl FnOnce(&mut CachedSession, Timestamp) -> R,
    ) -> CacheLookup<R> {
        if self.ttl.is_zero() || !self.trusted.load(Ordering::Relaxed) {
            return CacheLookup::Miss;
        }
        let Some(key) = SessionKey::of(session_id) else {
            return CacheLookup::Miss;
        };
        let mut shard = self.shard(&key);
        let Some(record) = shard.get_mut(&key) else {
            return CacheLookup::Miss;
        };
        // An ended session has no record here ([`VerifyCache::end`] removes it, and
        // [`VerifyCache::insert`] refuses to bring it back), so a hit needs no further check.
        match record
            .grants
            .iter()
            .find(|g| g.digest == *digest && now < g.verified_until)
        {
            Some(grant) => {
                let token_expires_at = grant.token_expires_at;
                CacheLookup::Hit(use_hit(record, token_expires_at))
            }
            None => CacheLookup::Miss,
        }
    }

    /// Records a session fetched from the store, merged with what this instance knew of it, and
    /// the grant just verified; then `use_record` with its record (under the lock).
    /// `Err` with the reason when the session ended while it was being looked up.
    pub fn insert<R>(
        &self,
        session: &Session,
        (digest, token_expires_at): (GrantDigest, Timestamp),
        now: Timestamp,
        use_record: impl FnOnce(&mut CachedSession) -> R,
    ) -> Result<R, EndReason> {
        let Some(key) = SessionKey::of(session.id.as_str()) else {
            // Not an id this gateway makes: nothing to share with later requests.
            return Ok(use_record(&mut CachedSession::from_session(session)));
        };
        let mut shard = self.shard(&key);
        // Checked under the shard lock that `end` also takes: an end heard after the store said
        // "live" is not undone by caching the session again.
        if let Some(reason) = self.ended.get(&key) {
            return Err(reason);
        }
        if !shard.contains_key(&key) && shard.len() >= self.shard_capacity {
            self.make_room(&mut shard, now);
        }
        let record = shard
            .entry(key)
            .or_insert_with(|| CachedSession::from_session(session));
        record.merge_activity(session.last_seen);
        // The verifier's view of who this is wins (groups changed in the users file and
        // reloaded): a record kept from before carries the old groups otherwise.
        let identity = Identity::new(&session.user, &session.groups, &session.email);
        if *record.identity != identity {
            record.identity = Arc::new(identity);
        }
        if let Some(verified_until) = self.trust_until(now) {
            record.add_grant(digest, token_expires_at, verified_until);
        }
        Ok(use_record(record))
    }

    /// A full shard drops what is no longer worth keeping, then, if still full, the eighth of its
    /// sessions seen longest ago (their next request costs one store lookup).
    fn make_room(&self, shard: &mut HashMap<SessionKey, CachedSession>, now: Timestamp) {
        shard.retain(|_, s| s.kept_at(now));
        if shard.len() < self.shard_capacity {
            return;
        }
        let mut seen: Vec<Timestamp> = shard.values().map(|s| s.last_seen).collect();
        let cut = (seen.len() / 8).max(1);
        let (_, threshold, _) = seen.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let mut evicted = 0;
        shard.retain(|_, s| {
            let evict = evicted < cut && s.last_seen <= threshold;
            evicted += usize::from(evict);
            !evict
        });
    }

    pub fn last_seen(&self, id: &SessionId) -> Option<Timestamp> {
        let key = SessionKey::of(id.as_str())?;
        self.shard(&key).get(&key).map(|s| s.last_seen)
    }

    /// Stops admitting a session's cached grants at once.
    pub fn end(&self, id: &SessionId, reason: EndReason) {
        if let Some(key) = SessionKey::of(id.as_str()) {
            let mut shard = self.shard(&key);
            self.ended.insert(key, reason);
            shard.remove(&key);
        }
    }

    /// Forgets every grant: for an instance that can no longer trust what it cached.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            for record in shard.values_mut() {
                record.grants.clear();
            }
        }
    }

    /// How many sessions hold a grant that is still trusted.
    pub fn grant_count(&self) -> u64 {
        let now = Timestamp::now();
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard
                    .values()
                    .filter(|s| s.grants.iter().any(|g| now < g.verified_until))
                    .count() as u64
            })
            .sum()
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
            provider: None,
            from: Default::default(),
        }
    }

    /// Caches `s` as a store lookup would, with one grant expiring at `token_expires_at`.
    fn cache_grant(
        cache: &VerifyCache,
        s: &Session,
        digest: GrantDigest,
        token_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), EndReason> {
        cache.insert(s, (digest, token_expires_at), now, |_| ())
    }

    fn is_hit(cache: &VerifyCache, id: &str, digest: &GrantDigest, now: Timestamp) -> bool {
        matches!(
            cache.lookup(id, digest, now, |_, _| ()),
            CacheLookup::Hit(())
        )
    }

    #[test]
    fn a_grant_is_found_only_for_its_app_token_and_session_and_only_for_cache_ttl() {
        let cache = VerifyCache::new(Duration::from_secs(60), 100);
        let s = session();
        let id = s.id.as_str();
        let digest = grant_digest("a", "token", id);
        let now = Timestamp(2_000);
        cache_grant(&cache, &s, digest, Timestamp(9_000), now).unwrap();
        assert!(is_hit(&cache, id, &digest, now));
        assert!(!is_hit(&cache, id, &grant_digest("b", "token", id), now));
        assert!(!is_hit(&cache, id, &grant_digest("a", "token2", id), now));
        assert!(!is_hit(
            &cache,
            id,
            &grant_digest("a", "head.body.token2", id),
            now
        ));
        let other = SessionId::generate();
        assert!(!is_hit(&cache, other.as_str(), &digest, now));
        assert!(!is_hit(&cache, "not a session id", &digest, now));
        assert!(!is_hit(
            &cache,
            id,
            &digest,
            now.plus(Duration::from_secs(60))
        ));
    }

    #[test]
    fn an_ended_session_is_dropped_and_not_cached_again() {
        let cache = VerifyCache::new(Duration::from_secs(60), 100);
        let s = session();
        let digest = grant_digest("a", "token", s.id.as_str());
        let now = Timestamp(2_000);
        cache_grant(&cache, &s, digest, Timestamp(9_000), now).unwrap();
        cache.end(&s.id, EndReason::Logout);
        assert!(cache.is_ended(&s.id));
        assert!(!is_hit(&cache, s.id.as_str(), &digest, now));
        // A lookup in the store that raced with the sign-out does not bring the session back.
        let raced = cache_grant(&cache, &s, digest, Timestamp(9_000), now);
        assert_eq!(raced, Err(EndReason::Logout));
        assert!(!is_hit(&cache, s.id.as_str(), &digest, now));
    }

    #[test]
    fn nothing_is_cached_with_a_zero_ttl() {
        let cache = VerifyCache::new(Duration::ZERO, 100);
        let s = session();
        let digest = grant_digest("a", "t", s.id.as_str());
        cache_grant(&cache, &s, digest, Timestamp(9_000), Timestamp(2_000)).unwrap();
        assert!(!is_hit(&cache, s.id.as_str(), &digest, Timestamp(2_000)));
        // The session's activity is still remembered between store writes.
        assert_eq!(cache.last_seen(&s.id), Some(Timestamp(1_000)));
    }

    #[test]
    fn a_full_cache_keeps_its_size_and_drops_the_sessions_seen_longest_ago() {
        let capacity = 64;
        let cache = VerifyCache::new(Duration::from_secs(600), capacity);
        let mut sessions = Vec::new();
        for i in 0..1_000u64 {
            let mut s = session();
            s.last_seen = Timestamp(1_000 + i);
            let digest = grant_digest("a", "t", s.id.as_str());
            cache_grant(&cache, &s, digest, Timestamp(900_000), Timestamp(2_000)).unwrap();
            sessions.push((s, digest));
        }
        let now = Timestamp(2_000);
        let kept: Vec<bool> = sessions
            .iter()
            .map(|(s, d)| is_hit(&cache, s.id.as_str(), d, now))
            .collect();
        let count = kept.iter().filter(|k| **k).count() as u64;
        assert!(count <= capacity && count >= capacity / 2, "{count} kept");
        // The newest session is always kept; most of the oldest are gone.
        assert!(kept[999]);
        assert!(kept[..100].iter().filter(|k| **k).count() < 10);
    }

    #[test]
    fn activity_writes_are_throttled_per_session() {
        let mut record = CachedSession::from_session(&session());
        let interval = Duration::from_secs(10);
        let writes = (0..1000u64)
            .filter(|i| record.record_activity(Timestamp(1_000 + i * 100), interval))
            .count();
        // 100 seconds of requests every 100 ms: one write per 10 s.
        assert_eq!(writes, 9);
        assert_eq!(record.last_seen(), Timestamp(1_000 + 999 * 100));
    }

    #[test]
    fn renewals_are_spaced_by_the_minimum_interval_unless_forced() {
        let mut record = CachedSession::from_session(&session());
        let min = Duration::from_secs(60);
        assert!(record.claim_renewal("a", Timestamp(0), min, false));
        assert!(!record.claim_renewal("a", Timestamp(59_999), min, false));
        assert!(record.claim_renewal("b", Timestamp(59_999), min, false));
        assert!(record.claim_renewal("a", Timestamp(60_000), min, false));
        assert!(record.claim_renewal("a", Timestamp(60_001), min, true));
    }

    #[test]
    fn session_keys_come_only_from_well_formed_ids() {
        assert!(SessionKey::of(SessionId::generate().as_str()).is_some());
        assert!(SessionKey::of("").is_none());
        assert!(SessionKey::of("short").is_none());
        assert!(SessionKey::of(&"A".repeat(44)).is_none());
        assert!(SessionKey::of(&"*".repeat(43)).is_none());
    }
}

#[cfg(test)]
mod size {
    /// The record's size is what `cache_capacity` sessions cost; keep it from creeping up.
    #[test]
    fn a_cached_session_stays_small() {
        assert!(std::mem::size_of::<super::CachedSession>() <= 96);
        assert!(std::mem::size_of::<super::Identity>() <= 24);
    }
}
