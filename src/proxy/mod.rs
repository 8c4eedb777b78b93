//! The Pingora `ProxyHttp` implementation. Each callback gathers inputs from the request, calls a
//! named function that decides, and applies the result — the request reads top to bottom like
//! DESIGN.md's flow: route → hub or verify → upstream headers → response cookies.

pub mod answer;
pub mod body_pace;
pub mod client_addr;
pub mod fast_path;
pub mod forward_auth;
pub mod gate;
pub mod header_deadline;
pub mod in_flight;
pub mod routes;
pub mod tunnel;
mod upstream;

pub use upstream::AppHeaders;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::auth::cookies::CookiePolicy;
use crate::auth::verify::{RenewedToken, Verifier};
use crate::auth::Identity;
use crate::config::Config;
use crate::hub::{Hub, HubRequest};
use crate::metrics::Metrics;
use crate::session::SessionId;
use crate::time::Timestamp;
use body_pace::BodyPace;
use gate::{gate, Gate, GateRequest, Gatekeepers, SignInUrls};
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
    pub api_tokens: Arc<crate::api_tokens::ApiTokens>,
    pub cookies: CookiePolicy,
    pub metrics: Arc<Metrics>,
    pub hub_prefix: String,
    pub sign_in: SignInUrls,
    pub https: bool,
    pub expose_new_token_header: bool,
    pub trusted_proxies: client_addr::TrustedProxies,
    pub body_read_timeout: std::time::Duration,
}

