//! The Pingora `ProxyHttp` implementation. Each callback gathers inputs from the request, calls a
//! named function that decides, and applies the result — the request reads top to bottom like
//! DESIGN.md's flow: route → hub or verify → upstream headers → response cookies.

pub mod answer;
pub mod client_addr;
pub mod in_flight;
pub mod routes;
mod tunnel;
mod upstream;

pub use upstream::AppHeaders;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::auth::cookies::{self, CookiePolicy};
use crate::auth::verify::{AppRequest, RenewedToken, Verdict, Verifier};
use crate::auth::Identity;
use crate::config::Config;
use crate::hub::{Hub, HubRequest};
use crate::metrics::Metrics;
use crate::session::SessionId;
use crate::time::Timestamp;
use routes::{AppRoute, Route, Router};

/// Hub request bodies (sign-in form, admin API) are small; anything larger is refused.
const MAX_HUB_BODY: usize = 64 * 1024;

/// How often an open WebSocket asks the store whether its session still lives (revocations this
/// instance hears of are acted on at once, without waiting for this).
const WEBSOCKET_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Gateway {
    pub in_flight: in_flight::InFlight,
    pub router: Router,
    pub hub: Hub,
    pub verifier: Verifier,
    pub cookies: CookiePolicy,
    pub metrics: Arc<Metrics>,
    pub hub_prefix: String,
    pub https: bool,
    pub expose_new_token_header: bool,
    pub trusted_proxies: client_addr::TrustedProxies,
}

/// Per-request state carried between callbacks.
pub struct RequestCtx {
    started: Instant,
    now: Timestamp,
    app: Option<Arc<AppRoute>>,
    identity: Option<Arc<Identity>>,
    renewed: Option<RenewedToken>,
    outcome: &'static str,
    connect_attempts: usize,
    _in_flight: in_flight::InFlightGuard,
    /// For an admitted WebSocket: its session, watched for as long as the socket is open.
    websocket: Option<WebSocketWatch>,
}

struct WebSocketWatch {
    session_id: SessionId,
    last_checked: Instant,
}

impl Gateway {
    pub fn new(
        config: &Config,
        router: Router,
        hub: Hub,
        verifier: Verifier,
        metrics: Arc<Metrics>,
    ) -> Self {
        Gateway {
            in_flight: in_flight::InFlight::default(),
            router,
            hub,
            verifier,
            cookies: CookiePolicy::new(&config.cookies),
            metrics,
            hub_prefix: config.hub.prefix.clone(),
            https: config.server.public_url.https,
            expose_new_token_header: config.tokens.expose_new_token_header,
            trusted_proxies: client_addr::TrustedProxies::new(&config.server.trusted_proxies),
        }
    }

    /// The client behind this request (see [`client_addr`]); `None` on a Unix socket.
    fn client(&self, session: &Session) -> Option<client_addr::ClientAddr> {
        let peer = session.client_addr()?.as_inet()?.ip();
        let forwarded = session
            .req_header()
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Some(self.trusted_proxies.client(peer, forwarded))
    }

    async fn serve_hub(
        &self,
        session: &mut Session,
        endpoint: &str,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let body = match read_body(session, MAX_HUB_BODY).await? {
            Some(body) => body,
            None => {
                return answer::error(
                    session,
                    &self.hub_prefix,
                    413,
                    "body_too_large",
                    "Request too large",
                    "The request body is larger than the gateway accepts.",
                )
                .await
            }
        };
        let req = session.req_header();
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        let hub_request = HubRequest {
            method: &req.method,
            endpoint,
            query: req.uri.query().unwrap_or(""),
            cookie_headers: req
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
            host: header("host"),
            origin: header("origin"),
            sec_fetch_site: header("sec-fetch-site"),
            authorization: header("authorization"),
            client_ip: self
                .client(session)
                .map(|c| c.ip.to_string())
                .unwrap_or_default(),
            body,
        };
        let reply = self.hub.serve(&hub_request, ctx.now).await;
        answer::write(session, reply).await
    }

