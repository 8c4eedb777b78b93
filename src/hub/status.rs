//! What the hub tells about a session (HTML and JSON), health and readiness, and the admin API.

use serde_json::{json, Value};
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::pages::{self, AppRow, SessionView};
use super::{Hub, HubRequest, Reply};
use crate::session::{EndReason, Session};
use crate::time::{human_duration, Timestamp};

/// Facts about a session at `now`, shared by the page and the JSON.
struct SessionFacts {
    age: std::time::Duration,
    idle_left: Option<std::time::Duration>,
    expires_in: std::time::Duration,
}

impl Hub {
    fn facts(&self, session: &Session, now: Timestamp) -> SessionFacts {
        SessionFacts {
            age: now.since(session.created_at),
            idle_left: self
                .sessions
                .idle_timeout()
                .map(|idle| idle.saturating_sub(now.since(session.last_seen))),
            expires_in: now.until(session.expires_at),
        }
    }

    pub(super) async fn session_page(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session = match self.signed_in(req, now).await {
            Ok(Ok(session)) => session,
            Ok(Err(ended)) => return self.login_redirect(&self.url("/session"), ended),
            Err(_) => return self.store_unavailable(),
        };
        let facts = self.facts(&session, now);
        let apps = self
            .config
            .apps
            .iter()
            .map(|app| AppRow {
                name: app.name.clone(),
                href: format!("{}/", app.prefix),
                allowed: app.allows(&session.user, session.groups.iter().map(String::as_str)),
                token_left: session.app_tokens.get(&app.name).map(|exp| now.until(*exp)),
            })
            .collect();
        let logout = self.url("/logout");
        let logout_all = self.url("/logout?all=1");
        let view = SessionView {
            user: &session.user,
            email: &session.email,
            groups: &session.groups,
            age: human_duration(facts.age),
            idle_left: facts.idle_left.map(human_duration),
            expires_in: human_duration(facts.expires_in),
            remember_me: session.remember_me,
            signed_in_through: session
                .provider
                .as_deref()
                .and_then(|link| self.providers.get(&link.provider))
                .map(|p| p.config.name.as_str()),
            apps,
            logout_href: &logout,
            logout_all_href: &logout_all,
        };
        let (csrf, csrf_cookie) = self.form_csrf(req);
        let body = pages::session_page(&view)
            + &self.devices_and_sign_outs_html(&session, &csrf, now).await
            + &self.api_tokens_html(&session, &csrf, now).await;
        self.page(200, "Your session", &body, true)
            .with_cookies([csrf_cookie])
    }

    /// The session as `session.js` and API clients read it. Never activity, never a renewal: a
    /// page that only polls must not keep an idle session alive.
    pub(super) async fn session_api(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let id = self.script_session_id(req);
        let looked_up = match &id {
            Some(id) => self.live_for_script(req, id, now).await,
            // Signed out in another tab: the cookies are gone, the signed-out marker is not.
            None if req.cookie(&self.cookies.names.signed_out).is_some() => {
                Ok(Err(Some(EndReason::Logout)))
            }
            None => Ok(Err(None)),
        };
        let session = match looked_up {
            Ok(Ok(session)) => session,
            Ok(Err(ended)) => {
                // session.js is told with a 200: a 401 would be a console error on every app page
                // at each sign-out, which is what the script exists to explain.
                let status = if req.script_header == Some("1") {
                    200
                } else {
                    401
                };
                return Reply::json(status, &self.ended_json(id.as_ref(), ended, now).await);
            }
            Err(_) => return Reply::json(503, &json!({"error": "store_unavailable"})),
        };
        let facts = self.facts(&session, now);
        let apps: Vec<_> = self
            .config
            .apps
            .iter()
            .map(|app| {
                let exp = session.app_tokens.get(&app.name);
                json!({
                    "name": app.name,
                    "allowed": app.allows(&session.user, session.groups.iter().map(String::as_str)),
                    "token_expires_at": exp.map(|e| e.as_secs()),
                    "token_seconds_left": exp.map(|e| now.until(*e).as_secs()),
                })
            })
            .collect();
        let mut answer = json!({
                "signed_in": true,
                "user": session.user,
                "groups": session.groups,
                "email": session.email,
                "created_at": session.created_at.as_secs(),
                "session_age_seconds": facts.age.as_secs(),
                "last_seen": session.last_seen.as_secs(),
                "idle_timeout_seconds": self.sessions.idle_timeout().map(|d| d.as_secs()),
                "idle_seconds_left": facts.idle_left.map(|d| d.as_secs()),
                "expires_at": session.expires_at.as_secs(),
                "expires_in_seconds": facts.expires_in.as_secs(),
                "remember_me": session.remember_me,
                "provider": session.provider.as_deref().map(|link| link.provider.as_str()),
                "apps": apps,
        });
        if let (Some(answer), Value::Object(extra)) = (
            answer.as_object_mut(),
            self.script_facts(&session, now).await,
        ) {
            answer.extend(extra);
        }
        Reply::json(200, &answer)
    }

