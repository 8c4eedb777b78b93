//! API tokens for scripts and CI jobs: `Authorization: Bearer hg_…` on an app request, accepted in
//! place of cookies for the apps the token names, and only while its owner may use them.
//!
//! A token is 256 random bits. The gateway keeps only its SHA-256 digest (in the session store:
//! memory or Redis, [`TokenStore`]), so a copy of the store opens nothing. The secret is shown
//! once, when the token is made. Every use reads the store, so a revocation holds on every
//! instance from the next request: no cache has to hear of it. Tokens are not sessions: they
//! never get cookies, never renew, and never show as devices.
//!
//! The secret's first 10 bits name the owner's session bucket (as a session id's do), so on Redis
//! the token's record lies in the same slot as the owner's sessions and is found from the secret
//! alone.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use memory::MemoryTokens;

use crate::auth::Identity;
use crate::config::{ApiTokenConfig, Config, Users};
use crate::metrics::Metrics;
use crate::session::{SessionId, StoreError};
use crate::time::Timestamp;

/// What every hubgate token begins with: tells it apart from any other bearer token, and lets
/// secret scanners find one pasted where it should not be.
pub const PREFIX: &str = "hg_";
/// Longest token name.
pub const MAX_NAME: usize = 64;
/// How long a revoked token's digest is remembered, so its next use is told "revoked".
pub const REVOKED_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long an expired token is still told "expired" rather than "unknown".
pub const EXPIRED_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

/// A token as stored and listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public name of the token: the first 16 hex digits of its digest. What lists and
    /// revocations use; useless for authenticating.
    pub id: String,
    pub user: String,
    pub name: String,
    pub apps: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The owner's groups and email when the token was made. A users-file owner is judged by the
    /// file as it is now instead; an OpenID owner has only these.
    pub groups: Vec<String>,
    pub email: String,
    /// Made by someone who signed in through an OpenID provider (not in the users file).
    pub from_provider: bool,
}

/// What the store knows of a digest.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Live(ApiToken),
    Revoked,
    Unknown,
}

/// Where token records live: beside the sessions, in the same store.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Keeps `token` under `digest` until its expiry (and [`EXPIRED_KEPT_FOR`] after), in its
    /// owner's bucket (which its secret names).
    async fn put(&self, digest: &str, token: &ApiToken) -> Result<(), StoreError>;
    async fn find(&self, digest: &str, bucket: u16) -> Result<Stored, StoreError>;
    /// The user's tokens, expired ones included until the store lets them go.
    async fn list(&self, user: &str) -> Result<Vec<ApiToken>, StoreError>;
    /// Revokes one of `user`'s tokens; `false` if the user has none by that id.
    async fn revoke(&self, user: &str, id: &str) -> Result<bool, StoreError>;
    /// Revokes every token of `user`, returning how many.
    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError>;
}

/// A newly made token: its record, and the secret to show once.
pub struct Issued {
    pub token: ApiToken,
    pub secret: String,
}

/// What someone asked for when making a token.
pub struct Request {
    pub name: String,
    pub apps: Vec<String>,
    /// `None`: `api_tokens.default_lifetime`.
    pub lifetime: Option<Duration>,
}

/// Why a token request was refused: the `reason` of the JSON answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a token this gateway made, or one whose record is gone.
    Unknown,
    Expired,
    Revoked,
    /// A token of another app.
    NotForApp,
    /// The owner is no longer in the users file.
    UserRemoved,
    StoreUnavailable,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::Unknown,
        Refusal::Expired,
        Refusal::Revoked,
        Refusal::NotForApp,
        Refusal::UserRemoved,
        Refusal::StoreUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unknown => "token_unknown",
            Refusal::Expired => "token_expired",
            Refusal::Revoked => "token_revoked",
            Refusal::NotForApp => "token_not_for_app",
            Refusal::UserRemoved => "user_removed",
            Refusal::StoreUnavailable => "store_unavailable",
        }
    }
}

/// Why a token could not be made: the field at fault and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub hint: String,
}

fn invalid(field: &'static str, hint: impl Into<String>) -> Invalid {
    Invalid {
        field,
        hint: hint.into(),
    }
}

#[derive(Debug)]
pub enum CreateError {
    Invalid(Invalid),
    Store(StoreError),
}

