//! The hub: the pages and endpoints under `hub.prefix` — sign-in, authorize, sign-out, the session
//! page, health and readiness, and the admin API. Each handler takes a [`HubRequest`] and returns a
//! [`Reply`]; the proxy does the I/O.

mod access;
mod api_tokens;
mod host_sign_in;
mod lockout;
mod lockout_redis;
mod login;
pub mod logout_events;
mod oidc;
pub mod pages;
mod reply;
mod session_script;
mod sign_outs;
mod status;

use std::sync::Arc;

use bytes::Bytes;
use http::Method;

pub use reply::Reply;
pub use session_script::SCRIPT_HEADER;

use crate::auth::cookies::{self, CookiePolicy};
use crate::auth::hub_login;
use crate::auth::tokens::KeyRing;
use crate::auth::verify::TokenPolicy;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::oidc::Providers;
use crate::session::{EndReason, Noticed, Session, SessionId, Sessions, StoreError};
use crate::time::Timestamp;
use lockout::Lockout;
use login::NewSignIn;
use pages::{Banner, Layout};

/// The parts of a request the hub looks at. Built by the proxy; the body is read only for POST.
#[derive(Debug)]
pub struct HubRequest<'a> {
    pub method: &'a Method,
    /// The path below the hub prefix, e.g. `/login`; `/logout` also for the root alias.
    pub endpoint: &'a str,
    pub query: &'a str,
    pub cookie_headers: Vec<&'a [u8]>,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    /// `X-Hubgate-Script`: sent only by `session.js`. A cross-site page cannot send a custom
    /// header without a CORS preflight, which the gateway never grants.
    pub script_header: Option<&'a str>,
    pub client_ip: String,
    pub body: Bytes,
}

