//! The gateway's own cookies: their names, how they are read from a request, how they are set and
//! cleared, and how they are removed from what an upstream receives.
//!
//! Duplicate names (cookie tossing from a broader path or a parent domain): the first occurrence
//! wins. Browsers send cookies with longer (more specific) paths first, so for host-only cookies
//! the copy this gateway set at its own path comes before one tossed at `/`.

use std::time::Duration;

use crate::config::{CookieConfig, SameSite};

#[derive(Debug, Clone)]
pub struct CookieNames {
    pub hub_login: String,
    pub session_id: String,
    pub csrf: String,
    /// Left by sign-out at the hub path, so a tab reloaded later still learns why it has to sign in.
    pub signed_out: String,
    app_prefix: String,
}

impl CookieNames {
    pub fn new(prefix: &str) -> Self {
        CookieNames {
            hub_login: format!("{prefix}-hub-login"),
            session_id: format!("{prefix}-session-id"),
            csrf: format!("{prefix}-csrf"),
            signed_out: format!("{prefix}-signed-out"),
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
            || name.starts_with(self.app_prefix.as_bytes())
    }
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

/// The first value of cookie `name` across all Cookie headers, if it is valid text.
pub fn find<'a>(headers: impl IntoIterator<Item = &'a [u8]>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(pairs)
        .find(|(n, _)| *n == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
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
    fn first_occurrence_wins_across_headers() {
        let h1: &[u8] = b"hubgate-session-id=first; other=1";
        let h2: &[u8] = b"hubgate-session-id=second";
        assert_eq!(find([h1, h2], "hubgate-session-id"), Some("first"));
        assert_eq!(find([h2, h1], "hubgate-session-id"), Some("second"));
        assert_eq!(find([h1], "missing"), None);
        let binary: &[u8] = b"hubgate-session-id=\xff\xfe";
        assert_eq!(find([binary], "hubgate-session-id"), None);
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
