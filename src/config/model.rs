//! The validated configuration model the rest of the program uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Cidr, Users};

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub hub: HubConfig,
    pub session: SessionConfig,
    pub tokens: TokenConfig,
    pub api_tokens: ApiTokenConfig,
    pub cookies: CookieConfig,
    pub apps: Vec<AppConfig>,
    pub users: Users,
    /// Things that work but deserve the operator's attention (printed by `hubgate check` and at start).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub public_url: PublicUrl,
    pub threads: usize,
    pub shutdown_grace: Duration,
    /// Reload when the config or users file changes, as on SIGHUP.
    pub watch_config: bool,
    pub tls: Option<TlsConfig>,
    /// Peers whose `X-Forwarded-For` is believed (load balancers); empty: nobody's.
    pub trusted_proxies: Vec<Cidr>,
    /// A request header must be complete within this long of its first byte (slowloris).
    pub header_read_timeout: Duration,
    /// Longest wait for any read of a request body, and the start of its pace (`proxy::body_pace`).
    pub body_read_timeout: Duration,
    /// Plain keep-alive GET/HEAD requests go through [`crate::proxy::fast_path`] (default); off,
    /// every request takes pingora-proxy's general path.
    pub fast_path: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    pub https: bool,
    /// `scheme://host[:port]`, no trailing slash: compared with a browser's `Origin` header.
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Path prefix of the hub routes, without a trailing slash (`/hub`).
    pub prefix: String,
    /// `None` when `users_file = ""`: the password form is off, only providers sign people in.
    pub users_file: Option<PathBuf>,
    pub admin_token_env: String,
    /// The admin API's bearer token, read from `admin_token_env`; `None` turns the admin API off.
    pub admin_token: Option<String>,
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
    pub login_lockout: Duration,
    /// OpenID Connect providers, each a "Sign in with …" button on the sign-in page.
    pub providers: Vec<ProviderConfig>,
    /// With exactly one provider and no users file, `/hub/login` goes straight to the provider.
    pub auto_redirect: bool,
}

/// One `[[hub.providers]]`: an OpenID Connect provider people sign in with.
#[derive(Clone)]
pub struct ProviderConfig {
    /// `[a-z0-9-]+`, unique: in URLs (`/hub/oidc/<id>/…`) and metric labels.
    pub id: String,
    /// What the button says: "Sign in with <name>".
    pub name: String,
    /// Without a trailing slash; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client, which proves itself with PKCE alone.
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub user_claim: String,
    pub email_claim: String,
    pub groups_claim: String,
    /// Lowercase, without `@`; empty = any.
    pub allowed_email_domains: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub backchannel_logout: bool,
    pub end_provider_session: bool,
    /// Ask the provider again (refresh token) at most this often per session; a refusal ends
    /// the session with reason `provider_revoked`. `None`: never.
    pub recheck_interval: Option<Duration>,
}

impl std::fmt::Debug for ProviderConfig {
    // The client secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
}

/// How hubgate reaches Redis: one server, a Redis Cluster, or a primary that Sentinel names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    Standalone,
    Cluster,
    Sentinel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    Deny,
    AllowCached,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub store: StoreKind,
    pub redis_mode: RedisMode,
    pub redis_url: String,
    /// Cluster seed nodes, or the Sentinels' addresses.
    pub redis_urls: Vec<String>,
    pub sentinel_master: String,
    pub key_prefix: String,
    pub lifetime: Duration,
    pub remember_me_lifetime: Duration,
    /// `None` when `idle_timeout = "0s"`: sessions then end only at their absolute lifetime.
    pub idle_timeout: Option<Duration>,
    pub cache_ttl: Duration,
    pub cache_capacity: u64,
    pub activity_exempt_paths: Vec<String>,
    pub on_store_error: OnStoreError,
    /// How long before an idle or absolute end `session.js` shows its warning (0: never).
    pub warn_before: Duration,
    /// How often `session.js` reads the session (at most 30 s; shorter for tests).
    pub poll_interval: Duration,
}

impl SessionConfig {
    /// How often one instance writes a busy session's last-seen time to the store: a tenth of the
    /// idle timeout, at most a minute, so idle detection stays accurate to ~10% without a store
    /// write per request.
    pub fn activity_write_interval(&self) -> Duration {
        match self.idle_timeout {
            Some(idle) => (idle / 10).min(Duration::from_secs(60)),
            None => Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
pub struct SigningKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    // Secrets never reach a log line, not even through a debug print of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey {{ id: {:?}, secret: <{} bytes> }}",
            self.id,
            self.secret.len()
        )
    }
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub ttl: Duration,
    pub renew_threshold: f64,
    pub renew_min_interval: Duration,
    pub expose_new_token_header: bool,
    /// The first key signs; every one of these verifies (retired keys are not among them).
    pub keys: Vec<SigningKey>,
    /// Keys marked `retired = true`: they only recognise their own tokens, whose sessions end.
    pub retired_keys: Vec<SigningKey>,
    /// True when no key was configured and a random one was made at start.
    pub keys_generated: bool,
}

/// `[api_tokens]`: bearer tokens people make for their scripts (`crate::api_tokens`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenConfig {
    /// People may make tokens, and apps accept them.
    pub enabled: bool,
    /// A token's lifetime when its maker names none.
    pub default_lifetime: Duration,
    /// The longest lifetime a token may have.
    pub max_lifetime: Duration,
    /// Unexpired tokens one person may have at once.
    pub max_per_user: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

#[derive(Debug, Clone)]
pub struct CookieConfig {
    pub prefix: String,
    pub secure: bool,
    pub same_site: SameSite,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    pub user: Option<String>,
    pub groups: Option<String>,
    pub email: Option<String>,
}

impl IdentityHeaders {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [&self.user, &self.groups, &self.email]
            .into_iter()
            .filter_map(|h| h.as_deref())
    }
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub name: String,
    /// The host this app lives on (`grafana.example.com`, lowercase, perhaps with `:port`);
    /// `None`: the hub's host, under `prefix`.
    pub host: Option<String>,
    /// Path prefix without a trailing slash (`/apps/grafana`); `""` for an app that owns its
    /// whole host, so `format!("{prefix}/")` is the cookie path either way.
    pub prefix: String,
    pub upstreams: Vec<String>,
    pub strip_prefix: bool,
    pub allowed_users: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub public_paths: Vec<String>,
    pub activity_exempt_paths: Vec<String>,
    pub websocket: bool,
    pub identity_headers: IdentityHeaders,
    /// Forward the client's `Authorization` header to this app (its own API keys, Basic auth).
    /// Off by default: the gateway authenticates by its cookies, so a client's `Authorization`
    /// proves nothing and is removed rather than handed to an app that might believe it.
    pub pass_authorization: bool,
}

impl AppConfig {
    /// Whether a request path belongs to this app: the prefix itself or anything below it.
    pub fn owns_path(&self, path: &str) -> bool {
        path_is_under(path, &self.prefix)
    }

    pub fn is_public(&self, path: &str) -> bool {
        self.public_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }

    pub fn allows<'a>(&self, user: &str, mut groups: impl Iterator<Item = &'a str>) -> bool {
        if self.allowed_users.is_empty() && self.allowed_groups.is_empty() {
            return true;
        }
        self.allowed_users.iter().any(|u| u == user)
            || groups.any(|g| self.allowed_groups.iter().any(|a| a == g))
    }
}

/// `path` equals `prefix` or lies below it (`/apps/a/x` is under `/apps/a`, `/apps/ab` is not).
pub fn path_is_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl Config {
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name == name)
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.hub.providers.iter().find(|p| p.id == id)
    }
}
