//! The gateway's own cookies: their names, how they are read from a request, how they are set and
//! cleared, and how they are removed from what an upstream receives.
//!
//! Duplicate names (cookie tossing): a page on a sibling subdomain can set a cookie for the parent
//! domain, and any page can set one at a longer path; the browser then sends several cookies of the
//! same name and says nothing about where each came from. Taking the first would let the attacker
//! choose: browsers order by path length and then by age, so an older tossed copy, or one at a
//! longer path, comes first. So a gateway cookie that arrives with two different values is
//! *conflicting* and neither copy is used: the request is refused with a clear answer instead of
//! running in the attacker's session. Identical copies (the same cookie host-only and for the
//! configured domain) are harmless and count as one. `__Host-` names would stop tossing at the
//! browser, but they require `Path=/`, which the hub-login and app cookies cannot have.

use std::time::Duration;

use crate::config::{CookieConfig, SameSite};

#[derive(Debug, Clone)]
pub struct CookieNames {
    pub hub_login: String,
    pub session_id: String,
    pub csrf: String,
    /// Left by sign-out at the hub path, so a tab reloaded later still learns why it has to sign in.
    pub signed_out: String,
    /// One OpenID Connect sign-in under way: state, nonce and PKCE verifier (hub path, minutes).
    pub oidc: String,
    app_prefix: String,
}

impl CookieNames {
    pub fn new(prefix: &str) -> Self {
        CookieNames {
            hub_login: format!("{prefix}-hub-login"),
            session_id: format!("{prefix}-session-id"),
            csrf: format!("{prefix}-csrf"),
            signed_out: format!("{prefix}-signed-out"),
            oidc: format!("{prefix}-oidc"),
            app_prefix: format!("{prefix}-app-"),
        }
    }

    pub fn app(&self, app: &str) -> String {
        format!("{}{app}", self.app_prefix)
    }

    /// Whether a cookie name is one of the gateway's (and so never forwarded upstream).
    pub fn is_gateway_cookie(&self, name: &[u8]) -> bool {
        name == self.hub_login.as_bytes()
            || name == self.session_id.as_bytes()
            || name == self.csrf.as_bytes()
            || name == self.signed_out.as_bytes()
            || name == self.oidc.as_bytes()
            || name.starts_with(self.app_prefix.as_bytes())
    }
}

/// Browsers keep cookies of at most 4 KiB and send a few dozen per site; more than 32 KiB of
/// Cookie headers in one request (all headers together, at common CDNs) is no real browser's.
/// Refused up front with 431, before any parsing, and never forwarded to an upstream.
pub const MAX_COOKIE_BYTES: usize = 32 * 1024;

/// Whether the Cookie headers of a request together exceed [`MAX_COOKIE_BYTES`].
pub fn too_large<'a>(headers: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut total = 0;
    headers.into_iter().any(|h| {
        total += h.len();
        total > MAX_COOKIE_BYTES
    })
}

/// The `name=value` pairs of one Cookie header value. Bytes, not text: a cookie with non-UTF-8
/// bytes is carried through untouched for the app, never a reason to fail the request.
pub fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        Some((
            pair[..eq].trim_ascii(),
            strip_quotes(pair[eq + 1..].trim_ascii()),
        ))
    })
}

fn strip_quotes(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

/// What a request says about one cookie name, across all its Cookie headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found<'a> {
    /// Not sent, or sent once with a value that is not text (no cookie we set looks like that).
    Missing,
    One(&'a str),
    /// Sent with two or more different values: someone else set one of them (see the module notes).
    Conflicting,
}

impl<'a> Found<'a> {
    /// The value when there is exactly one; a conflict is as good as nothing.
    pub fn value(self) -> Option<&'a str> {
        match self {
            Found::One(value) => Some(value),
            Found::Missing | Found::Conflicting => None,
        }
    }
}

/// Every copy of cookie `name` across all Cookie headers: one value, none, or a conflict.
pub fn lookup<'a>(headers: impl IntoIterator<Item = &'a [u8]>, name: &str) -> Found<'a> {
    let [found] = lookup_each(headers, [name]);
    found
}

/// [`lookup`] of several cookies in one pass over the headers (the app token and the session id,
/// on every app request).
pub fn lookup_each<'a, const N: usize>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    names: [&str; N],
) -> [Found<'a>; N] {
    let mut first: [Option<&'a [u8]>; N] = [None; N];
    let mut conflicting = [false; N];
    for (name, value) in headers.into_iter().flat_map(pairs) {
        for (i, wanted) in names.iter().enumerate() {
            if name != wanted.as_bytes() {
                continue;
            }
            match first[i] {
                None => first[i] = Some(value),
                Some(seen) if seen == value => {}
                Some(_) => conflicting[i] = true,
            }
        }
    }
    std::array::from_fn(
        |i| match (conflicting[i], first[i].map(std::str::from_utf8)) {
            (true, _) => Found::Conflicting,
            (false, Some(Ok(value))) => Found::One(value),
            _ => Found::Missing,
        },
    )
}

/// The value of cookie `name` if the request carries exactly one (conflicting copies give `None`).
pub fn find<'a>(headers: impl IntoIterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    lookup(headers, name).value()
}

/// The Cookie header value without the gateway's cookies; `None` when nothing is left.
pub fn without_gateway_cookies(header: &[u8], names: &CookieNames) -> Option<Vec<u8>> {
    let mut kept = Vec::with_capacity(header.len());
    for part in header.split(|&b| b == b';') {
        let trimmed = part.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let name = trimmed
            .split(|&b| b == b'=')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if names.is_gateway_cookie(name) {
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(trimmed);
    }
    (!kept.is_empty()).then_some(kept)
}

/// Builds `Set-Cookie` values with the configured Secure, SameSite and Domain.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub names: CookieNames,
    secure: bool,
    same_site: SameSite,
    domain: Option<String>,
}

