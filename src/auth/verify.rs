//! The decision for every app request, as DESIGN.md's flow reads: app token + session-id cookie →
//! cache hit (no store work) or full verification (signature, audience, session id match, session
//! alive in the store) → admit, perhaps with a renewed token, or refuse with a reason.

use std::sync::Arc;
use std::time::Duration;

use super::cache::{grant_digest, CacheLookup, CachedSession, GrantDigest, VerifyCache};
use super::cookies::Found;
use super::tokens::{AppClaims, KeyRing, TokenError};
use super::Identity;
use crate::config::{Config, OnStoreError, TokenConfig};
use crate::metrics::Metrics;
use crate::session::{EndReason, Lookup, Noticed, SessionId, Sessions};
use crate::time::Timestamp;

/// A token whose `iat` is this far in the future was not issued by a gateway with a sane clock.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// What the verifier needs to know about one app request.
#[derive(Debug, Clone, Copy)]
pub struct AppRequest<'a> {
    pub app: &'a str,
    /// The app cookie and the session-id cookie, as [`super::cookies::lookup`] found them.
    pub token: Found<'a>,
    pub session_id: Found<'a>,
    /// Path only, for log lines (a query string may carry secrets).
    pub path: &'a str,
    /// Health checks and polling: admitted, but neither renew tokens nor count as activity.
    pub activity_exempt: bool,
}

#[derive(Debug)]
pub enum Verdict {
    Admit(Admission),
    Refuse(Refusal),
}

#[derive(Debug)]
pub struct Admission {
    pub identity: Arc<Identity>,
    pub renewed: Option<RenewedToken>,
}

/// A fresh app token to hand to the browser with this response.
#[derive(Debug)]
pub struct RenewedToken {
    pub token: String,
    /// `Some` for remember-me sessions (the cookie outlives the browser), else a session cookie.
    pub cookie_max_age: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unauthenticated(Reason),
    /// The store could not be asked and the cache could not vouch for the request.
    StoreUnavailable,
    /// The app cookie or the session-id cookie arrived twice with different values (cookie tossing
    /// from a sibling domain or a longer path). Not a 401: signing in again would not help, and a
    /// browser sent to sign in would come straight back here.
    ConflictingCookies,
}

/// Why a request is not authenticated: the `reason` of the 401 JSON answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoToken,
    InvalidToken,
    KeyRemoved,
    SessionMismatch,
    SessionRevoked,
    IdleTimeout,
    SessionExpired,
    /// The user is no longer in the users file (removed, then reloaded).
    UserRemoved,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoToken => "no_token",
            Reason::InvalidToken => "invalid_token",
            Reason::KeyRemoved => "key_removed",
            Reason::SessionMismatch => "session_mismatch",
            Reason::SessionRevoked => "session_revoked",
            Reason::IdleTimeout => "idle_timeout",
            Reason::SessionExpired => "session_expired",
            Reason::UserRemoved => "user_removed",
        }
    }

    fn from_end(reason: Option<EndReason>) -> Self {
        match reason {
            Some(EndReason::IdleTimeout) => Reason::IdleTimeout,
            Some(EndReason::Expired) => Reason::SessionExpired,
            Some(EndReason::KeyRemoved) => Reason::KeyRemoved,
            Some(EndReason::UserRemoved) => Reason::UserRemoved,
            Some(
                EndReason::Logout
                | EndReason::LogoutAll
                | EndReason::Revoked
                | EndReason::ProviderLogout
                | EndReason::ProviderRevoked
                | EndReason::LogoutDevice,
            )
            | None => Reason::SessionRevoked,
        }
    }
}

fn refuse(reason: Reason) -> Verdict {
    Verdict::Refuse(Refusal::Unauthenticated(reason))
}

/// Token lifetime policy, from `[tokens]`.
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy {
    pub ttl: Duration,
    pub renew_threshold: f64,
    pub renew_min_interval: Duration,
}

impl TokenPolicy {
    pub fn new(tokens: &TokenConfig) -> Self {
        TokenPolicy {
            ttl: tokens.ttl,
            renew_threshold: tokens.renew_threshold,
            renew_min_interval: tokens.renew_min_interval,
        }
    }

    /// A new token's expiry: `ttl` from now, never past the session's end.
    pub fn expiry(&self, now: Timestamp, session_expires_at: Timestamp) -> Timestamp {
        now.plus(self.ttl).min(session_expires_at)
    }

    fn wants_renewal(&self, token_expires_at: Timestamp, now: Timestamp) -> bool {
        now.until(token_expires_at).as_secs_f64() < self.renew_threshold * self.ttl.as_secs_f64()
    }
}

pub struct Verifier {
    keys: Arc<KeyRing>,
    cache: Arc<VerifyCache>,
    sessions: Arc<Sessions>,
    metrics: Arc<Metrics>,
    policy: TokenPolicy,
    on_store_error: OnStoreError,
    activity_write_interval: Duration,
}

