//! Writing answers the gateway makes itself: hub replies, refusals, and error pages. Browsers get
//! HTML or a redirect; API clients get JSON.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;

use crate::auth::verify::{Reason, Refusal};
use crate::hub::pages::{self, Layout};
use crate::hub::{encode_component, Reply};

/// A browser navigation (not an XHR or API call): only these are redirected to sign in.
pub fn is_browser_navigation(session: &Session) -> bool {
    let req = session.req_header();
    let method_ok = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let accepts_html = req
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    method_ok && accepts_html
}

pub async fn write(session: &mut Session, reply: Reply) -> Result<()> {
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (name, value) in reply.headers {
        header.append_header(name, value)?;
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

/// The outcome label of a refusal, for `hubgate_requests_total`.
pub async fn refusal(
    session: &mut Session,
    hub_prefix: &str,
    app: &str,
    refusal: Refusal,
) -> Result<&'static str> {
    match refusal {
        Refusal::Unauthenticated(reason) if is_browser_navigation(session) => {
            let next = session
                .req_header()
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string();
            let location = format!(
                "{hub_prefix}/authorize?app={}&next={}",
                encode_component(app),
                encode_component(&next)
            );
            write(
                session,
                Reply::redirect(302, &location).with_header("Cache-Control", "no-store"),
            )
            .await?;
            tracing::debug!(app, reason = reason.as_str(), "browser sent to sign in");
            Ok("redirected")
        }
        Refusal::Unauthenticated(reason) => {
            write(session, unauthenticated_json(hub_prefix, reason)).await?;
            Ok("unauthorized")
        }
        Refusal::ConflictingCookies => {
            let reply = error_reply(
                session,
                hub_prefix,
                400,
                "conflicting_cookies",
                "Conflicting sign-in cookies",
                "Your browser sent two different copies of a sign-in cookie for this site, so neither \
                 can be trusted. Another site under the same domain may have set one. Clear this \
                 site's cookies in your browser, then sign in again.",
            );
            write(session, reply).await?;
            tracing::warn!(app, "refused: conflicting copies of a gateway cookie");
            Ok("unauthorized")
        }
        Refusal::StoreUnavailable => {
            let reply = error_reply(
                session,
                hub_prefix,
                503,
                "store_unavailable",
                "Temporarily unavailable",
                "The gateway cannot check your session right now. Please try again in a minute.",
            );
            write(session, reply.with_header("Retry-After", "30")).await?;
            Ok("unauthorized")
        }
    }
}

pub fn unauthenticated_json(hub_prefix: &str, reason: Reason) -> Reply {
    Reply::json(401, &json!({"error": "unauthenticated", "reason": reason.as_str(), "login_url": format!("{hub_prefix}/login")}))
        .with_header("Cache-Control", "no-store")
}

/// An error answer in the form the client reads: an HTML page for browsers, JSON otherwise.
pub fn error_reply(
    session: &Session,
    hub_prefix: &str,
    status: u16,
    code: &str,
    heading: &str,
    text: &str,
) -> Reply {
    if is_browser_navigation(session) {
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

pub async fn error(
    session: &mut Session,
    hub_prefix: &str,
    status: u16,
    code: &str,
    heading: &str,
    text: &str,
) -> Result<()> {
    let reply = error_reply(session, hub_prefix, status, code, heading, text);
    write(session, reply).await
}