    /// Authenticates an app request; `Ok(true)` when an answer was already written.
    async fn gate_app(
        &self,
        session: &mut Session,
        app: Arc<AppRoute>,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        ctx.app = Some(app.clone());
        if app.config.is_public(session.req_header().uri.path()) {
            ctx.outcome = "public";
            return Ok(false);
        }
        if session.is_upgrade_req() && !app.config.websocket {
            ctx.outcome = "forbidden";
            answer::error(
                session,
                &self.hub_prefix,
                403,
                "websocket_disabled",
                "WebSocket not allowed",
                "This app does not accept WebSocket connections.",
            )
            .await?;
            return Ok(true);
        }
        let (verdict, websocket_session) = {
            let path = session.req_header().uri.path();
            let cookie_headers = session
                .req_header()
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes());
            let [token, session_id] = cookies::lookup_each(
                cookie_headers,
                [&app.cookie_name, &self.cookies.names.session_id],
            );
            let request = AppRequest {
                app: &app.config.name,
                token,
                session_id,
                path,
                activity_exempt: app.is_activity_exempt(path),
            };
            let websocket_session = session
                .is_upgrade_req()
                .then(|| request.session_id.value().and_then(SessionId::parse))
                .flatten();
            (
                self.verifier.verify(&request, ctx.now).await,
                websocket_session,
            )
        };
        match verdict {
            Verdict::Admit(admission)
                if !app
                    .config
                    .allows(admission.identity.user(), admission.identity.groups()) =>
            {
                ctx.outcome = "forbidden";
                let text = format!(
                    "Your account ({}) may not use {}.",
                    admission.identity.user(),
                    app.config.name
                );
                answer::error(
                    session,
                    &self.hub_prefix,
                    403,
                    "forbidden",
                    "No access to this app",
                    &text,
                )
                .await?;
                Ok(true)
            }
            Verdict::Admit(admission) => {
                ctx.outcome = "allowed";
                ctx.websocket = websocket_session.map(|session_id| WebSocketWatch {
                    session_id,
                    last_checked: Instant::now(),
                });
                ctx.identity = Some(admission.identity);
                ctx.renewed = admission.renewed;
                Ok(false)
            }
            Verdict::Refuse(refusal) => {
                ctx.outcome =
                    answer::refusal(session, &self.hub_prefix, &app.config.name, refusal).await?;
                Ok(true)
            }
        }
    }

    /// What an upstream receives: the same rules for proxied requests and tunnels.
    fn prepare_upstream_request(
        &self,
        session: &Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(app) = ctx.app.as_ref() else {
            return Ok(());
        };
        upstream::remove_gateway_cookies(upstream, &self.cookies.names)?;
        upstream::set_identity_headers(upstream, app, ctx.identity.as_deref())?;
        let forwarded_for = self.client(session).map(|c| c.forwarded_for);
        upstream::set_forwarded_headers(upstream, forwarded_for, self.https)?;
        upstream::strip_prefix(upstream, app)
    }

    /// A renewed token goes out with the response, proxied or tunnelled.
    fn add_renewal(&self, response: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
        if let (Some(app), Some(renewed)) = (ctx.app.as_ref(), ctx.renewed.as_ref()) {
            response.append_header(http::header::SET_COOKIE, self.renewal_cookie(app, renewed))?;
            // A response carrying a fresh token must never sit in a shared cache for others.
            response.insert_header(http::header::CACHE_CONTROL, "no-store")?;
            if self.expose_new_token_header {
                response.insert_header("X-New-Token", renewed.token.as_str())?;
            }
        }
        Ok(())
    }

    /// Carries an admitted upgrade itself ([`tunnel`]: Pingora 0.9.1's loop can drop it right
    /// after the 101). An upstream that cannot be reached gets the same 502 page as elsewhere.
    async fn tunnel(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let Some(app) = ctx.app.clone() else {
            return Ok(());
        };
        let mut request = session.req_header().clone();
        self.prepare_upstream_request(session, &mut request, ctx)?;
        let candidates: Vec<std::net::SocketAddr> = (0..app.config.upstreams.len())
            .filter_map(|_| app.upstreams.select(b"", 256))
            .filter_map(|b| b.addr.as_inet().copied())
            .collect();
        let decorate = |response: &mut ResponseHeader| self.add_renewal(response, ctx);
        let mut watch = TunnelWatch {
            verifier: &self.verifier,
            websocket: ctx.websocket.as_ref().map(|ws| WebSocketWatch {
                session_id: ws.session_id.clone(),
                last_checked: ws.last_checked,
            }),
        };
        let result = match tunnel::connect(&candidates).await {
            Ok(conn) => tunnel::serve(session, conn, &request, &decorate, &mut watch).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(app = %app.config.name, error = %e, "upgrade: the app is not answering");
                ctx.outcome = "upstream_error";
                answer::error(
                    session,
                    &self.hub_prefix,
                    502,
                    "bad_gateway",
                    "The app is not answering",
                    "The app behind this address did not answer. Please try again shortly.",
                )
                .await
            }
        }
    }

    fn renewal_cookie(&self, app: &AppRoute, renewed: &RenewedToken) -> String {
        self.cookies.set(
            &app.cookie_name,
            &renewed.token,
            &format!("{}/", app.config.prefix),
            renewed.cookie_max_age,
        )
    }

    fn log_access(&self, session: &Session, ctx: &RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let app = ctx.app.as_ref().map(|a| a.config.name.as_str());
        if let Some(route) = &ctx.app {
            route.metrics.request(ctx.outcome, elapsed.as_secs_f64());
        }
        let req = session.req_header();
        tracing::info!(
            target: "hubgate::access",
            method = %req.method,
            path = req.uri.path(),
            app = app.unwrap_or("-"),
            outcome = ctx.outcome,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            user = ctx.identity.as_ref().map_or("-", |i| i.user()),
        );
    }
}