impl Verifier {
    pub fn new(
        config: &Config,
        keys: Arc<KeyRing>,
        cache: Arc<VerifyCache>,
        sessions: Arc<Sessions>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Verifier {
            keys,
            cache,
            sessions,
            metrics,
            policy: TokenPolicy::new(&config.tokens),
            on_store_error: config.session.on_store_error,
            activity_write_interval: config.session.activity_write_interval(),
        }
    }

    /// Whether a session admitted earlier (an open WebSocket) may still carry traffic: not if this
    /// instance heard it ended, nor — checked at most every `recheck` — if the store says so.
    /// A store that cannot be reached does not cut open connections.
    pub async fn still_live(
        &self,
        id: &SessionId,
        last_checked: &mut std::time::Instant,
        recheck: Duration,
    ) -> bool {
        if self.cache.is_ended(id) {
            return false;
        }
        if last_checked.elapsed() < recheck {
            return true;
        }
        *last_checked = std::time::Instant::now();
        !matches!(
            self.sessions.store().lookup(id).await,
            Ok(Lookup::Ended(_) | Lookup::Unknown)
        )
    }

    /// The cheap, synchronous part of [`Verifier::still_live`].
    pub fn known_ended(&self, id: &SessionId) -> bool {
        self.cache.is_ended(id)
    }

    pub async fn verify(&self, req: &AppRequest<'_>, now: Timestamp) -> Verdict {
        if req.token == Found::Conflicting || req.session_id == Found::Conflicting {
            return Verdict::Refuse(Refusal::ConflictingCookies);
        }
        let Some(token) = req.token.value() else {
            return refuse(Reason::NoToken);
        };
        let Some(session_id) = req.session_id.value() else {
            return self.verify_with_store(token, None, req, now).await;
        };
        let digest = grant_digest(req.app, token, session_id);
        let idle_timeout = self.sessions.idle_timeout();
        // Admitted here only while the session's idle and absolute limits hold as far as this
        // instance knows; otherwise the store has the last word (another instance may have seen
        // activity), and may be asked instead of refusing when unreachable with `allow_cached`.
        let cached = self
            .cache
            .lookup(session_id, &digest, now, |record, token_expires_at| {
                (!record.limit_reached(idle_timeout, now))
                    .then(|| self.admit(record, token_expires_at, req, session_id, now))
            });
        match cached {
            CacheLookup::Hit(Some(admitted)) => {
                self.metrics.cache_hit.inc();
                admitted
            }
            CacheLookup::Hit(None) => {
                self.metrics.cache_hit.inc();
                self.verify_with_store(token, Some(digest), req, now).await
            }
            CacheLookup::Miss => {
                self.metrics.cache_miss.inc();
                self.verify_with_store(token, Some(digest), req, now).await
            }
        }
    }

    async fn verify_with_store(
        &self,
        token: &str,
        digest: Option<GrantDigest>,
        req: &AppRequest<'_>,
        now: Timestamp,
    ) -> Verdict {
        let claims = match self.keys.verify(token, req.app) {
            Ok(claims) => claims,
            Err(TokenError::KeyRemoved(claims)) => {
                self.end_session_of_retired_key(&claims, req, now).await;
                return refuse(Reason::KeyRemoved);
            }
            Err(TokenError::Invalid | TokenError::WrongAudience) => {
                return refuse(Reason::InvalidToken)
            }
        };
        if claims.iat > now.as_secs() + MAX_CLOCK_SKEW_SECS {
            return refuse(Reason::InvalidToken);
        }
        let (Some(digest), Some(id)) = (
            digest,
            req.session_id
                .value()
                .filter(|s| *s == claims.sid)
                .and_then(SessionId::parse),
        ) else {
            return refuse(Reason::SessionMismatch);
        };
        let noticed = Noticed {
            app: Some(req.app),
            path: Some(req.path),
        };
        let session = match self.sessions.live(&id, now, noticed).await {
            Ok(Ok(session)) => session,
            Ok(Err(reason)) => return refuse(Reason::from_end(reason)),
            Err(_) => return self.when_store_unavailable(&id, &digest, req, now),
        };
        if session.user != claims.sub {
            return refuse(Reason::InvalidToken);
        }
        let token_expires_at = Timestamp::from_secs(claims.exp);
        self.cache
            .insert(&session, (digest, token_expires_at), now, |record| {
                self.admit(record, token_expires_at, req, id.as_str(), now)
            })
            .unwrap_or_else(|ended| refuse(Reason::from_end(Some(ended))))
    }

