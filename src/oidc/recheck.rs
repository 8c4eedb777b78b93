//! `recheck_interval`: a session begun at a provider is taken to the provider again — a refresh
//! token grant — at most once per interval, so a person disabled there (or whose grant was
//! revoked) loses every app without waiting for the session's end. Checked when an instance looks
//! the session up in the store (a verification-cache miss, at most every `cache_ttl`, or a hub
//! page); one instance per interval does it, so a rotating refresh token is used once.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{HttpProblem, Providers};
use crate::session::{ProviderCheck, Session, SessionStore};
use crate::time::Timestamp;

pub struct Recheck {
    providers: Arc<Providers>,
    store: Arc<dyn SessionStore>,
}

impl Recheck {
    pub fn new(providers: Arc<Providers>, store: Arc<dyn SessionStore>) -> Self {
        Recheck { providers, store }
    }
}

#[derive(Deserialize)]
struct Refreshed {
    refresh_token: Option<String>,
}

#[async_trait]
impl ProviderCheck for Recheck {
    async fn still_accepted(&self, session: &Session, now: Timestamp) -> Option<bool> {
        let link = session.provider.as_deref()?;
        let provider = self.providers.get(&link.provider)?;
        let interval = provider.config.recheck_interval?;
        if now.since(link.checked_at) < interval {
            return None;
        }
        let refresh_token = link.refresh_token.as_deref()?;
        let metadata = provider.metadata()?;
        // This instance's turn, for this interval; the others go on with what they know.
        let turn = format!("oidc:recheck:{}", session.id.as_str());
        if !self.store.first_use(&turn, interval).await.ok()? {
            return None;
        }
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        match provider.post_form(&metadata.token_endpoint, &form).await {
            Ok(body) => {
                let refreshed: Refreshed = serde_json::from_slice(&body).ok()?;
                let _ = self
                    .store
                    .record_provider_check(&session.id, now, refreshed.refresh_token.as_deref())
                    .await;
                Some(true)
            }
            // RFC 6749 §5.2: the grant is no longer valid — revoked, or the account disabled.
            Err(HttpProblem::Refused {
                status: 400 | 401,
                text,
            }) if text.contains("invalid_grant") => {
                tracing::info!(event = "provider_refused", provider = %link.provider, user = %session.user, session = %session.id, "the provider no longer accepts this person");
                Some(false)
            }
            Err(e) => {
                tracing::warn!(provider = %link.provider, session = %session.id, error = %e, "cannot recheck the session at the provider; it goes on");
                None
            }
        }
    }
}