/// The session checks of an open WebSocket, for a tunnel (as `request_body_filter` and
/// `response_body_filter` make them for a proxied one).
struct TunnelWatch<'a> {
    verifier: &'a Verifier,
    websocket: Option<WebSocketWatch>,
}

#[async_trait]
impl tunnel::Watch for TunnelWatch<'_> {
    async fn may_carry_client_data(&mut self) -> bool {
        match self.websocket.as_mut() {
            Some(ws) => {
                self.verifier
                    .still_live(&ws.session_id, &mut ws.last_checked, WEBSOCKET_RECHECK)
                    .await
            }
            None => true,
        }
    }

    fn may_carry_upstream_data(&mut self) -> bool {
        self.websocket
            .as_ref()
            .is_none_or(|ws| !self.verifier.known_ended(&ws.session_id))
    }
}

fn session_ended_error() -> Box<Error> {
    Error::explain(
        ErrorType::Custom("session ended"),
        "the session of this connection has ended",
    )
}

/// The whole request body, or `None` if it exceeds `limit`.
async fn read_body(session: &mut Session, limit: usize) -> Result<Option<Bytes>> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            now: Timestamp::now(),
            app: None,
            identity: None,
            renewed: None,
            outcome: "none",
            connect_attempts: 0,
            websocket: None,
            _in_flight: self.in_flight.enter(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if answer::refuse_oversized_cookies(session, &self.hub_prefix).await? {
            return Ok(true);
        }
        let path = session.req_header().uri.path().to_string();
        match self.router.resolve(&path) {
            Route::Hub(endpoint) => self.serve_hub(session, endpoint, ctx).await.map(|_| true),
            Route::App(app) => {
                if self.gate_app(session, app, ctx).await? {
                    return Ok(true);
                }
                if tunnel::applies(session) {
                    self.tunnel(session, ctx).await?;
                    return Ok(true);
                }
                Ok(false)
            }
            Route::AddSlash(location) => {
                let location = match session.req_header().uri.query() {
                    Some(q) => format!("{location}?{q}"),
                    None => location,
                };
                answer::write(session, crate::hub::Reply::redirect(302, &location))
                    .await
                    .map(|_| true)
            }
            Route::BadPath => answer::error(
                session,
                &self.hub_prefix,
                400,
                "bad_path",
                "Bad request",
                "The path contains '.' or '..' segments.",
            )
            .await
            .map(|_| true),
            Route::NotFound => answer::error(
                session,
                &self.hub_prefix,
                404,
                "not_found",
                "Page not found",
                "No app lives at this address.",
            )
            .await
            .map(|_| true),
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        ctx.connect_attempts += 1;
        let app = ctx
            .app
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no app for this request"))?;
        let backend = app
            .upstreams
            .select(b"", 256)
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no healthy upstream"))?;
        let mut peer = HttpPeer::new(backend.addr, false, String::new());
        peer.options.connection_timeout = Some(std::time::Duration::from_secs(5));
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Another upstream of the pool may answer: round-robin moves on at the next attempt.
        let pool_size = ctx.app.as_ref().map_or(1, |a| a.config.upstreams.len());
        if ctx.connect_attempts < pool_size {
            e.set_retry(true);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.prepare_upstream_request(session, upstream, ctx)
    }

    /// Every message a client sends on an open WebSocket passes here: once its session has ended
    /// (signed out anywhere, on any instance) the connection is closed instead of forwarded.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(ws) = ctx.websocket.as_mut() {
            if !self
                .verifier
                .still_live(&ws.session_id, &mut ws.last_checked, WEBSOCKET_RECHECK)
                .await
            {
                return Err(session_ended_error());
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        match &ctx.websocket {
            Some(ws) if self.verifier.known_ended(&ws.session_id) => Err(session_ended_error()),
            _ => Ok(None),
        }
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.add_renewal(response, ctx)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code == 502 || code == 504 {
            ctx.outcome = "upstream_error";
            let _ = answer::error(
                session,
                &self.hub_prefix,
                502,
                "bad_gateway",
                "The app is not answering",
                "The app behind this address did not answer. Please try again shortly.",
            )
            .await;
        } else if code > 0 && session.response_written().is_none() {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        self.log_access(session, ctx);
    }
}
