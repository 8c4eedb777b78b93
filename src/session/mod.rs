//! Sessions: who signed in, when, and until when; the store that keeps them; and the one place
//! where a session ends, so every end is recorded with its reason.

mod instrumented;
mod lifecycle;
mod memory;
mod redis;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

pub use self::redis::{RedisStore, Revocation};
pub use lifecycle::{Noticed, Sessions};
pub use memory::MemoryStore;

/// 256 random bits, base64url: the session's name in the store and in the session-id cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(String);

impl SessionId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SessionId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only what [`SessionId::generate`] can produce, so a hostile cookie value never
    /// reaches the store as a key.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| SessionId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    /// Only a prefix: enough to correlate log lines, useless to an attacker reading logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.0[..8.min(self.0.len())])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user: String,
    pub groups: Vec<String>,
    pub email: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_seen: Timestamp,
    pub remember_me: bool,
    /// Expiry of the newest token issued for each app, for the session page.
    pub app_tokens: BTreeMap<String, Timestamp>,
}

impl Session {
    /// The limit this session has passed at `now`, judged with the newest activity known.
    pub fn limit_reached(
        &self,
        last_seen: Timestamp,
        idle_timeout: Option<Duration>,
        now: Timestamp,
    ) -> Option<EndReason> {
        if now >= self.expires_at {
            return Some(EndReason::Expired);
        }
        match idle_timeout {
            Some(idle) if now.since(last_seen.max(self.last_seen)) >= idle => {
                Some(EndReason::IdleTimeout)
            }
            _ => None,
        }
    }
}

/// Why a session ended: what the user is told, what the log and metric say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Logout,
    LogoutAll,
    IdleTimeout,
    Expired,
    Revoked,
    KeyRemoved,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::Logout,
        EndReason::LogoutAll,
        EndReason::IdleTimeout,
        EndReason::Expired,
        EndReason::Revoked,
        EndReason::KeyRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::LogoutAll => "logout_all",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Expired => "expired",
            EndReason::Revoked => "revoked",
            EndReason::KeyRemoved => "key_removed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        EndReason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The `?reason=` value of the sign-in page that explains this end.
    pub fn banner_key(self) -> &'static str {
        match self {
            EndReason::Logout | EndReason::LogoutAll => "logged_out",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Expired => "session_expired",
            EndReason::Revoked => "revoked",
            EndReason::KeyRemoved => "key_removed",
        }
    }
}

/// What the store knows of a session id.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Live(Session),
    /// Ended recently; the store keeps the reason for a while so the user can be told.
    Ended(EndReason),
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unreachable: {0}")]
    Unavailable(String),
    #[error("session store returned unreadable data: {0}")]
    Corrupt(String),
}

/// Where sessions live. The memory store serves one instance; a shared store (Redis) lets any
/// number of instances see the same sessions. The store only keeps records: deciding that a
/// session is idle or expired, and recording why it ended, is [`Sessions`]' job.
#[async_trait]
pub trait SessionStore: Send + Sync {
    fn kind(&self) -> &'static str;
    async fn create(&self, session: &Session) -> Result<(), StoreError>;
    async fn lookup(&self, id: &SessionId) -> Result<Lookup, StoreError>;
    /// Records activity; never moves `last_seen` backwards.
    async fn touch(&self, id: &SessionId, last_seen: Timestamp) -> Result<(), StoreError>;
    async fn record_token(
        &self,
        id: &SessionId,
        app: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Ends one session, leaving a tombstone with the reason. Returns the session if this call
    /// ended it (`None` if it was already gone), so exactly one caller records the end.
    async fn end(&self, id: &SessionId, reason: EndReason) -> Result<Option<Session>, StoreError>;
    async fn end_user(&self, user: &str, reason: EndReason) -> Result<Vec<Session>, StoreError>;
    async fn end_all(&self, reason: EndReason) -> Result<Vec<Session>, StoreError>;
    /// Sessions past a limit at `now`, for the sweeper to end with their reason.
    async fn stale(
        &self,
        now: Timestamp,
        idle_timeout: Option<Duration>,
    ) -> Result<Vec<(SessionId, EndReason)>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Keeps a one-time sign-in code for an app host (see `hub/host_sign_in.rs`) for `ttl`, so
    /// whichever instance the browser reaches next can redeem it.
    async fn put_code(&self, code: &str, grant: &str, ttl: Duration) -> Result<(), StoreError>;
    /// The grant of a code, removed in the same step: of two redemptions, one gets it.
    async fn take_code(&self, code: &str) -> Result<Option<String>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_parse_back() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
        for hostile in [
            "",
            "short",
            "../../etc/passwd",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert_eq!(SessionId::parse(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn limits_use_the_newest_activity() {
        let session = Session {
            id: SessionId::generate(),
            user: "alice".into(),
            groups: vec![],
            email: String::new(),
            created_at: Timestamp(0),
            expires_at: Timestamp(100_000),
            last_seen: Timestamp(0),
            remember_me: false,
            app_tokens: BTreeMap::new(),
        };
        let idle = Some(Duration::from_secs(30));
        assert_eq!(
            session.limit_reached(Timestamp(0), idle, Timestamp(29_999)),
            None
        );
        assert_eq!(
            session.limit_reached(Timestamp(0), idle, Timestamp(30_000)),
            Some(EndReason::IdleTimeout)
        );
        assert_eq!(
            session.limit_reached(Timestamp(20_000), idle, Timestamp(30_000)),
            None
        );
        assert_eq!(
            session.limit_reached(Timestamp(99_000), idle, Timestamp(100_000)),
            Some(EndReason::Expired)
        );
        assert_eq!(
            session.limit_reached(Timestamp(0), None, Timestamp(99_999)),
            None
        );
    }
}
