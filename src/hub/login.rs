//! Sign-in: the form (GET) and its submission (POST), with the anti-CSRF token, the same-origin
//! check, brute-force lockout and session creation.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::lockout::Refused;
use super::pages::{self, Banner, LoginForm};
use super::{Hub, HubRequest, Reply};
use crate::auth::cookies::{self, Found};
use crate::auth::hub_login;
use crate::auth::next;
use crate::auth::password;
use crate::session::{device, ProviderLink, Session, SessionId, SignedInFrom};
use crate::time::Timestamp;

/// The anti-CSRF cookie lives long enough to fill in a form, no longer.
const CSRF_COOKIE_AGE: Duration = Duration::from_secs(3600);

/// The sign-in POST's fields.
#[derive(Default)]
struct LoginSubmission {
    username: String,
    password: String,
    remember_me: bool,
    next: String,
    csrf: String,
}

impl LoginSubmission {
    fn parse(body: &[u8]) -> Self {
        let mut s = LoginSubmission::default();
        for (key, value) in form_urlencoded::parse(body) {
            match key.as_ref() {
                "username" => s.username = value.trim().to_string(),
                "password" => s.password = value.into_owned(),
                "remember_me" => s.remember_me = !value.is_empty(),
                "next" => s.next = value.into_owned(),
                "csrf" => s.csrf = value.into_owned(),
                _ => {}
            }
        }
        s
    }
}

fn new_csrf_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Who is signing in, once verified: what a session begins with.
pub(super) struct NewSignIn {
    pub user: String,
    pub groups: Vec<String>,
    pub email: String,
    pub remember_me: bool,
    pub provider: Option<ProviderLink>,
}

impl Hub {
    pub(super) async fn login_form(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let next = next::sanitize(&req.query_param("next").unwrap_or_else(|| "/".into()));
        // A tab coming back after a sign-out elsewhere carries no session, only the marker.
        let reason = req.query_param("reason").or_else(|| {
            req.cookie(&self.cookies.names.signed_out)
                .map(|_| "logged_out".to_string())
        });
        if reason.is_none() {
            if let Ok(Ok(_)) = self.signed_in(req, now).await {
                return Reply::redirect(302, &next);
            }
            if let Some(provider) = self.auto_redirect_provider() {
                return Reply::redirect(302, &self.oidc_start_url(provider, &next));
            }
        }
        let banner = reason
            .as_deref()
            .and_then(|r| self.reason_banner(r))
            .or_else(|| self.conflict_banner(req));
        self.render_login(req, 200, &next, "", banner)
    }

    /// Two different copies of one of our cookies mean someone else set one (cookie tossing from
    /// a sibling domain); none is used, and the person is told why sign-in keeps failing.
    fn conflict_banner(&self, req: &HubRequest<'_>) -> Option<Banner> {
        let names = &self.cookies.names;
        let conflicting = [&names.hub_login, &names.session_id, &names.csrf]
            .into_iter()
            .any(|name| {
                cookies::lookup(req.cookie_headers.iter().copied(), name) == Found::Conflicting
            });
        conflicting.then(|| {
            Banner::error(
                "Your browser holds two different copies of a sign-in cookie for this site, so \
                 neither is trusted. Another site under the same domain may have set one. Clear \
                 this site's cookies, then sign in.",
            )
        })
    }

    /// The form, bound to an anti-CSRF cookie (reused while the browser still has a valid one).
    pub(super) fn render_login(
        &self,
        req: &HubRequest<'_>,
        status: u16,
        next: &str,
        username: &str,
        banner: Option<Banner>,
    ) -> Reply {
        let (token, csrf_cookie) = self.form_csrf(req);
        let action = self.url("/login");
        let providers: Vec<(String, String)> = self
            .providers
            .iter()
            .map(|p| (self.oidc_start_url(p, next), p.config.name.clone()))
            .collect();
        let form = pages::login_form(&LoginForm {
            action: &action,
            next,
            csrf_token: &token,
            username,
            banner,
            password: self.config.hub.users_file.is_some(),
            providers: &providers,
        });
        self.page(status, "Sign in", &form, false)
            .with_cookies([csrf_cookie])
    }

