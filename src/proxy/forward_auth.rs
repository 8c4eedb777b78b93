//! hubgate as the sign-in of a proxy that already runs in front (nginx, Traefik, Caddy): the proxy
//! asks about each request, hubgate decides with the same [`gate`] as for the apps it proxies, and
//! the proxy forwards. Two ways of asking:
//! - `GET|HEAD <hub>/forward-auth` (Traefik `ForwardAuth`, Caddy `forward_auth`): the original
//!   request in `X-Forwarded-Method/Proto/Host/Uri`; the answer is what a client of a proxied app
//!   would get (302 to sign in for navigations, 401 JSON, 403), or 200 with the identity headers.
//! - `<hub>/auth-request` (nginx `auth_request`, which understands only 2xx, 401 and 403): the
//!   original in `X-Original-URL` or `X-Original-Method` + `Host` + `X-Original-URI`; a refusal is
//!   401 or 403 with `X-Hubgate-Redirect: <sign-in URL>` for nginx's `error_page` to follow.
//!
//! A request that names no configured app is refused (`unknown_app`): never admitted by default.

use http::HeaderMap;
use pingora::http::RequestHeader;
use serde_json::json;

use super::gate::{gate, Gate, GateRequest, Refused};
use super::{answer, routes, upstream, Gateway, RequestCtx};
use crate::auth::verify::Refusal;
use crate::hub::Reply;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// `<hub>/forward-auth`: Traefik, Caddy.
    ForwardAuth,
    /// `<hub>/auth-request`: nginx.
    AuthRequest,
}

impl Asker {
    /// The asker served at a hub endpoint (`/forward-auth`), if any.
    pub fn at(endpoint: &str) -> Option<Asker> {
        match endpoint {
            "/forward-auth" => Some(Asker::ForwardAuth),
            "/auth-request" => Some(Asker::AuthRequest),
            _ => None,
        }
    }
}

/// The request the proxy in front asks about.
#[derive(Debug, PartialEq, Eq)]
pub struct Original {
    pub method: String,
    pub host: String,
    pub path_and_query: String,
}

