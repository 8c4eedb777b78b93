//! The decision for one app request, from plain data: public path, WebSocket permission, the
//! verifier's verdict, and the app's user and group rules. The proxy applies it to a Pingora
//! session; forward auth (`hub/forward_auth.rs`) applies it to a request another proxy asked about.

use std::sync::Arc;

use crate::api_tokens::{self, ApiTokens};
use crate::auth::cookies::{self, CookieNames};
use crate::auth::verify::{AppRequest, Reason, Refusal, RenewedToken, Verdict, Verifier};
use crate::auth::Identity;
use crate::config::AppConfig;
use crate::hub::encode_component;
use crate::session::SessionId;
use crate::time::Timestamp;

use super::routes::AppRoute;

/// What the gate looks at.
pub struct GateRequest<'a> {
    pub app: &'a AppRoute,
    /// Path only (a query may carry secrets and decides nothing here).
    pub path: &'a str,
    pub websocket: bool,
    pub cookie_headers: Vec<&'a [u8]>,
    /// The `Authorization` header: a hubgate API token there is used instead of the cookies.
    pub authorization: Option<&'a [u8]>,
}

#[derive(Debug)]
pub enum Gate {
    /// A public path: forwarded without identity.
    Public,
    Admit(Admitted),
    Refuse(Refused),
}

#[derive(Debug)]
pub struct Admitted {
    pub identity: Arc<Identity>,
    pub renewed: Option<RenewedToken>,
    /// For a WebSocket: its session, to watch for as long as the socket is open.
    pub websocket_session: Option<SessionId>,
    /// Admitted by this API token (its id), not by a session.
    pub api_token: Option<String>,
}

/// Why a request does not reach the app; `answer::refused` turns each into one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Verify(Refusal),
    /// Signed in, but not among the app's `allowed_users` / `allowed_groups`.
    Forbidden {
        user: String,
    },
    WebSocketDisabled,
    /// An API token that does not open this app now.
    ApiToken(api_tokens::Refusal),
}

/// What decides: the verifier for cookies, the API tokens for `Authorization: Bearer hg_…`.
pub struct Gatekeepers<'a> {
    pub verifier: &'a Verifier,
    pub api_tokens: &'a ApiTokens,
    pub names: &'a CookieNames,
}

pub async fn gate(keepers: &Gatekeepers<'_>, req: &GateRequest<'_>, now: Timestamp) -> Gate {
    let app = req.app;
    if app.config.is_public(req.path) {
        return Gate::Public;
    }
    if req.websocket && !app.config.websocket {
        return Gate::Refuse(Refused::WebSocketDisabled);
    }
    match req.authorization.and_then(api_tokens::bearer) {
        Some(token) if keepers.api_tokens.enabled() => {
            gate_api_token(keepers.api_tokens, app, token, now).await
        }
        _ => gate_cookies(keepers.verifier, keepers.names, req, now).await,
    }
}

/// An API token in place of cookies: admitted with its owner's identity while the token is for
/// this app and the owner may use it.
async fn gate_api_token(tokens: &ApiTokens, app: &AppRoute, token: &str, now: Timestamp) -> Gate {
    match tokens.admit(token, &app.config.name, now).await {
        Ok(grant) => admit_if_allowed(
            app,
            Admitted {
                identity: grant.identity,
                renewed: None,
                websocket_session: None,
                api_token: Some(grant.token_id),
            },
        ),
        Err(refusal) => Gate::Refuse(Refused::ApiToken(refusal)),
    }
}

/// Whoever the cookies or a token prove, the app's `allowed_users` / `allowed_groups` decide.
fn admit_if_allowed(app: &AppRoute, admitted: Admitted) -> Gate {
    let identity = &admitted.identity;
    if app.config.allows(identity.user(), identity.groups()) {
        Gate::Admit(admitted)
    } else {
        Gate::Refuse(Refused::Forbidden {
            user: identity.user().to_string(),
        })
    }
}

async fn gate_cookies(
    verifier: &Verifier,
    names: &CookieNames,
    req: &GateRequest<'_>,
    now: Timestamp,
) -> Gate {
    let app = req.app;
    let [token, session_id] = cookies::lookup_each(
        req.cookie_headers.iter().copied(),
        [&app.cookie_name, &names.session_id],
    );
    let request = AppRequest {
        app: &app.config.name,
        token,
        session_id,
        path: req.path,
        activity_exempt: app.is_activity_exempt(req.path),
    };
    let websocket_session = req
        .websocket
        .then(|| request.session_id.value().and_then(SessionId::parse))
        .flatten();
    match verifier.verify(&request, now).await {
        Verdict::Admit(admission) => admit_if_allowed(
            app,
            Admitted {
                identity: admission.identity,
                renewed: admission.renewed,
                websocket_session,
                api_token: None,
            },
        ),
        Verdict::Refuse(refusal) => Gate::Refuse(Refused::Verify(refusal)),
    }
}

/// Where a refused navigation goes to sign in: the hub's authorize endpoint, told which app and
/// where to return. From an app's own host that is an absolute URL on the hub's host, and the
/// return address is the full original URL (the callback on that host finishes the sign-in).
pub struct SignInUrls {
    pub hub_prefix: String,
    /// `server.public_url`'s origin.
    pub public_origin: String,
    pub https: bool,
}

impl SignInUrls {
    pub fn authorize(&self, app: &AppConfig, host: Option<&str>, path_and_query: &str) -> String {
        let name = encode_component(&app.name);
        match (&app.host, host) {
            (Some(_), Some(host)) => {
                let scheme = if self.https { "https" } else { "http" };
                let next = format!("{scheme}://{host}{path_and_query}");
                format!(
                    "{}{}/authorize?app={name}&next={}",
                    self.public_origin,
                    self.hub_prefix,
                    encode_component(&next)
                )
            }
            _ => format!(
                "{}/authorize?app={name}&next={}",
                self.hub_prefix,
                encode_component(path_and_query)
            ),
        }
    }
}

/// Reasons that mean the session is over: an app host then also clears its own cookies, since
/// the hub's sign-out can only clear the hub host's.
pub fn session_over(refused: &Refused) -> bool {
    matches!(
        refused,
        Refused::Verify(Refusal::Unauthenticated(
            Reason::SessionRevoked | Reason::IdleTimeout | Reason::SessionExpired
        ))
    )
}