    /// The store cannot be asked. With `on_store_error = "allow_cached"` a session this instance
    /// holds a grant for is admitted on what it knows (even if it looked idle here); otherwise,
    /// or without a grant, the request is refused with 503.
    fn when_store_unavailable(
        &self,
        id: &SessionId,
        digest: &GrantDigest,
        req: &AppRequest<'_>,
        now: Timestamp,
    ) -> Verdict {
        if self.on_store_error == OnStoreError::AllowCached {
            let cached = self
                .cache
                .lookup(id.as_str(), digest, now, |record, token_expires_at| {
                    self.admit(record, token_expires_at, req, id.as_str(), now)
                });
            if let CacheLookup::Hit(admitted) = cached {
                return admitted;
            }
        }
        Verdict::Refuse(Refusal::StoreUnavailable)
    }

    /// Runs under the cache shard's lock: bookkeeping only, plus (rarely) signing a renewal.
    fn admit(
        &self,
        record: &mut CachedSession,
        token_expires_at: Timestamp,
        req: &AppRequest<'_>,
        session_id: &str,
        now: Timestamp,
    ) -> Verdict {
        let mut renewed = None;
        if !req.activity_exempt {
            if record.record_activity(now, self.activity_write_interval) {
                self.write_activity(session_id, now);
            }
            // An expired token of a live session is re-issued on this very request: the user (and
            // an in-flight XHR or POST) is never bounced. Otherwise renew past the threshold, at
            // most once per `renew_min_interval`.
            let expired = now >= token_expires_at;
            if (expired || self.policy.wants_renewal(token_expires_at, now))
                && record.claim_renewal(req.app, now, self.policy.renew_min_interval, expired)
            {
                renewed = self.renew(record, req.app, session_id, now);
            }
        }
        Verdict::Admit(Admission {
            identity: record.identity.clone(),
            renewed,
        })
    }

    fn renew(
        &self,
        record: &mut CachedSession,
        app: &str,
        session_id: &str,
        now: Timestamp,
    ) -> Option<RenewedToken> {
        let id = SessionId::parse(session_id)?;
        let expires_at = self.policy.expiry(now, record.expires_at);
        let token = self
            .keys
            .sign(&AppClaims::new(&record.identity, &id, app, now, expires_at));
        // Cache the new token right away: the next request with it costs no store round trip.
        if let Some(verified_until) = self.cache.trust_until(now) {
            record.add_grant(
                grant_digest(app, &token, session_id),
                Timestamp::from_secs(expires_at.as_secs()),
                verified_until,
            );
        }
        self.metrics.token_renewals.with_label_values(&[app]).inc();
        let sessions = self.sessions.clone();
        let app_name = app.to_string();
        tokio::spawn(async move {
            let _ = sessions
                .store()
                .record_token(&id, &app_name, expires_at)
                .await;
        });
        Some(RenewedToken {
            token,
            cookie_max_age: record.remember_me.then(|| now.until(record.expires_at)),
        })
    }

    fn write_activity(&self, session_id: &str, now: Timestamp) {
        let Some(id) = SessionId::parse(session_id) else {
            return;
        };
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            let _ = sessions.store().touch(&id, now).await;
        });
    }

    /// A token its retired key really signed (the signature verified): its session cannot be
    /// trusted any more (its hub-login cookie was sealed with the same key), so it ends with
    /// `key_removed` — when the request also carries that session's id cookie. A token whose
    /// signature cannot be checked never gets here: unverifiable input changes nothing.
    async fn end_session_of_retired_key(
        &self,
        claims: &AppClaims,
        req: &AppRequest<'_>,
        now: Timestamp,
    ) {
        if claims.iat > now.as_secs() + MAX_CLOCK_SKEW_SECS
            || req.session_id.value() != Some(claims.sid.as_str())
        {
            return;
        }
        let Some(id) = SessionId::parse(&claims.sid) else {
            return;
        };
        let noticed = Noticed {
            app: Some(req.app),
            path: Some(req.path),
        };
        let _ = self
            .sessions
            .end(&id, EndReason::KeyRemoved, now, noticed)
            .await;
    }
}

impl AppClaims {
    pub fn new(
        identity: &Identity,
        id: &SessionId,
        app: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        AppClaims {
            sub: identity.user().to_string(),
            sid: id.as_str().to_string(),
            aud: app.to_string(),
            iat: now.as_secs(),
            exp: expires_at.as_secs(),
            groups: identity.groups().map(str::to_string).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_threshold_is_a_fraction_of_the_ttl() {
        let policy = TokenPolicy {
            ttl: Duration::from_secs(100),
            renew_threshold: 0.5,
            renew_min_interval: Duration::from_secs(10),
        };
        let exp = Timestamp(200_000);
        assert!(!policy.wants_renewal(exp, Timestamp(149_000)));
        assert!(policy.wants_renewal(exp, Timestamp(151_000)));
        assert!(policy.wants_renewal(exp, Timestamp(300_000)));
        assert_eq!(
            policy.expiry(Timestamp(0), Timestamp(50_000)),
            Timestamp(50_000)
        );
        assert_eq!(
            policy.expiry(Timestamp(0), Timestamp(500_000)),
            Timestamp(100_000)
        );
    }
}