impl HubRequest<'_> {
    fn cookie(&self, name: &str) -> Option<&str> {
        cookies::find(self.cookie_headers.iter().copied(), name)
    }

    fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A field of a form-encoded body.
    fn form_field(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

pub struct Hub {
    config: Arc<Config>,
    keys: Arc<KeyRing>,
    sessions: Arc<Sessions>,
    api_tokens: Arc<crate::api_tokens::ApiTokens>,
    cookies: CookiePolicy,
    metrics: Arc<Metrics>,
    lockout: Lockout,
    policy: TokenPolicy,
    /// [`CSP`], with the app hosts a sign-in may end on added to `form-action`.
    csp: String,
    providers: Arc<Providers>,
    event_rate: logout_events::EventRate,
}

/// Content-Security-Policy of every hub page: our own stylesheet, our own form targets, no
/// scripts, no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

impl Hub {
    pub fn new(
        config: Arc<Config>,
        keys: Arc<KeyRing>,
        sessions: Arc<Sessions>,
        api_tokens: Arc<crate::api_tokens::ApiTokens>,
        metrics: Arc<Metrics>,
        providers: Arc<Providers>,
    ) -> Self {
        let hub = &config.hub;
        Hub {
            providers,
            cookies: CookiePolicy::new(&config.cookies),
            lockout: Lockout::new(hub, &config.session),
            policy: TokenPolicy::new(&config.tokens),
            csp: host_sign_in::content_security_policy(CSP, &config),
            event_rate: logout_events::EventRate::default(),
            config,
            keys,
            sessions,
            api_tokens,
            metrics,
        }
    }

    pub async fn serve(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let reply = self.route(req, now).await;
        with_security_headers(reply, &self.csp)
    }

    async fn route(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let get = req.method == Method::GET || req.method == Method::HEAD;
        let post = req.method == Method::POST;
        let delete = req.method == Method::DELETE;
        match req.endpoint {
            "" | "/" if get => self.home(req, now).await,
            "/login" if get => self.login_form(req, now).await,
            "/login" if post => self.login_submit(req, now).await,
            "/authorize" if get => self.authorize(req, now).await,
            "/logout" if get || post => self.logout(req, now).await,
            "/session" if get => self.session_page(req, now).await,
            "/api/session" if get => self.session_api(req, now).await,
            "/api/session/touch" if post => self.session_touch(req, now).await,
            "/api/logout-event" if post => self.logout_event(req, None, now).await,
            "/static/session.js" if get => self.session_script(req),
            "/session/logout-device" if post => self.logout_device(req, now).await,
            "/api/admin/sessions" if get => self.admin_sessions(req).await,
            "/api/admin/ends" if get => self.admin_ends(req, now).await,
            "/api/tokens" if get => self.api_tokens_list(req, now).await,
            "/api/tokens" if post => self.api_tokens_create(req, now).await,
            "/session/tokens" if post => self.session_token_create(req, now).await,
            "/session/tokens/revoke" if post => self.session_token_revoke(req, now).await,
            "/api/admin/tokens" if get => self.admin_tokens(req, now).await,
            "/api/admin/tokens" if delete => self.admin_tokens_revoke(req).await,
            token if delete && token.starts_with("/api/tokens/") => {
                self.api_token_delete(req, &token["/api/tokens/".len()..], now)
                    .await
            }
            "/health" if get => Reply::json(200, &serde_json::json!({"status": "ok"})),
            "/ready" if get => self.ready().await,
            "/api/admin/revoke" if post => self.admin_revoke(req, now).await,
            "/static/hubgate.css" if get => Reply {
                status: 200,
                headers: vec![("Content-Type", "text/css; charset=utf-8".into())],
                body: Bytes::from_static(pages::STYLESHEET.as_bytes()),
            }
            .with_header("Cache-Control", "public, max-age=3600"),
            "/login"
            | "/authorize"
            | "/logout"
            | "/session"
            | "/api/session"
            | "/health"
            | "/ready"
            | "/api/admin/revoke"
            | "/api/session/touch"
            | "/api/logout-event"
            | "/static/session.js"
            | "/session/logout-device"
            | "/api/admin/sessions"
            | "/api/admin/ends"
            | "/api/tokens"
            | "/session/tokens"
            | "/session/tokens/revoke"
            | "/api/admin/tokens" => {
                Reply::json(405, &serde_json::json!({"error": "method_not_allowed"}))
            }
            oidc if oidc.starts_with("/oidc/") => self.serve_oidc(req, now).await,
            _ => self.not_found(),
        }
    }

    fn not_found(&self) -> Reply {
        self.page(
            404,
            "Not found",
            &pages::message(
                "Page not found",
                "There is nothing at this address.",
                Some((&self.url("/"), "Go to the hub")),
            ),
            false,
        )
    }

    /// A hub URL: the prefix plus an endpoint (`/login`).
    fn url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.config.hub.prefix)
    }

    /// The path every hub-scoped cookie uses.
    fn hub_cookie_path(&self) -> String {
        self.url("/")
    }

    fn page(&self, status: u16, title: &str, body: &str, wide: bool) -> Reply {
        let css = self.url("/static/hubgate.css");
        let layout = Layout {
            title,
            stylesheet_href: &css,
            wide,
        };
        Reply::html(status, pages::layout(&layout, body))
    }

    /// The session id sealed in the hub-login cookie, if a configured key opens it.
    fn hub_login_id(&self, req: &HubRequest<'_>) -> Option<SessionId> {
        let name = &self.cookies.names.hub_login;
        req.cookie(name)
            .and_then(|v| hub_login::open(&self.keys, name, v))
    }

    /// The session the hub-login cookie names, if it is alive; otherwise why not (`None`: no
    /// cookie, or a cookie no configured key opens).
    async fn signed_in(
        &self,
        req: &HubRequest<'_>,
        now: Timestamp,
    ) -> Result<Result<Session, Option<EndReason>>, StoreError> {
        let Some(id) = self.hub_login_id(req) else {
            return Ok(Err(None));
        };
        self.sessions
            .live(
                &id,
                now,
                Noticed {
                    app: None,
                    path: Some(req.endpoint),
                },
            )
            .await
    }

    fn session_id_cookie(&self, req: &HubRequest<'_>) -> Option<SessionId> {
        req.cookie(&self.cookies.names.session_id)
            .and_then(SessionId::parse)
    }

    fn store_unavailable(&self) -> Reply {
        self.page(
            503,
            "Temporarily unavailable",
            &pages::message(
                "Sign-in is temporarily unavailable",
                "The gateway cannot reach its session store right now. Please try again in a minute.",
                None,
            ),
            false,
        )
        .with_header("Retry-After", "30")
    }

    async fn home(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        match self.signed_in(req, now).await {
            Ok(Ok(_)) => self.session_page(req, now).await,
            Ok(Err(reason)) => self.login_redirect("/", reason),
            Err(_) => self.store_unavailable(),
        }
    }

    /// To the sign-in page, carrying where to go afterwards and, if known, why the last session ended.
    fn login_redirect(&self, next: &str, ended: Option<EndReason>) -> Reply {
        let mut location = format!("{}?next={}", self.url("/login"), encode_component(next));
        if let Some(reason) = ended {
            location.push_str("&reason=");
            location.push_str(reason.banner_key());
        }
        Reply::redirect(302, &location)
    }

    /// The banner the sign-in page shows for `?reason=`.
    fn reason_banner(&self, reason: &str) -> Option<Banner> {
        let session = &self.config.session;
        Some(match reason {
            "logged_out" => Banner::info("You have signed out of every app."),
            "idle_timeout" => Banner::warn(match session.idle_timeout {
                Some(idle) => format!("You were signed out after {} without activity.", pages::duration_words(idle)),
                None => "You were signed out after a period without activity.".to_string(),
            }),
            "session_expired" => Banner::warn("Your session reached its time limit. Please sign in again."),
            "revoked" => Banner::warn("An administrator ended your session. Please sign in again."),
            "key_removed" => Banner::warn("Your session was signed with a key that has since been retired. Please sign in again."),
            "provider_logout" => self.provider_banner(EndReason::ProviderLogout),
            "provider_revoked" => self.provider_banner(EndReason::ProviderRevoked),
            "user_removed" => Banner::warn("Your account was removed from this gateway."),
            "logout_device" => Banner::warn("You signed this device out from another of your devices."),
            _ => return None,
        })
    }
}

/// Headers every hub answer carries: no caching of anything that may hold session state, no
/// framing, no scripts. `Referrer-Policy: same-origin`, not `no-referrer`: with the latter
/// Chromium sends `Origin: null` on the sign-in form's POST and the same-origin check would
/// refuse every real browser.
fn with_security_headers(reply: Reply, csp: &str) -> Reply {
    let cacheable = reply.header("Cache-Control").is_some();
    let reply = reply
        .with_header("Content-Security-Policy", csp.to_string())
        .with_header("X-Frame-Options", "DENY")
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "same-origin");
    if cacheable {
        reply
    } else {
        reply.with_header("Cache-Control", "no-store")
    }
}

/// `url` with `params` (already encoded) added to its query.
fn with_query(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

/// Percent-encodes a value for a query string.
pub fn encode_component(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
