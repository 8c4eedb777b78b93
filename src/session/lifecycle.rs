//! The one place where sessions begin and end. Every end goes through here, so each is recorded
//! once with its reason: a structured log line, `hubgate_sessions_ended_total{reason}`, and a purge
//! of the verification cache so the next request with the old cookies is refused at once — and,
//! with a history ([`Sessions::with_history`]), an entry in the user's recent sign-outs.

use std::sync::Arc;
use std::time::Duration;

use super::instrumented::Instrumented;
use super::recent_ends::{session_ref, EndHistory, EndRecord};
use super::{EndReason, Lookup, ProviderCheck, Session, SessionId, SessionStore, StoreError};
use crate::auth::cache::VerifyCache;
use crate::config::Users;
use crate::metrics::Metrics;
use crate::time::{human_duration, Timestamp};

/// Where an end was noticed, for the log line ("idle_timeout noticed on grafana /d/abc").
#[derive(Debug, Default, Clone, Copy)]
pub struct Noticed<'a> {
    pub app: Option<&'a str>,
    pub path: Option<&'a str>,
}

pub struct Sessions {
    store: Instrumented,
    cache: Arc<VerifyCache>,
    metrics: Arc<Metrics>,
    idle_timeout: Option<Duration>,
    provider_check: Option<Arc<dyn ProviderCheck>>,
    /// The users file as last (re)loaded; `None` without one (providers only).
    users: Option<Users>,
    history: Option<Arc<dyn EndHistory>>,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn SessionStore>,
        cache: Arc<VerifyCache>,
        metrics: Arc<Metrics>,
        idle_timeout: Option<Duration>,
    ) -> Self {
        Sessions {
            store: Instrumented::new(store, metrics.clone()),
            cache,
            metrics,
            idle_timeout,
            provider_check: None,
            users: None,
            history: None,
        }
    }

    /// Password sessions follow `users` as it is now (see [`Sessions::live`]).
    pub fn with_users_file(mut self, users: Users) -> Self {
        self.users = Some(users);
        self
    }

    /// Every end is also kept in the user's recent sign-outs (in the same store as the sessions).
    pub fn with_history(mut self, history: Arc<dyn EndHistory>) -> Self {
        self.history = Some(history);
        self
    }

    pub fn history(&self) -> Option<&dyn EndHistory> {
        self.history.as_deref()
    }

    /// Sessions begun at an OpenID provider are asked about again there (`recheck_interval`)
    /// whenever this instance looks them up in the store.
    pub fn with_provider_check(mut self, check: Arc<dyn ProviderCheck>) -> Self {
        self.provider_check = Some(check);
        self
    }

    pub fn store(&self) -> &dyn SessionStore {
        &self.store
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Looks a session up and ends it on the spot if it has passed a limit, so a caller sees
    /// either a live session or the reason it is not. Idleness is judged with the newest activity
    /// known: the store's, or this instance's if it has not been written yet.
    pub async fn live(
        &self,
        id: &SessionId,
        now: Timestamp,
        noticed: Noticed<'_>,
    ) -> Result<Result<Session, Option<EndReason>>, StoreError> {
        let session = match self.store.lookup(id).await? {
            Lookup::Live(session) => session,
            Lookup::Ended(reason) => return Ok(Err(Some(reason))),
            Lookup::Unknown => return Ok(Err(None)),
        };
        let recent_activity = self.cache.last_seen(id).unwrap_or_default();
        let mut reached = session.limit_reached(recent_activity, self.idle_timeout, now);
        if reached.is_none() {
            if let Some(check) = &self.provider_check {
                if check.still_accepted(&session, now).await == Some(false) {
                    reached = Some(EndReason::ProviderRevoked);
                }
            }
        }
        let mut session = session;
        if reached.is_none() && !self.follow_users_file(&mut session) {
            reached = Some(EndReason::UserRemoved);
        }
        match reached {
            None => Ok(Ok(session)),
            Some(reason) => {
                self.end(id, reason, now, noticed).await?;
                Ok(Err(Some(reason)))
            }
        }
    }

    /// A password session follows the users file as it is now: groups and email changed there
    /// apply from this lookup on (a reload clears the verify cache, so that is the next request,
    /// at the hub and at every app), and a user no longer in it — even one removed while the
    /// gateway was down — is gone (`false`). Sessions from a provider follow the provider.
    fn follow_users_file(&self, session: &mut Session) -> bool {
        let Some(users) = &self.users else {
            return true;
        };
        if session.provider.is_some() {
            return true;
        }
        match users.get(&session.user) {
            Some(user) => {
                session.groups.clone_from(&user.groups);
                session.email.clone_from(&user.email);
                true
            }
            None => false,
        }
    }

    pub async fn end(
        &self,
        id: &SessionId,
        reason: EndReason,
        now: Timestamp,
        noticed: Noticed<'_>,
    ) -> Result<bool, StoreError> {
        let recent = self.cache.last_seen(id).unwrap_or_default();
        // Purge first: even if the store write fails, this instance stops admitting the session.
        self.cache.end(id, reason);
        let ended = self.store.end(id, reason).await?;
        if let Some(session) = &ended {
            self.record_end(session, reason, recent, now, noticed).await;
        }
        Ok(ended.is_some())
    }

    pub async fn end_user(
        &self,
        user: &str,
        reason: EndReason,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let ended = self.store.end_user(user, reason).await?;
        for session in &ended {
            let recent = self.cache.last_seen(&session.id).unwrap_or_default();
            self.cache.end(&session.id, reason);
            self.record_end(session, reason, recent, now, Noticed::default())
                .await;
        }
        Ok(ended.len())
    }

    pub async fn end_all(&self, reason: EndReason, now: Timestamp) -> Result<usize, StoreError> {
        let ended = self.store.end_all(reason).await?;
        for session in &ended {
            let recent = self.cache.last_seen(&session.id).unwrap_or_default();
            self.cache.end(&session.id, reason);
            self.record_end(session, reason, recent, now, Noticed::default())
                .await;
        }
        Ok(ended.len())
    }

    /// Ends those of `user`'s sessions that `matches` picks (an OpenID provider's logout names its
    /// own subject or session, not one of ours).
    pub async fn end_matching(
        &self,
        user: &str,
        reason: EndReason,
        now: Timestamp,
        matches: impl Fn(&Session) -> bool,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for session in self.store.user_sessions(user).await? {
            if matches(&session)
                && self
                    .end(&session.id, reason, now, Noticed::default())
                    .await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends sessions nobody came back to, so their end is recorded too (not only those noticed
    /// by a request).
    pub async fn sweep(&self, now: Timestamp) -> Result<usize, StoreError> {
        let stale = self.store.stale(now, self.idle_timeout).await?;
        let mut ended = 0;
        for (id, reason) in stale {
            if self.end(&id, reason, now, Noticed::default()).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn record_end(
        &self,
        session: &Session,
        reason: EndReason,
        recent: Timestamp,
        now: Timestamp,
        noticed: Noticed<'_>,
    ) {
        self.metrics
            .sessions_ended
            .with_label_values(&[reason.as_str()])
            .inc();
        let last_activity = session.last_seen.max(recent);
        tracing::info!(
            event = "session_ended",
            user = %session.user,
            reason = reason.as_str(),
            session = %session.id,
            session_age = %human_duration(now.since(session.created_at)),
            idle_time = %human_duration(now.since(last_activity)),
            remember_me = session.remember_me,
            app = noticed.app.unwrap_or("-"),
            path = noticed.path.unwrap_or("-"),
            "session ended: {}", reason.as_str()
        );
        let Some(history) = &self.history else {
            return;
        };
        let record = EndRecord {
            reason,
            at: now,
            session: session_ref(&session.id),
            session_age_seconds: now.since(session.created_at).as_secs(),
            idle_seconds: now.since(last_activity).as_secs(),
            app: noticed.app.map(str::to_string),
            path: noticed.path.map(str::to_string),
            device: session.from.device.clone(),
            ip: session.from.ip.clone(),
        };
        // The end itself has happened; a history that cannot be written loses only the record.
        if let Err(e) = history
            .record_end(&session.user, &session.id, &record)
            .await
        {
            tracing::warn!(user = %session.user, error = %e, "recent sign-out not recorded");
        }
    }
}