/// Per-request state carried between callbacks.
pub struct RequestCtx {
    started: Instant,
    now: Timestamp,
    app: Option<Arc<AppRoute>>,
    identity: Option<Arc<Identity>>,
    /// The API token that admitted the request (its id), for the access log.
    api_token: Option<String>,
    renewed: Option<RenewedToken>,
    outcome: &'static str,
    connect_attempts: usize,
    /// Upstreams that refused this request's connection (the next attempt goes elsewhere).
    refused_upstreams: Vec<pingora::protocols::l4::socket::SocketAddr>,
    _in_flight: in_flight::InFlightGuard,
    /// For an admitted WebSocket: its session, watched for as long as the socket is open.
    websocket: Option<WebSocketWatch>,
    /// The request body's pace; `None` for an upgrade, whose "body" is a tunnel.
    body_pace: Option<BodyPace>,
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
        api_tokens: Arc<crate::api_tokens::ApiTokens>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Gateway {
            in_flight: in_flight::InFlight::default(),
            router,
            hub,
            verifier,
            api_tokens,
            cookies: CookiePolicy::new(&config.cookies),
            metrics,
            hub_prefix: config.hub.prefix.clone(),
            sign_in: SignInUrls {
                hub_prefix: config.hub.prefix.clone(),
                public_origin: config.server.public_url.origin.clone(),
                https: config.server.public_url.https,
            },
            https: config.server.public_url.https,
            expose_new_token_header: config.tokens.expose_new_token_header,
            trusted_proxies: client_addr::TrustedProxies::new(&config.server.trusted_proxies),
            body_read_timeout: config.server.body_read_timeout,
        }
    }

    /// Who decides whether an app request may pass.
    fn gatekeepers(&self) -> Gatekeepers<'_> {
        Gatekeepers {
            verifier: &self.verifier,
            api_tokens: &self.api_tokens,
            names: &self.cookies.names,
        }
    }

    /// Paces the request body (see [`body_pace`]); an upgrade is left alone, its tunnel may idle.
    fn pace_body(&self, session: &mut Session, ctx: &mut RequestCtx) {
        if session.is_upgrade_req() {
            return;
        }
        session.set_read_timeout(Some(self.body_read_timeout));
        ctx.body_pace = Some(BodyPace::new(self.body_read_timeout, Instant::now()));
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
        target: HubTarget<'_>,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let body = match read_body(session, MAX_HUB_BODY, ctx.body_pace).await? {
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
        let endpoint = match &target {
            HubTarget::Hub(endpoint) | HubTarget::AppHost(_, endpoint) => endpoint,
        };
        let hub_request = HubRequest {
            method: &req.method,
            endpoint,
            query: req.uri.query().unwrap_or(""),
            cookie_headers: cookie_headers(req),
            host: header("host"),
            origin: header("origin"),
            sec_fetch_site: header("sec-fetch-site"),
            authorization: header("authorization"),
            content_type: header("content-type"),
            user_agent: header("user-agent"),
            if_none_match: header("if-none-match"),
            script_header: header(crate::hub::SCRIPT_HEADER),
            client_ip: self
                .client(session)
                .map(|c| c.ip.to_string())
                .unwrap_or_default(),
            body,
        };
        let reply = match target {
            HubTarget::Hub(_) => self.hub.serve(&hub_request, ctx.now).await,
            HubTarget::AppHost(app_host, _) => {
                let host = app_host.host.to_string();
                self.hub.serve_app_host(&hub_request, &host, ctx.now).await
            }
        };
        answer::write(session, reply).await
    }

    /// The app a request is for, if it is one: routed without copying the path or the host out
    /// of the request (the other routes borrow the path while the session answers them).
    fn app_of(&self, session: &Session) -> Option<Arc<AppRoute>> {
        let req = session.req_header();
        match self.router.resolve(request_host(req), req.uri.path()) {
            Route::App(app) => Some(app),
            _ => None,
        }
    }

    /// An app request: gated, then tunnelled (an upgrade) or left to Pingora to proxy
    /// (`Ok(false)`); `Ok(true)` when an answer was already written.
    async fn serve_app(
        &self,
        session: &mut Session,
        app: Arc<AppRoute>,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        if self.gate_app(session, app, ctx).await? {
            return Ok(true);
        }
        if tunnel::applies(session) {
            self.tunnel(session, ctx).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Authenticates an app request; `Ok(true)` when an answer was already written.
    async fn gate_app(
        &self,
        session: &mut Session,
        app: Arc<AppRoute>,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        ctx.app = Some(app.clone());
        let verdict = {
            let req = session.req_header();
            let request = GateRequest {
                app: &app,
                path: req.uri.path(),
                websocket: session.is_upgrade_req(),
                cookie_headers: cookie_headers(req),
                authorization: authorization(req),
            };
            gate(&self.gatekeepers(), &request, ctx.now).await
        };
        let refused = match verdict {
            Gate::Public => {
                ctx.outcome = "public";
                return Ok(false);
            }
            Gate::Admit(admitted) => {
                ctx.outcome = "allowed";
                ctx.websocket = admitted.websocket_session.map(|session_id| WebSocketWatch {
                    session_id,
                    last_checked: Instant::now(),
                });
                ctx.identity = Some(admitted.identity);
                ctx.api_token = admitted.api_token;
                ctx.renewed = admitted.renewed;
                return Ok(false);
            }
            Gate::Refuse(refused) => refused,
        };
        let req = session.req_header();
        let (reply, outcome) = self.refusal(
            &app,
            &refused,
            request_host(req),
            req.uri.path_and_query().map_or("/", |pq| pq.as_str()),
            answer::is_browser_navigation(session),
        );
        ctx.outcome = outcome;
        answer::write(session, reply).await?;
        Ok(true)
    }

    /// The answer to a refused app request (proxied, or asked about by forward auth) and its
    /// outcome label: a navigation goes to sign in, back to `host` + `path_and_query`.
    fn refusal(
        &self,
        app: &AppRoute,
        refused: &gate::Refused,
        host: Option<&str>,
        path_and_query: &str,
        navigation: bool,
    ) -> (crate::hub::Reply, &'static str) {
        let location = self.sign_in.authorize(&app.config, host, path_and_query);
        let clear_cookies = if app.config.host.is_some() && gate::session_over(refused) {
            self.host_cookie_clears(app)
        } else {
            Vec::new()
        };
        answer::refused(
            refused,
            navigation,
            &self.hub_prefix,
            &app.config.name,
            answer::SignIn {
                location: &location,
                clear_cookies,
            },
        )
    }

    /// What a response carrying a renewed token adds: the cookie, `no-store`, and perhaps the
    /// token itself in `X-New-Token`.
    fn renewal_headers(
        &self,
        app: &AppRoute,
        renewed: &RenewedToken,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Set-Cookie", self.renewal_cookie(app, renewed)),
            // A response carrying a fresh token must never sit in a shared cache for others.
            ("Cache-Control", "no-store".to_string()),
        ];
        if self.expose_new_token_header {
            headers.push(("X-New-Token", renewed.token.clone()));
        }
        headers
    }

    /// An app host's own cookies, cleared: its app cookie and its session-id cookie.
    fn host_cookie_clears(&self, app: &AppRoute) -> Vec<String> {
        vec![
            self.cookies
                .clear(&app.cookie_name, &format!("{}/", app.config.prefix)),
            self.cookies.clear(&self.cookies.names.session_id, "/"),
        ]
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
        upstream::remove_authorization(upstream, app);
        upstream::set_identity_headers(upstream, app, ctx.identity.as_deref())?;
        let forwarded_for = self.client(session).map(|c| c.forwarded_for);
        upstream::set_forwarded_headers(upstream, forwarded_for, self.https)?;
        upstream::strip_prefix(upstream, app)
    }

    /// A renewed token goes out with the response, proxied or tunnelled.
    fn add_renewal(&self, response: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
        if let (Some(app), Some(renewed)) = (ctx.app.as_ref(), ctx.renewed.as_ref()) {
            for (name, value) in self.renewal_headers(app, renewed) {
                if name == "Set-Cookie" {
                    response.append_header(name, value)?;
                } else {
                    response.insert_header(name, value)?;
                }
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
                answer::app_not_answering(session, &self.hub_prefix).await
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
            api_token = ctx.api_token.as_deref().unwrap_or("-"),
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

/// What answers a request the gateway serves itself: the hub, or `/.hubgate/` on an app host.
enum HubTarget<'a> {
    Hub(&'a str),
    AppHost(Arc<routes::AppHost>, &'a str),
}

/// Every `Cookie` header of a request, as sent.
fn cookie_headers(req: &pingora::http::RequestHeader) -> Vec<&[u8]> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect()
}

/// The request's `Authorization` header, as sent.
fn authorization(req: &pingora::http::RequestHeader) -> Option<&[u8]> {
    req.headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
}

/// The host a request names: its `Host` header, or the authority of an absolute URI (HTTP/2).
fn request_host(req: &pingora::http::RequestHeader) -> Option<&str> {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

fn session_ended_error() -> Box<Error> {
    Error::explain(
        ErrorType::Custom("session ended"),
        "the session of this connection has ended",
    )
}

/// Counts `bytes` more of a paced body (`None`: not paced). A body slower than
/// `server.body_read_timeout` allows is an error: 408, and the connection closes.
fn keep_pace(pace: Option<&mut BodyPace>, bytes: usize) -> Result<()> {
    let Some(pace) = pace else { return Ok(()) };
    pace.take(bytes, Instant::now()).map_err(|slow| {
        Error::explain(
            ErrorType::HTTPStatus(408),
            format!(
                "request body too slow: {} bytes in {:.1} s (server.body_read_timeout)",
                slow.received,
                slow.elapsed.as_secs_f64()
            ),
        )
    })
}

/// The whole request body, or `None` if it exceeds `limit`; paced like a proxied body.
async fn read_body(
    session: &mut Session,
    limit: usize,
    mut pace: Option<BodyPace>,
) -> Result<Option<Bytes>> {
    let mut body = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        keep_pace(pace.as_mut(), chunk.len())?;
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

    /// No downstream modules: Pingora's default adds its response-compression module (off, but
    /// still a context allocated and called on every header and body of every request), and
    /// hubgate has no setting that would turn compression on.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            now: Timestamp::now(),
            app: None,
            identity: None,
            api_token: None,
            renewed: None,
            outcome: "none",
            connect_attempts: 0,
            refused_upstreams: Vec::new(),
            websocket: None,
            body_pace: None,
            _in_flight: self.in_flight.enter(),
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        self.pace_body(session, ctx);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if answer::refuse_oversized_cookies(session, &self.hub_prefix).await? {
            return Ok(true);
        }
        if let Some(app) = self.app_of(session) {
            return self.serve_app(session, app, ctx).await;
        }
        let path = session.req_header().uri.path().to_string();
        let host = request_host(session.req_header()).map(str::to_string);
        match self.router.resolve(host.as_deref(), &path) {
            Route::Hub(endpoint) => self
                .serve_hub(session, HubTarget::Hub(endpoint), ctx)
                .await
                .map(|_| true),
            Route::HostEndpoint(app_host, endpoint) => self
                .serve_hub(session, HubTarget::AppHost(app_host, endpoint), ctx)
                .await
                .map(|_| true),
            Route::App(app) => self.serve_app(session, app, ctx).await,
            Route::ForwardAuth(asker) => {
                let decision = self.forward_auth(session.req_header(), asker, ctx).await;
                answer::write_with(session, decision.reply, decision.identity)
                    .await
                    .map(|_| true)
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
            Route::UnknownHost => answer::error(
                session,
                &self.hub_prefix,
                404,
                "unknown_host",
                "Site not found",
                "This gateway serves no app under this host name.",
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
        // A retry goes to another upstream than those that just refused: round robin alone could
        // hand a dead one back while concurrent requests move the counter.
        let refused = &ctx.refused_upstreams;
        let backend = app
            .upstreams
            .select_with(b"", 256, |b, healthy| healthy && !refused.contains(&b.addr))
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no healthy upstream"))?;
        let mut peer = HttpPeer::new(backend.addr, false, String::new());
        peer.options.connection_timeout = Some(std::time::Duration::from_secs(5));
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.refused_upstreams.push(peer._address.clone());
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
        body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(chunk) = body.as_ref() {
            keep_pace(ctx.body_pace.as_mut(), chunk.len())?;
        }
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
            let _ = answer::app_not_answering(session, &self.hub_prefix).await;
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
