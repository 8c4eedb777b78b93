//! What an upstream receives: the gateway's cookies removed (the app's own kept), identity headers
//! set from the verified session (client-supplied copies always removed), `X-Forwarded-*` set,
//! and the app prefix stripped when configured.

use pingora::http::RequestHeader;
use pingora::Result;

use super::routes::AppRoute;
use crate::auth::cookies::{without_gateway_cookies, CookieNames};
use crate::auth::Identity;

/// A client's `Authorization` reaches the app only where `pass_authorization = true`, and a
/// hubgate API token never does: it is the gateway's credential, not the app's.
pub fn remove_authorization(req: &mut RequestHeader, app: &AppRoute) {
    let ours = req
        .headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| crate::api_tokens::bearer(v.as_bytes()).is_some());
    if ours || !app.config.pass_authorization {
        req.remove_header(&http::header::AUTHORIZATION);
    }
}

pub fn remove_gateway_cookies(req: &mut RequestHeader, names: &CookieNames) -> Result<()> {
    let mut headers = 0;
    let mut kept: Vec<u8> = Vec::new();
    for value in req.headers.get_all(http::header::COOKIE) {
        headers += 1;
        if let Some(rest) = without_gateway_cookies(value.as_bytes(), names) {
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(&rest);
        }
    }
    if headers == 0 {
        return Ok(());
    }
    req.remove_header(&http::header::COOKIE);
    if !kept.is_empty() {
        req.insert_header(http::header::COOKIE, kept)?;
    }
    Ok(())
}

/// Removed from every client request even when an app renames or turns off its identity headers:
/// apps commonly trust these names, so a client must never be able to send them.
const CONVENTIONAL_IDENTITY_HEADERS: [&str; 3] = [
    "X-Forwarded-User",
    "X-Forwarded-Groups",
    "X-Forwarded-Email",
];

/// Headers that let a client tell the upstream a different path or origin than the one the
/// gateway checked: IIS, Symfony and Zend serve `X-Original-URL` / `X-Rewrite-URL` instead of the
/// request line (a public path could then fetch a private page), and RFC 7239 `Forwarded` would
/// contradict the `X-Forwarded-*` the gateway sets. Only a client sends these here; none survives.
const CLIENT_MAY_NOT_SEND: [&str; 3] = ["X-Original-URL", "X-Rewrite-URL", "Forwarded"];

/// Header names compared the way a CGI/WSGI/Rack server sees them: case-insensitive, and `_`
/// the same as `-` (`X_Forwarded_User` arrives as `HTTP_X_FORWARDED_USER`, like the real header).
fn same_header(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let norm = |c: u8| {
                if c == b'_' {
                    b'-'
                } else {
                    c.to_ascii_lowercase()
                }
            };
            norm(x) == norm(y)
        })
}

/// What the upstream-header rules need of one app, prepared once at start.
pub struct AppHeaders {
    /// Every header name a client may not send (compared with [`same_header`]): the app's
    /// identity headers, the conventional ones, and those that could override what the gateway
    /// checked.
    reserved: Vec<String>,
    /// The identity header names (user, groups, email) in their configured letter case, shared
    /// rather than copied per request; `None` where turned off.
    identity: [Option<bytes::Bytes>; 3],
}

impl AppHeaders {
    pub fn new(app: &crate::config::AppConfig) -> Self {
        let names = &app.identity_headers;
        AppHeaders {
            reserved: names
                .names()
                .chain(CONVENTIONAL_IDENTITY_HEADERS)
                .chain(CLIENT_MAY_NOT_SEND)
                .map(str::to_string)
                .collect(),
            identity: [&names.user, &names.groups, &names.email]
                .map(|name| name.clone().map(bytes::Bytes::from)),
        }
    }
}

pub fn set_identity_headers(
    req: &mut RequestHeader,
    app: &AppRoute,
    identity: Option<&Identity>,
) -> Result<()> {
    // Every copy in any letter case, and the underscore spellings.
    let spoofed: Vec<http::HeaderName> = req
        .headers
        .keys()
        .filter(|name| {
            app.headers
                .reserved
                .iter()
                .any(|r| same_header(name.as_str(), r))
        })
        .cloned()
        .collect();
    for name in spoofed {
        while req.headers.contains_key(&name) {
            req.remove_header(&name);
        }
    }
    let Some(identity) = identity else {
        return Ok(());
    };
    for (name, value) in identity_values(app, identity) {
        req.insert_header(name.clone(), value)?;
    }
    Ok(())
}

/// The app's identity headers (those turned on) with their values for `identity`.
pub fn identity_values<'a>(
    app: &'a AppRoute,
    identity: &'a Identity,
) -> impl Iterator<Item = (&'a bytes::Bytes, &'a str)> {
    let [user, groups, email] = &app.headers.identity;
    [
        (user, identity.user()),
        (groups, identity.groups_joined()),
        (email, identity.email()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name.as_ref()?, value)))
}

/// `forwarded_for` replaces every `X-Forwarded-For` the client sent: it holds only what the
/// gateway believes ([`super::client_addr`]); without a peer address none is sent at all.
pub fn set_forwarded_headers(
    req: &mut RequestHeader,
    forwarded_for: Option<String>,
    https: bool,
) -> Result<()> {
    match forwarded_for {
        Some(value) => req.insert_header("X-Forwarded-For", value)?,
        None => req.remove_header("X-Forwarded-For").map_or((), |_| ()),
    }
    let proto = http::HeaderValue::from_static(if https { "https" } else { "http" });
    req.insert_header("X-Forwarded-Proto", proto)?;
    let host = req.headers.get(http::header::HOST).cloned();
    match host {
        Some(host) => req.insert_header("X-Forwarded-Host", host)?,
        None => req.remove_header("X-Forwarded-Host").map_or((), |_| ()),
    }
    Ok(())
}

/// `/apps/grafana/x?y` → `/x?y` when the app strips its prefix.
pub fn strip_prefix(req: &mut RequestHeader, app: &AppRoute) -> Result<()> {
    if !app.config.strip_prefix {
        return Ok(());
    }
    let Some(rest) = req.uri.path().strip_prefix(app.config.prefix.as_str()) else {
        return Ok(());
    };
    let path = if rest.is_empty() { "/" } else { rest };
    let new = match req.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    match new.parse::<http::Uri>() {
        Ok(uri) => {
            req.set_uri(uri);
            Ok(())
        }
        Err(_) => pingora::Error::e_explain(
            pingora::ErrorType::InvalidHTTPHeader,
            "cannot rewrite the path",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_match_as_cgi_servers_read_them() {
        assert!(same_header("x-forwarded-user", "X-Forwarded-User"));
        assert!(same_header("x_forwarded_user", "X-Forwarded-User"));
        assert!(same_header("X_FORWARDED-user", "X-Forwarded-User"));
        assert!(!same_header("x-forwarded-users", "X-Forwarded-User"));
        assert!(!same_header("x-forwarded-use", "X-Forwarded-User"));
    }
}