    /// 503 when the store does not answer: nothing works then. A provider that cannot be reached
    /// is named (`"status": "degraded"`) but keeps the answer 200: signed-in people and other
    /// ways in still work, and pulling every instance out of rotation would stop them too.
    pub(super) async fn ready(&self) -> Reply {
        let store = self.sessions.store();
        let providers: serde_json::Map<String, serde_json::Value> = self
            .providers
            .iter()
            .map(|p| {
                let state = p
                    .problem()
                    .map_or_else(|| "ready".to_string(), |why| format!("unavailable: {why}"));
                (p.config.id.clone(), json!(state))
            })
            .collect();
        let degraded = self.providers.iter().any(|p| p.problem().is_some());
        match store.ping().await {
            Ok(()) => Reply::json(
                200,
                &json!({"status": if degraded { "degraded" } else { "ready" }, "store": store.kind(), "providers": providers}),
            ),
            Err(e) => Reply::json(
                503,
                &json!({"status": "unavailable", "store": store.kind(), "reason": e.to_string(), "providers": providers}),
            ),
        }
    }

    /// The admin API's bearer-token check: `Err` is the answer to send instead.
    pub(super) fn admin_authorized(&self, req: &HubRequest<'_>) -> Result<(), Reply> {
        let Some(expected) = &self.config.hub.admin_token else {
            return Err(Reply::json(
                404,
                &json!({"error": "admin_api_disabled", "hint": format!("set ${} to enable it", self.config.hub.admin_token_env)}),
            ));
        };
        let presented = req
            .authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Compared as SHA-256 digests: equal length always, so the time taken says nothing about
        // the token, not even its length.
        let digest = |t: &str| sha2::Sha256::digest(t.as_bytes());
        if !bool::from(
            digest(presented)
                .as_slice()
                .ct_eq(digest(expected).as_slice()),
        ) {
            tracing::warn!(client = %req.client_ip, "admin API: missing or wrong bearer token");
            return Err(Reply::json(401, &json!({"error": "unauthorized"}))
                .with_header("WWW-Authenticate", "Bearer"));
        }
        Ok(())
    }

    pub(super) async fn admin_revoke(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        if let Err(refused) = self.admin_authorized(req) {
            return refused;
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let result = match (
            body.get("user").and_then(|u| u.as_str()),
            body.get("all").and_then(|a| a.as_bool()),
        ) {
            (Some(user), None) => self.sessions.end_user(user, EndReason::Revoked, now).await,
            (None, Some(true)) => self.sessions.end_all(EndReason::Revoked, now).await,
            _ => {
                return Reply::json(
                    400,
                    &json!({"error": "bad_request", "hint": "send {\"user\":\"NAME\"} or {\"all\":true}"}),
                )
            }
        };
        match result {
            Ok(revoked) => {
                tracing::info!(event = "admin_revoke", target = %body, revoked, "sessions revoked by an administrator");
                Reply::json(200, &json!({"revoked": revoked}))
            }
            Err(_) => Reply::json(503, &json!({"error": "store_unavailable"})),
        }
    }
}
