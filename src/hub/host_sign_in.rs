//! Sign-in for apps on their own host names. The hub's cookies never reach `grafana.example.com`,
//! so a signed-in authorize hands the browser a one-time code instead of a cookie:
//! `https://grafana.example.com/.hubgate/callback?code=…&next=/d/abc`. The gateway answers
//! `/.hubgate/` on every app host itself; the callback redeems the code — single use, valid 30 s,
//! bound to app and host, kept as a note in the session store so any instance can redeem it —
//! and sets that host's own cookies. `/.hubgate/logout` and `/.hubgate/session` lead to the hub;
//! `/.hubgate/static/session.js` and the endpoints it calls answer on the host itself.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::{encode_component, pages, with_security_headers, Hub, HubRequest, Reply};
use crate::auth::next;
use crate::config::{AppConfig, Config, HostName, PublicUrl};
use crate::session::{Noticed, Session, SessionId};
use crate::time::Timestamp;

/// Long enough for one redirect on a slow phone, short enough that a code seen in a log or a
/// browser history is worthless.
pub const CODE_TTL: Duration = Duration::from_secs(30);

/// Where authorize sends the browser back to: an origin on the app's host and a path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReturn {
    /// `https://grafana.example.com[:port]`: the configured host, or the port the browser used
    /// when the configured host names none.
    pub origin: String,
    /// A same-origin path on that host (`/` for anything else).
    pub path: String,
}

impl HostReturn {
    /// From authorize's `next`: a full URL on `host` keeps its authority and path; a bare path is
    /// taken on `host`; anything else (another host, a scheme trick) returns to `/` on `host`.
    ///
    /// The port is strict, since the code travels to it: the configured one, or — for a host
    /// configured without one — none, or the hub's own port (everything on one gateway port, as
    /// in development). Otherwise a crafted `next` on another port of the same name, where anyone
    /// may listen, would receive a signed-in user's code.
    pub fn new(host: &str, next: Option<String>, hub: &PublicUrl) -> Self {
        let scheme = if hub.https { "https" } else { "http" };
        let hub_port = hub
            .origin
            .split_once("://")
            .and_then(|(_, h)| HostName::parse(h))
            .and_then(|h| h.port);
        let configured = HostName::parse(host);
        let next = next.unwrap_or_default();
        let url = next
            .strip_prefix("https://")
            .or_else(|| next.strip_prefix("http://"));
        let (authority, path) = match url {
            Some(rest) => {
                let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (authority, path) = rest.split_at(split);
                let same_host = matches!(
                    (&configured, HostName::parse(authority)),
                    (Some(c), Some(a)) if c.name == a.name
                        && (a.port == c.port || (c.port.is_none() && a.port == hub_port))
                );
                if same_host {
                    (authority.to_ascii_lowercase(), next::sanitize(path))
                } else {
                    (host.to_string(), "/".to_string())
                }
            }
            None if next.is_empty() => (host.to_string(), "/".to_string()),
            None => (host.to_string(), next::sanitize(&next)),
        };
        HostReturn {
            origin: format!("{scheme}://{authority}"),
            path,
        }
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }
}

/// The hub's CSP with every app host in `form-action`: Chromium applies `form-action` to the
/// redirects that follow a form's POST, and a sign-in for an app host ends on that host's callback.
pub fn content_security_policy(base: &str, config: &Config) -> String {
    let scheme = if config.server.public_url.https {
        "https"
    } else {
        "http"
    };
    let hosts: Vec<String> = config
        .apps
        .iter()
        .filter_map(|app| HostName::parse(app.host.as_deref()?))
        .map(|host| match host.port {
            Some(port) => format!("{scheme}://{}:{port}", host.name),
            None => format!("{scheme}://{}:*", host.name),
        })
        .collect();
    if hosts.is_empty() {
        return base.to_string();
    }
    base.replace(
        "form-action 'self'",
        &format!("form-action 'self' {}", hosts.join(" ")),
    )
}