impl Original {
    fn path(&self) -> &str {
        self.path_and_query
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Reads the original request from the asker's headers; `None` when they do not name one.
pub fn original(asker: Asker, method: &str, headers: &HeaderMap) -> Option<Original> {
    let (method, host, uri) = match asker {
        Asker::ForwardAuth => (
            header(headers, "x-forwarded-method").unwrap_or("GET"),
            header(headers, "x-forwarded-host")?,
            header(headers, "x-forwarded-uri").unwrap_or("/"),
        ),
        Asker::AuthRequest => {
            let method = header(headers, "x-original-method").unwrap_or(method);
            match header(headers, "x-original-url") {
                Some(url) => {
                    let rest = url
                        .strip_prefix("https://")
                        .or_else(|| url.strip_prefix("http://"))?;
                    let split = rest.find('/').unwrap_or(rest.len());
                    let (host, uri) = rest.split_at(split);
                    (method, host, if uri.is_empty() { "/" } else { uri })
                }
                None => (
                    method,
                    header(headers, "host")?,
                    header(headers, "x-original-uri")?,
                ),
            }
        }
    };
    if !uri.starts_with('/') || host.is_empty() {
        return None;
    }
    Some(Original {
        method: method.to_ascii_uppercase(),
        host: host.to_string(),
        path_and_query: uri.to_string(),
    })
}

/// The same for both askers: 403 is one of the two refusals nginx understands.
fn unknown_app(_asker: Asker) -> Reply {
    Reply::json(
        403,
        &json!({"error": "forbidden", "reason": "unknown_app", "message": "No configured app serves this address."}),
    )
}

/// The answer to a forward-auth question: a reply, and for an admitted request the identity
/// headers (whose names the config chooses) for the proxy to copy onto the forwarded request.
pub struct Decision {
    pub reply: Reply,
    pub identity: Vec<(http::HeaderName, String)>,
}

impl From<Reply> for Decision {
    fn from(reply: Reply) -> Self {
        Decision {
            reply,
            identity: Vec::new(),
        }
    }
}

impl Gateway {
    pub(super) async fn forward_auth(
        &self,
        req: &RequestHeader,
        asker: Asker,
        ctx: &mut RequestCtx,
    ) -> Decision {
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        // nginx asks with the original method (a POST is asked about as a POST).
        if asker == Asker::ForwardAuth && !get {
            return Reply::json(405, &json!({"error": "method_not_allowed"})).into();
        }
        let Some(original) = original(asker, req.method.as_str(), &req.headers) else {
            return unknown_app(asker).into();
        };
        if routes::has_dot_segment(original.path()) {
            return unknown_app(asker).into();
        }
        let Some(app) = self.router.app_for(&original.host, original.path()) else {
            tracing::info!(event = "forward_auth_unknown_app", host = %original.host, "forward auth for no configured app");
            ctx.outcome = "forbidden";
            return unknown_app(asker).into();
        };
        ctx.app = Some(app.clone());
        let websocket =
            header(&req.headers, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let request = GateRequest {
            app: &app,
            path: original.path(),
            websocket,
            cookie_headers: super::cookie_headers(req),
            authorization: super::authorization(req),
        };
        let refused = match gate(&self.gatekeepers(), &request, ctx.now).await {
            Gate::Public => {
                ctx.outcome = "public";
                return Reply::empty(200).into();
            }
            Gate::Admit(admitted) => {
                ctx.outcome = "allowed";
                let identity = upstream::identity_values(&app, &admitted.identity)
                    .filter_map(|(name, value)| {
                        Some((http::HeaderName::from_bytes(name).ok()?, value.to_string()))
                    })
                    .collect();
                let mut reply = Reply::empty(200);
                if let Some(renewed) = &admitted.renewed {
                    reply.headers.extend(self.renewal_headers(&app, renewed));
                }
                ctx.identity = Some(admitted.identity);
                ctx.api_token = admitted.api_token;
                return Decision { reply, identity };
            }
            Gate::Refuse(refused) => refused,
        };
        let accept = header(&req.headers, "accept");
        let (reply, outcome) = self.refusal(
            &app,
            &refused,
            Some(&original.host),
            &original.path_and_query,
            answer::is_navigation(&original.method, accept),
        );
        ctx.outcome = outcome;
        match asker {
            Asker::ForwardAuth => reply.into(),
            Asker::AuthRequest => {
                let location = self.sign_in.authorize(
                    &app.config,
                    Some(&original.host),
                    &original.path_and_query,
                );
                for_auth_request(reply, &refused, &location).into()
            }
        }
    }
}

/// nginx's `auth_request` passes on 401 and 403 only (anything else becomes a 500), and follows no
/// redirect: the sign-in URL travels in `X-Hubgate-Redirect`.
fn for_auth_request(reply: Reply, refused: &Refused, location: &str) -> Reply {
    let status = match refused {
        Refused::Forbidden { .. } | Refused::WebSocketDisabled => 403,
        Refused::Verify(Refusal::ConflictingCookies) => 403,
        Refused::Verify(Refusal::Unauthenticated(_) | Refusal::StoreUnavailable) => 401,
        Refused::ApiToken(refusal) => match answer::api_token_status(*refusal) {
            403 => 403,
            _ => 401,
        },
    };
    let body = match refused {
        Refused::ApiToken(refusal) => answer::api_token_json(*refusal),
        Refused::Verify(Refusal::Unauthenticated(reason)) => {
            json!({"error": "unauthenticated", "reason": reason.as_str()})
        }
        Refused::Verify(Refusal::ConflictingCookies) => json!({"error": "conflicting_cookies"}),
        Refused::Verify(Refusal::StoreUnavailable) => json!({"error": "store_unavailable"}),
        Refused::Forbidden { .. } => json!({"error": "forbidden"}),
        Refused::WebSocketDisabled => json!({"error": "websocket_disabled"}),
    };
    let mut answer = Reply::json(status, &body)
        .with_header("X-Hubgate-Redirect", location)
        .with_header("Cache-Control", "no-store");
    answer.headers.extend(
        reply
            .headers
            .into_iter()
            .filter(|(n, _)| *n == "Set-Cookie"),
    );
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_original_request_is_read_the_way_each_proxy_sends_it() {
        let traefik = headers(&[
            ("x-forwarded-method", "post"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "grafana.example.com"),
            ("x-forwarded-uri", "/d/x?y=1"),
        ]);
        assert_eq!(
            original(Asker::ForwardAuth, "GET", &traefik),
            Some(Original {
                method: "POST".into(),
                host: "grafana.example.com".into(),
                path_and_query: "/d/x?y=1".into()
            })
        );
        let nginx = headers(&[("x-original-url", "https://grafana.example.com:8443/a?b")]);
        let o = original(Asker::AuthRequest, "GET", &nginx).unwrap();
        assert_eq!(
            (o.host.as_str(), o.path_and_query.as_str()),
            ("grafana.example.com:8443", "/a?b")
        );
        let nginx = headers(&[("host", "g.example.com"), ("x-original-uri", "/z")]);
        assert_eq!(
            original(Asker::AuthRequest, "PUT", &nginx).map(|o| o.method),
            Some("PUT".into())
        );
        for bad in [
            headers(&[]),
            headers(&[("x-forwarded-host", "g"), ("x-forwarded-uri", "no-slash")]),
        ] {
            assert_eq!(original(Asker::ForwardAuth, "GET", &bad), None);
        }
        assert_eq!(
            original(
                Asker::AuthRequest,
                "GET",
                &headers(&[("x-original-url", "ftp://x/")])
            ),
            None
        );
    }
}
