//! Sessions: who signed in, when, and until when; the store that keeps them; and the one place
//! where a session ends, so every end is recorded with its reason.

pub mod device;
mod instrumented;
mod lifecycle;
mod memory;
pub mod recent_ends;
mod recent_ends_redis;
pub(crate) mod redis;
pub(crate) mod redis_link;

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
pub use recent_ends::EndHistory;

/// 256 random bits, base64url: the session's name in the store and in the session-id cookie.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(String);

/// Sessions live in this many buckets. A bucket is a Redis hash tag (`{17}`): all of one user's
/// keys share a slot, so every script touches one slot and runs unchanged on Redis Cluster, while
/// 1024 tags still spread users over far more primaries than anyone runs.
pub const BUCKETS: u16 = 1024;

/// The bucket that holds `user`'s sessions. A fixed hash (stable across instances, versions and key
/// rotations, unlike std's hasher or a signing key): its job is spread, not secrecy — user names
/// come from the users file or a provider, and a crowded bucket only loads one slot.
pub fn user_bucket(user: &str) -> u16 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"hubgate session bucket\0")
        .chain_update(user.as_bytes())
        .finalize();
    u16::from_be_bytes([digest[0], digest[1]]) % BUCKETS
}

impl SessionId {
    /// A random id in a random bucket (the memory store's and tests' case).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SessionId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A fresh id whose first 10 bits name `user`'s bucket, so the store finds the session's
    /// slot from the cookie alone; 246 random bits remain.
    pub fn generate_for(user: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let bucket = user_bucket(user);
        bytes[0] = (bucket >> 2) as u8;
        bytes[1] = (bytes[1] & 0x3f) | (((bucket & 3) as u8) << 6);
        SessionId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The bucket named by the id's first 10 bits (its first character and a half).
    pub fn bucket(&self) -> u16 {
        fn sextet(c: u8) -> u16 {
            match c {
                b'A'..=b'Z' => (c - b'A') as u16,
                b'a'..=b'z' => (c - b'a') as u16 + 26,
                b'0'..=b'9' => (c - b'0') as u16 + 52,
                b'-' => 62,
                _ => 63,
            }
        }
        // Never a panic, even for an id that did not come through `parse` (deserialised).
        let char_at = |i: usize| self.0.as_bytes().get(i).copied().unwrap_or(b'A');
        (sextet(char_at(0)) << 4) | (sextet(char_at(1)) >> 2)
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
    /// Set when the person signed in at an OpenID provider rather than with a password.
    /// Boxed: most sessions have none, and a session is copied into every lookup.
    pub provider: Option<Box<ProviderLink>>,
    /// The browser and address the sign-in came from (the session page's "other devices").
    /// Boxed, like `provider`: a session is copied into every lookup.
    #[serde(default)]
    pub from: Box<SignedInFrom>,
}

/// Where a session was begun: what a person recognises their devices by.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInFrom {
    /// "Firefox 128 on Linux", from the user agent ([`device::describe`]).
    pub device: String,
    pub ip: String,
}

/// How an OpenID provider knows the person behind a session: what its back-channel logout names,
/// and what sign-out hands back to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderLink {
    /// The provider's id in `[[hub.providers]]`.
    pub provider: String,
    /// The ID token's `sub`.
    pub subject: String,
    /// The ID token's `sid`: the provider's own session, when it sends one.
    pub provider_session: Option<String>,
    /// The ID token itself: `id_token_hint` when sign-out also ends the provider's session.
    pub id_token: Option<String>,
    /// With `recheck_interval`: the refresh token that asks the provider again.
    pub refresh_token: Option<String>,
    /// When the provider last said it still accepts the person (sign-in, or the last recheck).
    pub checked_at: Timestamp,
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
    /// The person signed out at their OpenID provider, which told us (back-channel logout).
    ProviderLogout,
    /// Asked again (`recheck_interval`), the provider no longer accepts the person.
    ProviderRevoked,
    /// The user left the users file and the gateway reloaded it.
    UserRemoved,
    /// Signed out from another of the person's devices ("Sign out that device").
    LogoutDevice,
}

impl EndReason {
    pub const ALL: [EndReason; 10] = [
        EndReason::Logout,
        EndReason::LogoutAll,
        EndReason::IdleTimeout,
        EndReason::Expired,
        EndReason::Revoked,
        EndReason::KeyRemoved,
        EndReason::ProviderLogout,
        EndReason::ProviderRevoked,
        EndReason::UserRemoved,
        EndReason::LogoutDevice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::LogoutAll => "logout_all",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::Expired => "expired",
            EndReason::Revoked => "revoked",
            EndReason::KeyRemoved => "key_removed",
            EndReason::ProviderLogout => "provider_logout",
            EndReason::ProviderRevoked => "provider_revoked",
            EndReason::UserRemoved => "user_removed",
            EndReason::LogoutDevice => "logout_device",
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
            EndReason::ProviderLogout => "provider_logout",
            EndReason::ProviderRevoked => "provider_revoked",
            EndReason::UserRemoved => "user_removed",
            EndReason::LogoutDevice => "logout_device",
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
    /// Every live session of `user` (a provider's logout picks among them).
    async fn user_sessions(&self, user: &str) -> Result<Vec<Session>, StoreError>;
    /// Keeps a small value under `name` for `ttl`, visible to every instance sharing the store
    /// (which user a provider's subject or session belongs to).
    async fn put_note(&self, name: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;
    async fn note(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Records `name` for `ttl`: `true` the first time, `false` while it is still recorded (a
    /// replayed logout token's `jti`), across every instance.
    async fn first_use(&self, name: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Records that the provider accepted the session's person again at `at`, with the refresh
    /// token it handed out (providers may rotate them).
    async fn record_provider_check(
        &self,
        id: &SessionId,
        at: Timestamp,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Asks an OpenID provider whether it still accepts a session's person (`recheck_interval`).
#[async_trait]
pub trait ProviderCheck: Send + Sync {
    /// `Some(false)`: the provider refused, the session must end. `None`: not due, not this
    /// instance's turn, or the provider could not be asked (the session goes on).
    async fn still_accepted(&self, session: &Session, now: Timestamp) -> Option<bool>;
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
    fn an_id_names_its_users_bucket() {
        for user in ["alice", "bob", "", "a-very-long-user-name@example.com"] {
            let id = SessionId::generate_for(user);
            assert_eq!(id.bucket(), user_bucket(user), "{user}");
            assert_eq!(SessionId::parse(id.as_str()), Some(id));
        }
        let buckets: std::collections::BTreeSet<u16> = (0..2000)
            .map(|i| user_bucket(&format!("user{i}")))
            .collect();
        assert!(
            buckets.len() > 800,
            "users spread over buckets: {}",
            buckets.len()
        );
        assert!(buckets.iter().all(|b| *b < BUCKETS));
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
            provider: None,
            from: Default::default(),
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