/// Who may ask for a token: the signed-in person.
pub struct Owner<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub email: &'a str,
    pub from_provider: bool,
}

/// The token service of one config version: its policy, the users file, and the store.
pub struct ApiTokens {
    store: Arc<dyn TokenStore>,
    policy: ApiTokenConfig,
    /// The users file as last (re)loaded; `None` without one (providers only).
    users: Option<Users>,
    /// App names, for checking what a token may name.
    apps: Vec<String>,
    metrics: Arc<Metrics>,
}

impl ApiTokens {
    pub fn new(store: Arc<dyn TokenStore>, config: &Config, metrics: Arc<Metrics>) -> Self {
        ApiTokens {
            store,
            policy: config.api_tokens.clone(),
            users: config
                .hub
                .users_file
                .is_some()
                .then(|| config.users.clone()),
            apps: config.apps.iter().map(|a| a.name.clone()).collect(),
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.policy.enabled
    }

    pub fn policy(&self) -> &ApiTokenConfig {
        &self.policy
    }

    /// Makes a token for `owner`. `may_use(app)` says whether the owner may use an app now: a
    /// token can name only those.
    pub async fn create(
        &self,
        owner: &Owner<'_>,
        request: &Request,
        may_use: impl Fn(&str) -> bool,
        now: Timestamp,
    ) -> Result<Issued, CreateError> {
        let check = self
            .check_request(request, &may_use)
            .map_err(CreateError::Invalid)?;
        let existing = self
            .store
            .list(owner.user)
            .await
            .map_err(CreateError::Store)?;
        let live = existing.iter().filter(|t| t.expires_at > now).count();
        if live >= self.policy.max_per_user {
            return Err(CreateError::Invalid(invalid(
                "name",
                format!(
                    "you have {live} tokens, the most api_tokens.max_per_user allows: revoke one first"
                ),
            )));
        }
        let secret = format!("{PREFIX}{}", SessionId::generate_for(owner.user).as_str());
        let digest = digest(&secret);
        let token = ApiToken {
            id: digest[..16].to_string(),
            user: owner.user.to_string(),
            name: request.name.trim().to_string(),
            apps: check.apps,
            created_at: now,
            expires_at: now.plus(check.lifetime),
            groups: owner.groups.to_vec(),
            email: owner.email.to_string(),
            from_provider: owner.from_provider,
        };
        self.store
            .put(&digest, &token)
            .await
            .map_err(CreateError::Store)?;
        tracing::info!(event = "api_token_created", user = %token.user, token = %token.id, name = %token.name, apps = ?token.apps, expires_at = token.expires_at.as_secs(), "API token created");
        Ok(Issued { token, secret })
    }

    fn check_request(
        &self,
        request: &Request,
        may_use: &impl Fn(&str) -> bool,
    ) -> Result<Checked, Invalid> {
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(invalid(
                "name",
                format!("give the token a name of 1 to {MAX_NAME} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(invalid("name", "a name cannot contain control characters"));
        }
        if request.apps.is_empty() {
            return Err(invalid("apps", "name at least one app the token is for"));
        }
        let mut apps = Vec::new();
        for app in &request.apps {
            if !self.apps.contains(app) {
                return Err(invalid("apps", format!("there is no app {app:?}")));
            }
            if !may_use(app) {
                return Err(invalid("apps", format!("you may not use {app:?}")));
            }
            if !apps.contains(app) {
                apps.push(app.clone());
            }
        }
        let lifetime = request.lifetime.unwrap_or(self.policy.default_lifetime);
        if lifetime < Duration::from_secs(1) || lifetime > self.policy.max_lifetime {
            return Err(invalid(
                "expires_in",
                format!(
                    "a lifetime from 1s to {} (api_tokens.max_lifetime)",
                    crate::time::human_duration(self.policy.max_lifetime)
                ),
            ));
        }
        Ok(Checked { apps, lifetime })
    }

    pub async fn list(&self, user: &str) -> Result<Vec<ApiToken>, StoreError> {
        let mut tokens = self.store.list(user).await?;
        tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(tokens)
    }

    pub async fn revoke(&self, user: &str, id: &str, by: &str) -> Result<bool, StoreError> {
        let revoked = self.store.revoke(user, id).await?;
        if revoked {
            tracing::info!(
                event = "api_token_revoked",
                user,
                token = id,
                by,
                "API token revoked"
            );
        }
        Ok(revoked)
    }

    pub async fn revoke_user(&self, user: &str, by: &str) -> Result<usize, StoreError> {
        let revoked = self.store.revoke_user(user).await?;
        if revoked > 0 {
            tracing::info!(
                event = "api_token_revoked",
                user,
                tokens = revoked,
                by,
                "API tokens revoked"
            );
        }
        Ok(revoked)
    }

    /// Whether `secret` may reach `app` at `now`: the owner's identity, or why not. The caller
    /// then applies the app's own user and group rules to the identity.
    pub async fn admit(&self, secret: &str, app: &str, now: Timestamp) -> Result<Grant, Refusal> {
        let result = self.judge(secret, app, now).await;
        let label = match &result {
            Ok(_) => "allowed",
            Err(refusal) => refusal.as_str(),
        };
        self.metrics
            .api_token_requests
            .with_label_values(&[label])
            .inc();
        result
    }

    async fn judge(&self, secret: &str, app: &str, now: Timestamp) -> Result<Grant, Refusal> {
        let bucket = bucket_of(secret).ok_or(Refusal::Unknown)?;
        let token = match self.store.find(&digest(secret), bucket).await {
            Ok(Stored::Live(token)) => token,
            Ok(Stored::Revoked) => return Err(Refusal::Revoked),
            Ok(Stored::Unknown) => return Err(Refusal::Unknown),
            Err(_) => return Err(Refusal::StoreUnavailable),
        };
        if now >= token.expires_at {
            return Err(Refusal::Expired);
        }
        if !token.apps.iter().any(|a| a == app) {
            return Err(Refusal::NotForApp);
        }
        let identity = match (&self.users, token.from_provider) {
            (Some(users), false) => {
                let user = users.get(&token.user).ok_or(Refusal::UserRemoved)?;
                Identity::shared(&token.user, &user.groups, &user.email)
            }
            _ => Identity::shared(&token.user, &token.groups, &token.email),
        };
        Ok(Grant {
            identity,
            token_id: token.id,
        })
    }
}

struct Checked {
    apps: Vec<String>,
    lifetime: Duration,
}

/// An admitted token request.
#[derive(Debug)]
pub struct Grant {
    pub identity: Arc<Identity>,
    pub token_id: String,
}

/// The hubgate token an `Authorization` header carries, if it carries one (`Bearer hg_…`, the
/// scheme in any case). Any other value is not ours and authenticates nothing here.
pub fn bearer(authorization: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(authorization).ok()?;
    let (scheme, token) = text.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && token.starts_with(PREFIX)).then_some(token)
}

/// The owner's bucket a well-formed secret names; `None` for anything [`ApiTokens::create`]
/// cannot have made.
fn bucket_of(secret: &str) -> Option<u16> {
    let id = SessionId::parse(secret.strip_prefix(PREFIX)?)?;
    Some(id.bucket())
}

/// What the store keys a token by: SHA-256 of the whole secret, in hex.
fn digest(secret: &str) -> String {
    let digest = sha2::Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_hg_values_are_tokens() {
        assert_eq!(bearer(b"Bearer hg_abc"), Some("hg_abc"));
        assert_eq!(bearer(b"bearer  hg_abc "), Some("hg_abc"));
        for other in [
            &b"Bearer abc"[..],
            b"Basic aGc6eA==",
            b"hg_abc",
            b"Bearer",
            b"\xff\xfe",
        ] {
            assert_eq!(bearer(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_secret_names_its_owners_bucket_and_nothing_else_parses() {
        let secret = format!("{PREFIX}{}", SessionId::generate_for("alice").as_str());
        assert_eq!(
            bucket_of(&secret),
            Some(crate::session::user_bucket("alice"))
        );
        for hostile in [
            "hg_",
            "hg_short",
            "xx_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "",
        ] {
            assert_eq!(bucket_of(hostile), None, "{hostile}");
        }
        assert_eq!(digest(&secret).len(), 64);
        assert_ne!(digest(&secret), digest(&format!("{secret}x")));
    }
}