impl CookiePolicy {
    pub fn new(config: &CookieConfig) -> Self {
        CookiePolicy {
            names: CookieNames::new(&config.prefix),
            secure: config.secure,
            same_site: config.same_site,
            domain: config.domain.clone(),
        }
    }

    /// `max_age: None` makes a browser-session cookie (gone when the browser closes).
    pub fn set(&self, name: &str, value: &str, path: &str, max_age: Option<Duration>) -> String {
        let mut cookie = format!(
            "{name}={value}; Path={path}; HttpOnly; SameSite={}",
            self.same_site_text()
        );
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        self.finish(cookie)
    }

    /// Like [`CookiePolicy::set`], for a cookie that must come back on a top-level navigation
    /// from another site (an OpenID provider's redirect back): `Strict` would leave it behind,
    /// so it is sent as `Lax` then.
    pub fn set_for_return(&self, name: &str, value: &str, path: &str, age: Duration) -> String {
        let same_site = match self.same_site {
            SameSite::Strict => "Lax",
            _ => self.same_site_text(),
        };
        let cookie = format!(
            "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={}",
            age.as_secs()
        );
        self.finish(cookie)
    }

    pub fn clear(&self, name: &str, path: &str) -> String {
        let cookie = format!(
            "{name}=; Path={path}; HttpOnly; SameSite={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.same_site_text()
        );
        self.finish(cookie)
    }

    fn finish(&self, mut cookie: String) -> String {
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        cookie
    }

    fn same_site_text(&self) -> &'static str {
        match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> CookieNames {
        CookieNames::new("hubgate")
    }

    #[test]
    fn parses_pairs_leniently() {
        let header = b"a=1;b = 2 ; empty=; novalue; q=\"quoted\"; =x";
        let found: Vec<_> = pairs(header).collect();
        assert_eq!(
            found,
            vec![
                (&b"a"[..], &b"1"[..]),
                (b"b", b"2"),
                (b"empty", b""),
                (b"q", b"quoted"),
                (b"", b"x"),
            ]
        );
    }

    #[test]
    fn one_value_across_headers_or_a_conflict() {
        let h1: &[u8] = b"hubgate-session-id=first; other=1";
        let h2: &[u8] = b"hubgate-session-id=second";
        let same: &[u8] = b"x=1; hubgate-session-id=first";
        assert_eq!(find([h1], "hubgate-session-id"), Some("first"));
        assert_eq!(find([h1, same], "hubgate-session-id"), Some("first"));
        // A tossed copy with another value: neither is used, whichever comes first.
        assert_eq!(lookup([h1, h2], "hubgate-session-id"), Found::Conflicting);
        assert_eq!(lookup([h2, h1], "hubgate-session-id"), Found::Conflicting);
        assert_eq!(find([h2, h1], "hubgate-session-id"), None);
        let in_one: &[u8] = b"hubgate-session-id=a; hubgate-session-id=b";
        assert_eq!(lookup([in_one], "hubgate-session-id"), Found::Conflicting);
        assert_eq!(lookup([h1], "missing"), Found::Missing);
        let binary: &[u8] = b"hubgate-session-id=\xff\xfe";
        assert_eq!(lookup([binary], "hubgate-session-id"), Found::Missing);
        assert_eq!(
            lookup([binary, h1], "hubgate-session-id"),
            Found::Conflicting
        );
    }

    #[test]
    fn cookie_headers_past_the_limit_are_too_large() {
        let half = vec![b'a'; MAX_COOKIE_BYTES / 2];
        assert!(!too_large([&half[..], &half[..]]));
        assert!(too_large([&half[..], &half[..], b"x"]));
        assert!(!too_large(std::iter::empty()));
    }

    #[test]
    fn ten_thousand_cookies_are_read_in_one_pass() {
        let mut header = Vec::new();
        for i in 0..10_000 {
            header.extend_from_slice(format!("c{i}=v; ").as_bytes());
        }
        header.extend_from_slice(b"hubgate-session-id=last");
        assert_eq!(find([&header[..]], "hubgate-session-id"), Some("last"));
        let kept = without_gateway_cookies(&header, &names()).unwrap();
        assert!(!kept.windows(10).any(|w| w == b"hubgate-se"));
    }

    #[test]
    fn strips_only_the_gateway_cookies() {
        let header = b"app_session=abc; hubgate-hub-login=x; hubgate-session-id=y; hubgate-app-grafana=z; theme=dark; hubgate-csrf=c; raw=\xff";
        let kept = without_gateway_cookies(header, &names()).unwrap();
        assert_eq!(kept, b"app_session=abc; theme=dark; raw=\xff".to_vec());
        assert_eq!(
            without_gateway_cookies(b"hubgate-session-id=y", &names()),
            None
        );
        // A name that merely starts like ours but is not one of ours is the app's business.
        assert_eq!(
            without_gateway_cookies(b"hubgate-session-idx=1", &names()),
            Some(b"hubgate-session-idx=1".to_vec())
        );
    }

    #[test]
    fn set_cookie_carries_the_policy() {
        let policy = CookiePolicy::new(&CookieConfig {
            prefix: "hubgate".into(),
            secure: true,
            same_site: SameSite::Strict,
            domain: Some("example.com".into()),
        });
        assert_eq!(
            policy.set("n", "v", "/hub/", Some(Duration::from_secs(60))),
            "n=v; Path=/hub/; HttpOnly; SameSite=Strict; Max-Age=60; Secure; Domain=example.com"
        );
        assert!(policy.clear("n", "/").contains("Max-Age=0"));
    }
}
