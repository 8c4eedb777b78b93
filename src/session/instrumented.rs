//! A store wrapper that times every operation and counts failures, so each store (memory, Redis)
//! is measured the same way without a line of metrics code of its own.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{EndReason, Lookup, Session, SessionId, SessionStore, StoreError};
use crate::metrics::Metrics;
use crate::time::Timestamp;

pub struct Instrumented {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Self {
        Instrumented { inner, metrics }
    }

    async fn measure<T>(
        &self,
        op: &'static str,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let timer = self.metrics.store_timer(op).start_timer();
        let result = work.await;
        timer.observe_duration();
        if let Err(e) = &result {
            self.metrics.store_errors.with_label_values(&[op]).inc();
            tracing::warn!(op, error = %e, "session store operation failed");
        }
        result
    }
}

#[async_trait]
impl SessionStore for Instrumented {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.measure("create", self.inner.create(session)).await
    }
    async fn lookup(&self, id: &SessionId) -> Result<Lookup, StoreError> {
        self.measure("lookup", self.inner.lookup(id)).await
    }
    async fn touch(&self, id: &SessionId, last_seen: Timestamp) -> Result<(), StoreError> {
        self.measure("touch", self.inner.touch(id, last_seen)).await
    }
    async fn record_token(
        &self,
        id: &SessionId,
        app: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.measure("record_token", self.inner.record_token(id, app, expires_at))
            .await
    }
    async fn end(&self, id: &SessionId, reason: EndReason) -> Result<Option<Session>, StoreError> {
        self.measure("end", self.inner.end(id, reason)).await
    }
    async fn end_user(&self, user: &str, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        self.measure("end_user", self.inner.end_user(user, reason))
            .await
    }
    async fn end_all(&self, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        self.measure("end_all", self.inner.end_all(reason)).await
    }
    async fn stale(
        &self,
        now: Timestamp,
        idle_timeout: Option<Duration>,
    ) -> Result<Vec<(SessionId, EndReason)>, StoreError> {
        self.measure("stale", self.inner.stale(now, idle_timeout))
            .await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.measure("ping", self.inner.ping()).await
    }
    async fn user_sessions(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        self.measure("user_sessions", self.inner.user_sessions(user))
            .await
    }
    async fn put_note(&self, name: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.measure("put_note", self.inner.put_note(name, value, ttl))
            .await
    }
    async fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.measure("note", self.inner.note(name)).await
    }
    async fn first_use(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.measure("first_use", self.inner.first_use(name, ttl))
            .await
    }
    async fn record_provider_check(
        &self,
        id: &SessionId,
        at: Timestamp,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.measure(
            "record_provider_check",
            self.inner.record_provider_check(id, at, refresh_token),
        )
        .await
    }
}