/// What a code stands for, as kept in the store.
#[derive(Debug, Serialize, Deserialize)]
struct CodeGrant {
    sid: String,
    app: String,
    host: String,
    /// Milliseconds since the epoch; checked on redemption whatever the store's own expiry did.
    expires_at: u64,
}

/// The store note that holds a code's grant (`put_note`, visible to every instance).
fn code_note(code: &str) -> String {
    format!("host-code:{code}")
}

fn new_code() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Hub {
    /// The signed-in authorize for an app on its own host: a code, redeemed by the callback there.
    pub(super) async fn send_code(
        &self,
        session: &Session,
        app: &AppConfig,
        target: &HostReturn,
        now: Timestamp,
    ) -> Reply {
        let Some(host) = app.host.clone() else {
            return self.store_unavailable();
        };
        let code = new_code();
        let grant = CodeGrant {
            sid: session.id.as_str().to_string(),
            app: app.name.clone(),
            host,
            expires_at: now.plus(CODE_TTL).0,
        };
        let Ok(grant) = serde_json::to_string(&grant) else {
            return self.store_unavailable();
        };
        if self
            .sessions
            .store()
            .put_note(&code_note(&code), &grant, CODE_TTL)
            .await
            .is_err()
        {
            return self.store_unavailable();
        }
        let location = format!(
            "{}/.hubgate/callback?code={code}&next={}",
            target.origin,
            encode_component(&target.path)
        );
        Reply::redirect(302, &location)
    }

    /// `/.hubgate/<endpoint>` on the app host `host` (as configured).
    pub async fn serve_app_host(&self, req: &HubRequest<'_>, host: &str, now: Timestamp) -> Reply {
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let reply = match req.endpoint {
            "/callback" if get => self.redeem_code(req, host, now).await,
            "/logout" if get || req.method == http::Method::POST => {
                self.logout_on_host(req, host, now).await
            }
            "/session" if get => Reply::redirect(302, &self.hub_url("/session")),
            // session.js and its endpoints, with this host's cookies (no cross-origin call).
            "/static/session.js" if get => self.session_script(req),
            "/api/session" if get => self.session_api(req, now).await,
            "/api/session/touch" if req.method == http::Method::POST => {
                self.session_touch(req, now).await
            }
            "/api/logout-event" if req.method == http::Method::POST => {
                self.logout_event(req, Some(host), now).await
            }
            "/callback" | "/logout" | "/session" | "/static/session.js" | "/api/session"
            | "/api/session/touch" | "/api/logout-event" => {
                Reply::json(405, &serde_json::json!({"error": "method_not_allowed"}))
            }
            _ => self.host_page(404, "Page not found", "There is nothing at this address."),
        };
        with_security_headers(reply, &self.csp)
    }

    /// An absolute hub URL, for links from an app host.
    fn hub_url(&self, endpoint: &str) -> String {
        format!(
            "{}{}",
            self.config.server.public_url.origin,
            self.url(endpoint)
        )
    }

    fn host_page(&self, status: u16, heading: &str, text: &str) -> Reply {
        let home = self.hub_url("/");
        self.page(
            status,
            heading,
            &pages::message(heading, text, Some((&home, "Go to the hub"))),
            false,
        )
    }

    async fn redeem_code(&self, req: &HubRequest<'_>, host: &str, now: Timestamp) -> Reply {
        let refused = || {
            self.host_page(
                400,
                "Sign-in link not valid",
                "This sign-in link has expired or was already used. Open the app again to sign in.",
            )
        };
        let Some(code) = req.query_param("code").filter(|c| c.len() <= 64) else {
            return refused();
        };
        let store = self.sessions.store();
        // Spent before it is even read: of two redemptions on any instances, one gets it, and a
        // code refused for any reason below cannot be tried again.
        match store
            .first_use(&format!("{}:used", code_note(&code)), CODE_TTL)
            .await
        {
            Ok(true) => {}
            Ok(false) => return refused(),
            Err(_) => return self.store_unavailable(),
        }
        let grant = match store.note(&code_note(&code)).await {
            Ok(Some(grant)) => grant,
            Ok(None) => return refused(),
            Err(_) => return self.store_unavailable(),
        };
        let Ok(grant) = serde_json::from_str::<CodeGrant>(&grant) else {
            return refused();
        };
        // A code taken to another host, or for an app not on this host, is a stolen code.
        let app = self
            .config
            .app(&grant.app)
            .filter(|app| app.host.as_deref() == Some(host));
        let (Some(app), true, true) = (app, grant.host == host, now.0 < grant.expires_at) else {
            tracing::info!(event = "code_refused", app = %grant.app, host, "sign-in code refused");
            return refused();
        };
        let Some(id) = SessionId::parse(&grant.sid) else {
            return refused();
        };
        let noticed = Noticed {
            app: Some(&app.name),
            path: Some("/.hubgate/callback"),
        };
        let session = match self.sessions.live(&id, now, noticed).await {
            Ok(Ok(session)) => session,
            // Signed out between authorize and here: start over at the hub.
            Ok(Err(_)) => return Reply::redirect(302, &self.hub_url("/login")),
            Err(_) => return self.store_unavailable(),
        };
        let next = next::sanitize(&req.query_param("next").unwrap_or_default());
        match self.app_cookies(&session, app, now).await {
            Ok(cookies) => Reply::redirect(302, &next).with_cookies(cookies),
            Err(reply) => reply,
        }
    }

    /// Ends the session this host's session-id cookie names, clears this host's cookies, and
    /// goes on to the hub's sign-out, which clears the hub's.
    async fn logout_on_host(&self, req: &HubRequest<'_>, host: &str, now: Timestamp) -> Reply {
        if req.method == http::Method::POST && self.check_same_origin(req).is_err() {
            return self.host_page(
                403,
                "Sign-out refused",
                "This sign-out did not come from this site.",
            );
        }
        let all = req
            .query_param("all")
            .is_some_and(|v| v == "1" || v == "true");
        let mut hub_logout = self.hub_url("/logout");
        if let Some(id) = self.session_id_cookie(req) {
            if self.provider_exit(&id).await.is_some() {
                // The hub's sign-out (same session, through its hub-login cookie) ends it and then
                // the provider's session: ended here, the hub could no longer find the provider.
                if all {
                    hub_logout.push_str("?all=1");
                }
            } else {
                self.end_session(&id, all, now, "/.hubgate/logout").await;
            }
        }
        let names = &self.cookies.names;
        let mut cleared = vec![self.cookies.clear(&names.session_id, "/")];
        cleared.extend(
            self.config
                .apps
                .iter()
                .filter(|app| app.host.as_deref() == Some(host))
                .map(|app| {
                    self.cookies
                        .clear(&names.app(&app.name), &format!("{}/", app.prefix))
                }),
        );
        Reply::redirect(302, &hub_logout).with_cookies(cleared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_addresses_stay_on_the_apps_host() {
        let hub = PublicUrl {
            https: false,
            origin: "http://127.0.0.1:8000".into(),
        };
        let r = |next: &str| HostReturn::new("grafana.localhost", Some(next.into()), &hub).url();
        assert_eq!(
            r("http://grafana.localhost:8000/d/x?y=1"),
            "http://grafana.localhost:8000/d/x?y=1"
        );
        assert_eq!(r("/d/x"), "http://grafana.localhost/d/x");
        for hostile in [
            "http://evil.example/x",
            "http://grafana.localhost.evil.example/",
            "http://grafana.localhost@evil.example/",
            // Another port of the same name: anyone may listen there.
            "http://grafana.localhost:6666/",
            "https://evil.example\\@grafana.localhost/",
            "//evil.example/",
            "javascript:alert(1)",
        ] {
            let url = r(hostile);
            assert!(
                url == "http://grafana.localhost/" || url.starts_with("http://grafana.localhost/"),
                "{hostile} -> {url}"
            );
        }
    }
}
