//! Authorize (mint an app cookie for a signed-in user) and sign-out (end the session everywhere
//! and clear every cookie the gateway set).

use std::time::Duration;

use super::host_sign_in::HostReturn;
use super::pages;
use super::{encode_component, Hub, HubRequest, Reply};
use crate::auth::next;
use crate::auth::tokens::AppClaims;
use crate::auth::Identity;
use crate::config::AppConfig;
use crate::session::{EndReason, Noticed, Session, SessionId};
use crate::time::Timestamp;

/// How long the sign-in page keeps saying "you have signed out" to a tab that comes back.
const SIGNED_OUT_MARKER_AGE: Duration = Duration::from_secs(24 * 3600);

impl Hub {
    pub(super) async fn authorize(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let app_name = req.query_param("app").unwrap_or_default();
        let Some(app) = self.config.app(&app_name) else {
            return self.page(
                404,
                "Unknown app",
                &pages::message(
                    "Unknown app",
                    "There is no app by that name.",
                    Some((&self.url("/"), "Go to the hub")),
                ),
                false,
            );
        };
        // On its own host an app's `next` is a full URL there; the callback on that host
        // finishes the sign-in with a code (the hub's cookies cannot reach that host).
        let on_host = app.host.as_deref().map(|host| {
            HostReturn::new(
                host,
                req.query_param("next"),
                &self.config.server.public_url,
            )
        });
        let next = match &on_host {
            Some(target) => target.url(),
            None => next::sanitize(
                &req.query_param("next")
                    .unwrap_or_else(|| format!("{}/", app.prefix)),
            ),
        };
        let session = match self.signed_in(req, now).await {
            Ok(Ok(session)) => session,
            Ok(Err(ended)) => {
                let here = format!(
                    "{}?app={}&next={}",
                    self.url("/authorize"),
                    encode_component(&app.name),
                    encode_component(&next)
                );
                return self.login_redirect(&here, ended);
            }
            Err(_) => return self.store_unavailable(),
        };
        if !app.allows(&session.user, session.groups.iter().map(String::as_str)) {
            tracing::info!(event = "forbidden", user = %session.user, app = %app.name, "user may not use this app");
            self.metrics
                .requests
                .with_label_values(&[&app.name, "forbidden"])
                .inc();
            let text = format!("You are signed in as {}, but your account may not use {}. Ask an administrator for access.", session.user, app.name);
            return self.page(
                403,
                "No access",
                &pages::message(
                    "No access to this app",
                    &text,
                    Some((&self.url("/"), "See the apps you can use")),
                ),
                false,
            );
        }
        if let Some(target) = on_host {
            return self.send_code(&session, app, &target, now).await;
        }
        match self.app_cookies(&session, app, now).await {
            Ok(cookies) => Reply::redirect(302, &next).with_cookies(cookies),
            Err(reply) => reply,
        }
    }

    /// A fresh app token for a live, allowed session, as the app cookie and (re-sent so the
    /// token's `sid` always has its partner) the session-id cookie; `Err` when the store fails.
    pub(super) async fn app_cookies(
        &self,
        session: &Session,
        app: &AppConfig,
        now: Timestamp,
    ) -> Result<[String; 2], Reply> {
        let identity = Identity::shared(&session.user, &session.groups, &session.email);
        let expires_at = self.policy.expiry(now, session.expires_at);
        let token = self.keys.sign(&AppClaims::new(
            &identity,
            &session.id,
            &app.name,
            now,
            expires_at,
        ));
        let store = self.sessions.store();
        // Opening an app is activity; and the session page lists each app's token.
        if store.touch(&session.id, now).await.is_err()
            || store
                .record_token(&session.id, &app.name, expires_at)
                .await
                .is_err()
        {
            return Err(self.store_unavailable());
        }
        let max_age = session.remember_me.then(|| now.until(session.expires_at));
        let names = &self.cookies.names;
        Ok([
            self.cookies.set(
                &names.app(&app.name),
                &token,
                &format!("{}/", app.prefix),
                max_age,
            ),
            self.cookies
                .set(&names.session_id, session.id.as_str(), "/", max_age),
        ])
    }

    pub(super) async fn logout(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        if req.method == http::Method::POST && self.check_same_origin(req).is_err() {
            return self.page(
                403,
                "Refused",
                &pages::message(
                    "Sign-out refused",
                    "This sign-out did not come from this site.",
                    None,
                ),
                false,
            );
        }
        let all = req
            .query_param("all")
            .is_some_and(|v| v == "1" || v == "true");
        // The hub-login cookie names the session at the hub; at the root alias `/logout` only the
        // session-id cookie (path `/`) arrives, and that is its whole job.
        let id = self
            .hub_login_id(req)
            .or_else(|| self.session_id_cookie(req));
        let mut provider_exit = None;
        if let Some(id) = id {
            provider_exit = self.provider_exit(&id).await;
            self.end_session(&id, all, now, "/logout").await;
        }
        // Ours ended first; then, if configured, the provider's own session (it comes back to
        // the same sign-in page).
        let location =
            provider_exit.unwrap_or_else(|| format!("{}?reason=logged_out", self.url("/login")));
        Reply::redirect(302, &location).with_cookies(self.sign_out_cookies())
    }

    /// Ends one session (`all`: every session of its user), wherever the sign-out came from.
    pub(super) async fn end_session(&self, id: &SessionId, all: bool, now: Timestamp, path: &str) {
        let noticed = Noticed {
            app: None,
            path: Some(path),
        };
        let result = if all {
            match self.sessions.store().lookup(id).await {
                Ok(crate::session::Lookup::Live(session)) => self
                    .sessions
                    .end_user(&session.user, EndReason::LogoutAll, now)
                    .await
                    .map(|n| n > 0),
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            }
        } else {
            self.sessions.end(id, EndReason::Logout, now, noticed).await
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "sign-out could not reach the session store; cookies cleared, session left to expire");
        }
    }

    /// Clears every session cookie, each at its own path, and leaves the signed-out marker.
    fn sign_out_cookies(&self) -> Vec<String> {
        let names = &self.cookies.names;
        let mut cleared = vec![
            self.cookies
                .clear(&names.hub_login, &self.hub_cookie_path()),
            self.cookies.clear(&names.session_id, "/"),
            self.cookies.set(
                &names.signed_out,
                "1",
                &self.hub_cookie_path(),
                Some(SIGNED_OUT_MARKER_AGE),
            ),
        ];
        cleared.extend(self.config.apps.iter().map(|app| {
            self.cookies
                .clear(&names.app(&app.name), &format!("{}/", app.prefix))
        }));
        cleared
    }
}
