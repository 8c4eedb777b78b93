//! The in-memory session store: the embedded default for a single instance. Sessions end with the
//! process (`store = "redis"` keeps them across restarts and instances).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{EndReason, Lookup, Session, SessionId, SessionStore, StoreError};
use crate::time::Timestamp;

/// How long the reason of an ended session is remembered, so a user returning the next morning
/// is still told why they were signed out.
const TOMBSTONE_TTL: Duration = Duration::from_secs(24 * 3600);
const TOMBSTONE_CAPACITY: u64 = 100_000;

#[derive(Default)]
struct Records {
    sessions: HashMap<SessionId, Session>,
    by_user: HashMap<String, HashSet<SessionId>>,
}

impl Records {
    fn remove(&mut self, id: &SessionId) -> Option<Session> {
        let session = self.sessions.remove(id)?;
        if let Some(ids) = self.by_user.get_mut(&session.user) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&session.user);
            }
        }
        Some(session)
    }
}

pub struct MemoryStore {
    records: Mutex<Records>,
    tombstones: moka::sync::Cache<SessionId, EndReason>,
    /// Small values with a lifetime each ([`SessionStore::put_note`], [`SessionStore::first_use`]).
    notes: moka::sync::Cache<String, (String, Duration)>,
}

/// Each note lives for the time it was stored with.
struct NoteLifetime;

impl moka::Expiry<String, (String, Duration)> for NoteLifetime {
    fn expire_after_create(
        &self,
        _name: &String,
        note: &(String, Duration),
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(note.1)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            records: Mutex::default(),
            tombstones: moka::sync::Cache::builder()
                .max_capacity(TOMBSTONE_CAPACITY)
                .time_to_live(TOMBSTONE_TTL)
                .build(),
            notes: moka::sync::Cache::builder()
                .max_capacity(TOMBSTONE_CAPACITY)
                .expire_after(NoteLifetime)
                .build(),
        }
    }
}

impl MemoryStore {
    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic while holding the lock cannot leave a record half-written (every change is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn end_many(
        &self,
        ids: Vec<SessionId>,
        reason: EndReason,
        records: &mut Records,
    ) -> Vec<Session> {
        ids.iter()
            .filter_map(|id| {
                let session = records.remove(id)?;
                self.tombstones.insert(id.clone(), reason);
                Some(session)
            })
            .collect()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let mut records = self.records();
        records
            .by_user
            .entry(session.user.clone())
            .or_default()
            .insert(session.id.clone());
        records.sessions.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn lookup(&self, id: &SessionId) -> Result<Lookup, StoreError> {
        if let Some(session) = self.records().sessions.get(id) {
            return Ok(Lookup::Live(session.clone()));
        }
        Ok(match self.tombstones.get(id) {
            Some(reason) => Lookup::Ended(reason),
            None => Lookup::Unknown,
        })
    }

    async fn touch(&self, id: &SessionId, last_seen: Timestamp) -> Result<(), StoreError> {
        if let Some(session) = self.records().sessions.get_mut(id) {
            session.last_seen = session.last_seen.max(last_seen);
        }
        Ok(())
    }

    async fn record_token(
        &self,
        id: &SessionId,
        app: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        if let Some(session) = self.records().sessions.get_mut(id) {
            session.app_tokens.insert(app.to_string(), expires_at);
        }
        Ok(())
    }

    async fn end(&self, id: &SessionId, reason: EndReason) -> Result<Option<Session>, StoreError> {
        let mut records = self.records();
        Ok(self.end_many(vec![id.clone()], reason, &mut records).pop())
    }

    async fn end_user(&self, user: &str, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        let mut records = self.records();
        let ids = records
            .by_user
            .get(user)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        Ok(self.end_many(ids, reason, &mut records))
    }

    async fn end_all(&self, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        let mut records = self.records();
        let ids = records.sessions.keys().cloned().collect();
        Ok(self.end_many(ids, reason, &mut records))
    }

    async fn stale(
        &self,
        now: Timestamp,
        idle_timeout: Option<Duration>,
    ) -> Result<Vec<(SessionId, EndReason)>, StoreError> {
        let records = self.records();
        Ok(records
            .sessions
            .values()
            .filter_map(|s| {
                Some((
                    s.id.clone(),
                    s.limit_reached(s.last_seen, idle_timeout, now)?,
                ))
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn user_sessions(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let records = self.records();
        Ok(records
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| records.sessions.get(id).cloned())
            .collect())
    }

    async fn put_note(&self, name: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.notes
            .insert(name.to_string(), (value.to_string(), ttl));
        Ok(())
    }

    async fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.notes.get(name).map(|(value, _)| value))
    }

    async fn record_provider_check(
        &self,
        id: &SessionId,
        at: Timestamp,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut records = self.records();
        if let Some(link) = records
            .sessions
            .get_mut(id)
            .and_then(|s| s.provider.as_deref_mut())
        {
            link.checked_at = at;
            if let Some(token) = refresh_token {
                link.refresh_token = Some(token.to_string());
            }
        }
        Ok(())
    }

    async fn first_use(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        let entry = self
            .notes
            .entry(name.to_string())
            .or_insert_with(|| (String::new(), ttl));
        Ok(entry.is_fresh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn session(user: &str) -> Session {
        Session {
            id: SessionId::generate(),
            user: user.into(),
            groups: vec!["ops".into()],
            email: format!("{user}@example.com"),
            created_at: Timestamp(1_000),
            expires_at: Timestamp(100_000),
            last_seen: Timestamp(1_000),
            remember_me: false,
            app_tokens: BTreeMap::new(),
            provider: None,
            from: Default::default(),
        }
    }

    #[tokio::test]
    async fn ending_leaves_a_tombstone_with_the_reason_and_happens_once() {
        let store = MemoryStore::default();
        let s = session("alice");
        store.create(&s).await.unwrap();
        assert_eq!(store.lookup(&s.id).await.unwrap(), Lookup::Live(s.clone()));
        assert_eq!(
            store.end(&s.id, EndReason::Logout).await.unwrap(),
            Some(s.clone())
        );
        assert_eq!(store.end(&s.id, EndReason::Logout).await.unwrap(), None);
        assert_eq!(
            store.lookup(&s.id).await.unwrap(),
            Lookup::Ended(EndReason::Logout)
        );
        assert_eq!(
            store.lookup(&SessionId::generate()).await.unwrap(),
            Lookup::Unknown
        );
    }

    #[tokio::test]
    async fn end_user_ends_only_that_users_sessions() {
        let store = MemoryStore::default();
        let (a1, a2, b) = (session("alice"), session("alice"), session("bob"));
        for s in [&a1, &a2, &b] {
            store.create(s).await.unwrap();
        }
        assert_eq!(
            store
                .end_user("alice", EndReason::LogoutAll)
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            store.lookup(&b.id).await.unwrap(),
            Lookup::Live(_)
        ));
        assert_eq!(store.end_all(EndReason::Revoked).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn touch_never_moves_activity_backwards() {
        let store = MemoryStore::default();
        let s = session("alice");
        store.create(&s).await.unwrap();
        store.touch(&s.id, Timestamp(5_000)).await.unwrap();
        store.touch(&s.id, Timestamp(2_000)).await.unwrap();
        let Lookup::Live(found) = store.lookup(&s.id).await.unwrap() else {
            panic!()
        };
        assert_eq!(found.last_seen, Timestamp(5_000));
        let stale = store
            .stale(Timestamp(40_000), Some(Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!(stale, vec![(s.id.clone(), EndReason::IdleTimeout)]);
    }
}
