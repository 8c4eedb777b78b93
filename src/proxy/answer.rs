//! Writing answers the gateway makes itself: hub replies, refusals, and error pages. Browsers get
//! HTML or a redirect; API clients get JSON.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;

use super::gate::Refused;
use crate::auth::verify::{Reason, Refusal};
use crate::hub::pages::{self, Layout};
use crate::hub::Reply;

/// A browser navigation (not an XHR or API call): only these are redirected to sign in.
pub fn is_browser_navigation(session: &Session) -> bool {
    let req = session.req_header();
    let accept = req
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    is_navigation(req.method.as_str(), accept)
}

/// GET or HEAD asking for HTML: what a browser sends when a person follows a link.
pub fn is_navigation(method: &str, accept: Option<&str>) -> bool {
    let method_ok = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    method_ok && accept.is_some_and(|v| v.contains("text/html"))
}

pub async fn write(session: &mut Session, reply: Reply) -> Result<()> {
    write_with(session, reply, Vec::new()).await
}

/// [`write`], plus headers whose names the config chooses (forward auth's identity headers).
pub async fn write_with(
    session: &mut Session,
    reply: Reply,
    extra: Vec<(http::HeaderName, String)>,
) -> Result<()> {
    let mut header =
        ResponseHeader::build(reply.status, Some(reply.headers.len() + extra.len() + 1))?;
    for (name, value) in reply.headers {
        header.append_header(name, value)?;
    }
    for (name, value) in extra {
        header.insert_header(name, value)?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, reply.body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD || reply.body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

/// Answers 431 when the request's Cookie headers exceed what any browser sends; `Ok(true)` when
/// it did. Checked before routing, so neither the hub nor an upstream sees such a request.
pub async fn refuse_oversized_cookies(session: &mut Session, hub_prefix: &str) -> Result<bool> {
    let headers = session.req_header().headers.get_all(http::header::COOKIE);
    if !crate::auth::cookies::too_large(headers.iter().map(|v| v.as_bytes())) {
        return Ok(false);
    }
    error(
        session,
        hub_prefix,
        431,
        "cookies_too_large",
        "Too many cookies",
        "Your browser sent more cookies for this site than the gateway accepts. Clear this \
         site's cookies, then try again.",
    )
    .await?;
    Ok(true)
}

/// Where a refused browser navigation goes to sign in, and what else its answer carries.
pub struct SignIn<'a> {
    /// The authorize URL (relative on the hub's host, absolute from an app host).
    pub location: &'a str,
    /// Cookies to clear with the answer: an app host's own, once its session is over.
    pub clear_cookies: Vec<String>,
}

/// The answer to a refused request, and its outcome label for `hubgate_requests_total`.
/// `navigation`: a browser navigation (only those are redirected to sign in).
pub fn refused(
    refused: &Refused,
    navigation: bool,
    hub_prefix: &str,
    app: &str,
    sign_in: SignIn<'_>,
) -> (Reply, &'static str) {
    let page = |status, code, heading, text: &str| {
        error_page(navigation, hub_prefix, status, code, heading, text)
    };
    match refused {
        Refused::Verify(Refusal::Unauthenticated(reason)) if navigation => {
            tracing::debug!(app, reason = reason.as_str(), "browser sent to sign in");
            let reply = Reply::redirect(302, sign_in.location)
                .with_header("Cache-Control", "no-store")
                .with_cookies(sign_in.clear_cookies);
            (reply, "redirected")
        }
        Refused::Verify(Refusal::Unauthenticated(reason)) => (
            unauthenticated_json(hub_prefix, *reason).with_cookies(sign_in.clear_cookies),
            "unauthorized",
        ),
        Refused::Verify(Refusal::ConflictingCookies) => {
            tracing::warn!(app, "refused: conflicting copies of a gateway cookie");
            let reply = page(
                400,
                "conflicting_cookies",
                "Conflicting sign-in cookies",
                "Your browser sent two different copies of a sign-in cookie for this site, so neither \
                 can be trusted. Another site under the same domain may have set one. Clear this \
                 site's cookies in your browser, then sign in again.",
            );
            (reply, "unauthorized")
        }
        Refused::Verify(Refusal::StoreUnavailable) => {
            let reply = page(
                503,
                "store_unavailable",
                "Temporarily unavailable",
                "The gateway cannot check your session right now. Please try again in a minute.",
            );
            (reply.with_header("Retry-After", "30"), "unauthorized")
        }
        Refused::Forbidden { user } => {
            let text = format!("Your account ({user}) may not use {app}.");
            (
                page(403, "forbidden", "No access to this app", &text),
                "forbidden",
            )
        }
        // Scripts, not people: JSON whatever they accept, never a redirect to sign in.
        Refused::ApiToken(refusal) => {
            let status = api_token_status(*refusal);
            let mut reply = Reply::json(status, &api_token_json(*refusal))
                .with_header("Cache-Control", "no-store");
            if status == 401 {
                reply = reply.with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
            }
            let outcome = if status == 403 {
                "forbidden"
            } else {
                "unauthorized"
            };
            (reply, outcome)
        }
        Refused::WebSocketDisabled => (
            page(
                403,
                "websocket_disabled",
                "WebSocket not allowed",
                "This app does not accept WebSocket connections.",
            ),
            "forbidden",
        ),
    }
}

/// 401 for a token that opens nothing, 403 for one of another app, 503 while the store is away.
pub fn api_token_status(refusal: crate::api_tokens::Refusal) -> u16 {
    use crate::api_tokens::Refusal;
    match refusal {
        Refusal::NotForApp => 403,
        Refusal::StoreUnavailable => 503,
        Refusal::Unknown | Refusal::Expired | Refusal::Revoked | Refusal::UserRemoved => 401,
    }
}

pub fn api_token_json(refusal: crate::api_tokens::Refusal) -> serde_json::Value {
    use crate::api_tokens::Refusal;
    let (error, message) = match refusal {
        Refusal::Unknown => (
            "unauthenticated",
            "This API token is not one this gateway issued.",
        ),
        Refusal::Expired => (
            "unauthenticated",
            "This API token has expired. Make a new one on your session page.",
        ),
        Refusal::Revoked => ("unauthenticated", "This API token was revoked."),
        Refusal::UserRemoved => (
            "unauthenticated",
            "The owner of this API token is no longer a user of this gateway.",
        ),
        Refusal::NotForApp => ("forbidden", "This API token is not for this app."),
        Refusal::StoreUnavailable => (
            "store_unavailable",
            "The gateway cannot check API tokens right now. Try again in a minute.",
        ),
    };
    json!({"error": error, "reason": refusal.as_str(), "message": message})
}

pub fn unauthenticated_json(hub_prefix: &str, reason: Reason) -> Reply {
    Reply::json(401, &json!({"error": "unauthenticated", "reason": reason.as_str(), "login_url": format!("{hub_prefix}/login")}))
        .with_header("Cache-Control", "no-store")
}

/// An error answer in the form the client reads: an HTML page for a browser navigation, JSON
/// otherwise.
pub fn error_page(
    navigation: bool,
    hub_prefix: &str,
    status: u16,
    code: &str,
    heading: &str,
    text: &str,
) -> Reply {
    if navigation {
        let stylesheet = format!("{hub_prefix}/static/hubgate.css");
        let layout = Layout {
            title: heading,
            stylesheet_href: &stylesheet,
            wide: false,
        };
        Reply::html(
            status,
            pages::layout(
                &layout,
                &pages::message(heading, text, Some(("/", "Go to the hub"))),
            ),
        )
    } else {
        Reply::json(status, &json!({"error": code, "message": text}))
    }
    .with_header("Cache-Control", "no-store")
}

/// The 502 page of an app that does not answer (proxied or tunnelled).
pub async fn app_not_answering(session: &mut Session, hub_prefix: &str) -> Result<()> {
    error(
        session,
        hub_prefix,
        502,
        "bad_gateway",
        "The app is not answering",
        "The app behind this address did not answer. Please try again shortly.",
    )
    .await
}

pub async fn error(
    session: &mut Session,
    hub_prefix: &str,
    status: u16,
    code: &str,
    heading: &str,
    text: &str,
) -> Result<()> {
    let navigation = is_browser_navigation(session);
    let reply = error_page(navigation, hub_prefix, status, code, heading, text);
    write(session, reply).await
}