    /// A hub form's anti-CSRF token (the browser's current one while still valid) and the
    /// cookie that binds it to this browser.
    pub(super) fn form_csrf(&self, req: &HubRequest<'_>) -> (String, String) {
        let existing = req.cookie(&self.cookies.names.csrf).filter(|t| {
            t.len() == 32
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        let token = existing.map(str::to_string).unwrap_or_else(new_csrf_token);
        let cookie = self.cookies.set(
            &self.cookies.names.csrf,
            &token,
            &self.hub_cookie_path(),
            Some(CSRF_COOKIE_AGE),
        );
        (token, cookie)
    }

    /// Whether a form's submitted token is the one its browser's cookie holds.
    pub(super) fn csrf_matches(&self, req: &HubRequest<'_>, submitted: &str) -> bool {
        let expected = req.cookie(&self.cookies.names.csrf).unwrap_or_default();
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    }

    /// With `auto_redirect`, one provider and no password form, the sign-in page has nothing to
    /// offer but that provider's button: the browser goes there directly.
    fn auto_redirect_provider(&self) -> Option<&crate::oidc::Provider> {
        let hub = &self.config.hub;
        let only = (hub.auto_redirect && hub.users_file.is_none() && self.providers.len() == 1)
            .then(|| self.providers.iter().next())
            .flatten()?;
        Some(only)
    }

    pub(super) async fn login_submit(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        if self.config.hub.users_file.is_none() {
            return self.page(
                404,
                "Password sign-in is off",
                &pages::message(
                    "Password sign-in is off",
                    "This gateway signs people in through an identity provider only.",
                    Some((&self.url("/login"), "Open the sign-in page")),
                ),
                false,
            );
        }
        let form = LoginSubmission::parse(&req.body);
        let next = next::sanitize(&form.next);
        if let Err(why) = self.check_same_origin(req) {
            tracing::warn!(client = %req.client_ip, why, "sign-in refused: cross-site request");
            return self.page(
                403,
                "Refused",
                &pages::message(
                    "Sign-in refused",
                    "This sign-in did not come from the gateway's own page.",
                    Some((&self.url("/login"), "Open the sign-in page")),
                ),
                false,
            );
        }
        if !self.csrf_matches(req, &form.csrf) {
            let banner = self
                .conflict_banner(req)
                .unwrap_or_else(|| Banner::error("The sign-in form expired. Please try again."));
            return self.render_login(req, 403, &next, &form.username, Some(banner));
        }
        let user_key = format!("user:{}", form.username);
        let ip_key = format!("ip:{}", req.client_ip);
        let attempt = match self.lockout.begin(&[&user_key, &ip_key], now).await {
            Ok(attempt) => attempt,
            Err(Refused::StoreUnavailable) => return self.store_unavailable(),
            Err(Refused::Wait(wait)) => {
                self.metrics.logins.with_label_values(&["locked_out"]).inc();
                let seconds = wait.as_secs().max(1);
                let text = format!(
                    "Too many failed sign-ins. Try again in {}.",
                    pages::duration_words(Duration::from_secs(seconds))
                );
                return self
                    .render_login(req, 429, &next, &form.username, Some(Banner::error(text)))
                    .with_header("Retry-After", seconds.to_string());
            }
        };
        // An unknown user is checked against a dummy hash: the same argon2 work as a real user,
        // so the answer's timing does not tell which user names exist.
        let user = self.config.users.get(&form.username).cloned();
        let verified = password::verify_off_thread(
            user.as_ref().map(|u| u.password_hash.clone()),
            form.password,
        )
        .await;
        let Some(user) = user.filter(|_| verified) else {
            self.metrics.logins.with_label_values(&["failure"]).inc();
            attempt.failed(now).await;
            // `password_checks` (argon2 verifications so far, process-wide) shows that every
            // failure, unknown user or not, cost one.
            tracing::info!(event = "login_failed", user = %form.username, client = %req.client_ip, password_checks = password::checks_run(), "sign-in failed");
            return self.render_login(
                req,
                401,
                &next,
                &form.username,
                Some(Banner::error("Wrong user name or password.")),
            );
        };
        attempt.succeeded(&user_key, now).await;

        let sign_in = NewSignIn {
            user: user.name.clone(),
            groups: user.groups.clone(),
            email: user.email.clone(),
            remember_me: form.remember_me,
            provider: None,
        };
        self.begin_session(sign_in, &next, now, req).await
    }

    /// Begins a session for someone whose sign-in was verified (password or provider): a new
    /// session id, the hub-login and session-id cookies, and 303 to `next`.
    pub(super) async fn begin_session(
        &self,
        sign_in: NewSignIn,
        next: &str,
        now: Timestamp,
        req: &HubRequest<'_>,
    ) -> Reply {
        let lifetime = if sign_in.remember_me {
            self.config.session.remember_me_lifetime
        } else {
            self.config.session.lifetime
        };
        // A new session id at every sign-in: an id planted in the browser beforehand is never adopted.
        let session = Session {
            id: SessionId::generate_for(&sign_in.user),
            user: sign_in.user,
            groups: sign_in.groups,
            email: sign_in.email,
            created_at: now,
            expires_at: now.plus(lifetime),
            last_seen: now,
            remember_me: sign_in.remember_me,
            app_tokens: BTreeMap::new(),
            provider: sign_in.provider.map(Box::new),
            from: Box::new(SignedInFrom {
                device: device::describe(req.user_agent),
                ip: req.client_ip.clone(),
            }),
        };
        if self.sessions.store().create(&session).await.is_err() {
            return self.store_unavailable();
        }
        self.metrics.logins.with_label_values(&["success"]).inc();
        let provider = session
            .provider
            .as_ref()
            .map_or("-", |l| l.provider.as_str());
        tracing::info!(event = "login", user = %session.user, session = %session.id, remember_me = session.remember_me, provider, client = %req.client_ip, device = %session.from.device, "signed in");

        let max_age = session.remember_me.then_some(lifetime);
        let names = &self.cookies.names;
        let sealed = hub_login::seal(&self.keys, &names.hub_login, &session.id);
        Reply::redirect(303, next).with_cookies([
            self.cookies
                .set(&names.hub_login, &sealed, &self.hub_cookie_path(), max_age),
            self.cookies
                .set(&names.session_id, session.id.as_str(), "/", max_age),
            self.cookies.clear(&names.csrf, &self.hub_cookie_path()),
            self.cookies
                .clear(&names.signed_out, &self.hub_cookie_path()),
        ])
    }

    /// Refuses a form post from another site: by `Sec-Fetch-Site` when the browser sends it, and
    /// by `Origin`, which must be the public origin or this request's own host.
    pub(super) fn check_same_origin(&self, req: &HubRequest<'_>) -> Result<(), &'static str> {
        if let Some(site) = req.sec_fetch_site {
            if !matches!(site, "same-origin" | "none") {
                return Err("Sec-Fetch-Site is not same-origin");
            }
        }
        let Some(origin) = req.origin else {
            return Ok(());
        };
        let public = &self.config.server.public_url;
        let scheme = if public.https { "https" } else { "http" };
        let own_host = req
            .host
            .map(|h| format!("{scheme}://{}", h.to_ascii_lowercase()));
        let origin = origin.to_ascii_lowercase();
        if origin == public.origin || Some(&origin) == own_host.as_ref() {
            Ok(())
        } else {
            Err("Origin is another site")
        }
    }
}
