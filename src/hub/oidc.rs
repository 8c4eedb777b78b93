//! Sign-in through OpenID Connect providers, under `<hub>/oidc/<id>/`:
//! - `start`: to the provider's authorization endpoint (code flow, PKCE S256, state, nonce);
//! - `callback`: the code exchanged, the ID token verified, the claims mapped, the session begun
//!   exactly as a password sign-in begins one;
//! - `backchannel-logout`: the provider says a person signed out there; their sessions end on
//!   every instance (Back-Channel Logout 1.0).
//!
//! Every failure is a page or JSON naming what went wrong, a log line naming the check, and
//! `hubgate_oidc_logins_total{provider,result}`; nothing is stored unless everything verified.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::pages::{self, Banner};
use super::{encode_component, with_query, Hub, HubRequest, NewSignIn, Reply};
use crate::auth::next;
use crate::oidc::claims::{self, Refusal};
use crate::oidc::flow::{PendingSignIn, SIGN_IN_TIME};
use crate::oidc::tokens::{self, Claims};
use crate::oidc::{Metadata, Provider};
use crate::session::{EndReason, ProviderLink, SessionId};
use crate::time::Timestamp;

/// How long a used logout token id is remembered: past any sensible token lifetime.
const JTI_MEMORY: Duration = Duration::from_secs(3600);

/// The token endpoint's answer (only what we use).
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

impl Hub {
    pub(super) async fn serve_oidc(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let rest = req.endpoint.trim_start_matches("/oidc/");
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(provider) = self.providers.get(id) else {
            return self.not_found();
        };
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        match action {
            "start" if get => self.oidc_start(provider, req, now),
            "callback" if get => self.oidc_callback(provider, req, now).await,
            "backchannel-logout" if provider.config.backchannel_logout => {
                if req.method == http::Method::POST {
                    self.backchannel_logout(provider, req, now).await
                } else {
                    Reply::json(405, &json!({"error": "method_not_allowed"}))
                }
            }
            "start" | "callback" => Reply::json(405, &json!({"error": "method_not_allowed"})),
            _ => self.not_found(),
        }
    }

    fn count_login(&self, provider: &Provider, result: &str) {
        self.metrics
            .oidc_logins
            .with_label_values(&[&provider.config.id, result])
            .inc();
    }

    /// Where the provider sends the browser back: the redirect URI operators register.
    fn redirect_uri(&self, provider: &Provider) -> String {
        format!(
            "{}{}",
            self.config.server.public_url.origin,
            self.url(&format!("/oidc/{}/callback", provider.config.id))
        )
    }

    /// The URL of a provider's button (also where `auto_redirect` goes).
    pub(super) fn oidc_start_url(&self, provider: &Provider, next: &str) -> String {
        format!(
            "{}?next={}",
            self.url(&format!("/oidc/{}/start", provider.config.id)),
            encode_component(next)
        )
    }

    fn oidc_start(&self, provider: &Provider, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let next = next::sanitize(&req.query_param("next").unwrap_or_else(|| "/".into()));
        let Some(metadata) = provider.metadata() else {
            tracing::warn!(provider = %provider.config.id, problem = provider.problem().unwrap_or_default(), "sign-in button used while the provider is unavailable");
            let text = format!(
                "The gateway cannot reach {} right now, so signing in through it does not work. Please try again in a minute.",
                provider.config.name
            );
            return self
                .page(
                    503,
                    "Temporarily unavailable",
                    &pages::message(
                        &format!("{} is unavailable", provider.config.name),
                        &text,
                        Some((&self.url("/login"), "Back to sign-in")),
                    ),
                    false,
                )
                .with_header("Retry-After", "30");
        };
        let pending = PendingSignIn::begin(&provider.config.id, &next, now);
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(provider))
            .append_pair("scope", &provider.config.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256")
            .finish();
        let location = with_query(&metadata.authorization_endpoint, &params);
        let name = &self.cookies.names.oidc;
        Reply::redirect(302, &location).with_cookies([self.cookies.set_for_return(
            name,
            &pending.seal(&self.keys, name),
            &self.hub_cookie_path(),
            SIGN_IN_TIME,
        )])
    }

    async fn oidc_callback(
        &self,
        provider: &Provider,
        req: &HubRequest<'_>,
        now: Timestamp,
    ) -> Reply {
        // The pending sign-in is single use: whatever happens next, its cookie goes.
        let clear = self
            .cookies
            .clear(&self.cookies.names.oidc, &self.hub_cookie_path());
        self.callback_outcome(provider, req, now)
            .await
            .unwrap_or_else(|failure| failure)
            .with_cookies([clear])
    }

    async fn callback_outcome(
        &self,
        provider: &Provider,
        req: &HubRequest<'_>,
        now: Timestamp,
    ) -> Result<Reply, Reply> {
        let id = &provider.config.id;
        if let Some(error) = req.query_param("error") {
            return Err(self.provider_said_no(provider, req, &error));
        }
        let pending = req
            .cookie(&self.cookies.names.oidc)
            .and_then(|v| PendingSignIn::open(&self.keys, &self.cookies.names.oidc, v, now))
            .filter(|p| p.provider == *id)
            .ok_or_else(|| {
                self.callback_refused(provider, 400, "state", "no sign-in under way in this browser (cookie missing, expired, or for another provider)")
            })?;
        let state = req.query_param("state").unwrap_or_default();
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(self.callback_refused(
                provider,
                400,
                "state",
                "the state does not match this browser's sign-in",
            ));
        }
        let metadata = provider.metadata().ok_or_else(|| {
            self.callback_refused(provider, 503, "discovery", "the provider is not discovered")
        })?;
        // RFC 9207: a provider that names itself must be the one this sign-in went to.
        if let Some(iss) = req.query_param("iss") {
            if iss != metadata.issuer {
                return Err(self.callback_refused(
                    provider,
                    400,
                    "iss",
                    "the answer names another issuer",
                ));
            }
        }
        let code = req
            .query_param("code")
            .filter(|c| !c.is_empty() && c.len() <= 4096)
            .ok_or_else(|| self.callback_refused(provider, 400, "code", "no authorization code"))?;
        let answer = self
            .exchange_code(provider, &metadata, &code, &pending)
            .await?;
        let id_token = answer.id_token.ok_or_else(|| {
            self.callback_refused(
                provider,
                401,
                "id_token",
                "the token endpoint sent no ID token",
            )
        })?;
        let mut verified = provider
            .verify_token(&metadata, &id_token, true)
            .await
            .and_then(|c| tokens::check_id_token(&c, &pending.nonce).map(|()| c))
            .map_err(|problem| {
                self.callback_refused(provider, 401, "id_token", &problem.to_string())
            })?;
        if let Some(access_token) = &answer.access_token {
            self.add_userinfo(provider, &metadata, access_token, &mut verified)
                .await;
        }
        let person = claims::person(&verified, &provider.config)
            .and_then(|p| claims::admit(&p, &provider.config).map(|()| p))
            .map_err(|refusal| self.sign_in_denied(provider, refusal))?;
        let subject = tokens::subject(&verified).unwrap_or_default().to_string();
        let provider_session = verified
            .get("sid")
            .and_then(Value::as_str)
            .filter(|s| s.len() <= 255)
            .map(str::to_string);
        // Notes first: a session a provider's logout could not find must not begin.
        let lifetime = self.config.session.lifetime;
        let store = self.sessions.store();
        let mut notes = vec![subject_note(id, &subject)];
        notes.extend(provider_session.as_deref().map(|sid| session_note(id, sid)));
        for note in &notes {
            if store.put_note(note, &person.user, lifetime).await.is_err() {
                self.count_login(provider, "error");
                return Err(self.store_unavailable());
            }
        }
        let rechecked = provider.config.recheck_interval.is_some();
        if rechecked && answer.refresh_token.is_none() {
            tracing::warn!(provider = %id, "recheck_interval is set, but the provider sent no refresh token (does it need the offline_access scope?): this session is not rechecked");
        }
        let link = ProviderLink {
            provider: id.clone(),
            subject,
            provider_session,
            id_token: provider.config.end_provider_session.then_some(id_token),
            refresh_token: answer.refresh_token.filter(|_| rechecked),
            checked_at: now,
        };
        let sign_in = NewSignIn {
            user: person.user,
            groups: person.groups,
            email: person.email,
            remember_me: false,
            provider: Some(link),
        };
        let reply = self.begin_session(sign_in, &pending.next, now, req).await;
        let result = if reply.status == 303 {
            "success"
        } else {
            "error"
        };
        self.count_login(provider, result);
        Ok(reply)
    }

    async fn exchange_code(
        &self,
        provider: &Provider,
        metadata: &Metadata,
        code: &str,
        pending: &PendingSignIn,
    ) -> Result<TokenAnswer, Reply> {
        let redirect_uri = self.redirect_uri(provider);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        let body = provider
            .post_form(&metadata.token_endpoint, &form)
            .await
            .map_err(|e| {
                self.callback_refused(
                    provider,
                    400,
                    "code",
                    &format!("the provider refused the code: {e}"),
                )
            })?;
        serde_json::from_slice(&body).map_err(|e| {
            self.callback_refused(
                provider,
                400,
                "code",
                &format!("the token endpoint's answer is not a token response: {e}"),
            )
        })
    }

    /// Claims the ID token left out (many providers put profile claims only in userinfo) are
    /// taken from the userinfo endpoint, if it answers for the same subject.
    async fn add_userinfo(
        &self,
        provider: &Provider,
        metadata: &Metadata,
        access_token: &str,
        claims: &mut Claims,
    ) {
        let config = &provider.config;
        let wanted = [
            &config.user_claim,
            &config.email_claim,
            &config.groups_claim,
        ];
        if wanted.iter().all(|c| claims.contains_key(c.as_str())) {
            return;
        }
        let Some(url) = &metadata.userinfo_endpoint else {
            return;
        };
        let info: Claims = match provider.userinfo(url, access_token).await {
            Ok(body) => serde_json::from_slice(&body).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(provider = %config.id, error = %e, "userinfo failed; using the ID token's claims alone");
                return;
            }
        };
        // OpenID Connect Core §5.3.2: a userinfo answer for another subject must not be used.
        if info.get("sub") != claims.get("sub") {
            tracing::warn!(provider = %config.id, "userinfo answered for another subject; ignored");
            return;
        }
        for (name, value) in info {
            claims.entry(name).or_insert(value);
        }
    }

    fn callback_refused(&self, provider: &Provider, status: u16, check: &str, why: &str) -> Reply {
        let id = &provider.config.id;
        self.count_login(provider, "error");
        tracing::warn!(event = "oidc_login_refused", provider = %id, check, why, "sign-in through the provider refused");
        let text = format!(
            "The answer from {} could not be verified ({check}). Please start again.",
            provider.config.name
        );
        self.page(
            status,
            "Sign-in failed",
            &pages::message(
                "Sign-in failed",
                &text,
                Some((&self.url("/login"), "Back to sign-in")),
            ),
            false,
        )
    }

    /// The provider answered with `error=` (the person declined, or the provider refused).
    fn provider_said_no(&self, provider: &Provider, req: &HubRequest<'_>, error: &str) -> Reply {
        let id = &provider.config.id;
        let result = if error == "access_denied" {
            "denied"
        } else {
            "error"
        };
        self.count_login(provider, result);
        // The provider's words, but only as an error code: nothing it sends becomes page markup.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(event = "oidc_login_refused", provider = %id, check = "provider", error = %code, "the provider did not sign the person in");
        let text = match code.as_str() {
            "access_denied" => format!(
                "Sign-in at {} was cancelled or refused.",
                provider.config.name
            ),
            _ => format!("{} could not sign you in ({code}).", provider.config.name),
        };
        self.render_login(req, 200, "/", "", Some(Banner::error(text)))
    }

    fn sign_in_denied(&self, provider: &Provider, refusal: Refusal) -> Reply {
        let id = &provider.config.id;
        self.count_login(provider, "denied");
        let text = match refusal {
            Refusal::NotAllowed(text) => text,
            Refusal::Unusable(why) => {
                format!(
                    "{} sent no account name hubgate can use ({why}).",
                    provider.config.name
                )
            }
        };
        tracing::info!(event = "oidc_login_denied", provider = %id, why = %text, "sign-in through the provider denied");
        self.page(
            403,
            "No access",
            &pages::message(
                "No access",
                &text,
                Some((&self.url("/login"), "Back to sign-in")),
            ),
            false,
        )
    }

    async fn backchannel_logout(
        &self,
        provider: &Provider,
        req: &HubRequest<'_>,
        now: Timestamp,
    ) -> Reply {
        let id = &provider.config.id;
        let count = |result: &str| {
            self.metrics
                .backchannel_logouts
                .with_label_values(&[id, result])
                .inc()
        };
        let invalid = |why: &str| {
            count("invalid");
            tracing::warn!(event = "backchannel_logout_refused", provider = %id, why, "back-channel logout refused");
            Reply::json(
                400,
                &json!({"error": "invalid_request", "error_description": why}),
            )
        };
        let Some(token) = req.form_field("logout_token") else {
            return invalid("no logout_token");
        };
        let Some(metadata) = provider.metadata() else {
            return Reply::json(503, &json!({"error": "temporarily_unavailable"}));
        };
        let names = match provider
            .verify_token(&metadata, &token, false)
            .await
            .and_then(|claims| tokens::check_logout_token(&claims))
        {
            Ok(names) => names,
            Err(problem) => return invalid(&problem.to_string()),
        };
        let store = self.sessions.store();
        match store
            .first_use(&format!("oidc:{id}:jti:{}", names.jti), JTI_MEMORY)
            .await
        {
            Ok(true) => {}
            Ok(false) => return invalid("jti: this logout token was used already"),
            Err(_) => return Reply::json(503, &json!({"error": "temporarily_unavailable"})),
        }
        let user_note = match (&names.provider_session, &names.subject) {
            (Some(sid), _) => session_note(id, sid),
            (None, Some(sub)) => subject_note(id, sub),
            (None, None) => return invalid("sub and sid: neither is present"),
        };
        let user = match store.note(&user_note).await {
            Ok(user) => user,
            Err(_) => return Reply::json(503, &json!({"error": "temporarily_unavailable"})),
        };
        let ended = match user {
            Some(user) => {
                let matches = |link: &ProviderLink| {
                    link.provider == *id
                        && names.subject.as_ref().is_none_or(|s| *s == link.subject)
                        && names
                            .provider_session
                            .as_ref()
                            .is_none_or(|sid| Some(sid) == link.provider_session.as_ref())
                };
                let result = self
                    .sessions
                    .end_matching(&user, EndReason::ProviderLogout, now, |s| {
                        s.provider.as_deref().is_some_and(matches)
                    })
                    .await;
                match result {
                    Ok(n) => n,
                    Err(_) => {
                        return Reply::json(503, &json!({"error": "temporarily_unavailable"}))
                    }
                }
            }
            None => 0,
        };
        count(if ended > 0 { "ended" } else { "unknown" });
        tracing::info!(event = "backchannel_logout", provider = %id, ended, "the provider signed a person out");
        Reply::json(200, &json!({"ended": ended}))
    }

    /// With `end_provider_session`: where sign-out sends the browser so the provider's own
    /// session ends too (RP-Initiated Logout), coming back to the sign-in page.
    pub(super) async fn provider_exit(&self, id: &SessionId) -> Option<String> {
        if !self.providers.iter().any(|p| p.config.end_provider_session) {
            return None;
        }
        let Ok(crate::session::Lookup::Live(session)) = self.sessions.store().lookup(id).await
        else {
            return None;
        };
        let link = session.provider?;
        let provider = self.providers.get(&link.provider)?;
        if !provider.config.end_provider_session {
            return None;
        }
        let endpoint = provider.metadata()?.end_session_endpoint.clone()?;
        let back = format!(
            "{}{}?reason=logged_out",
            self.config.server.public_url.origin,
            self.url("/login")
        );
        let mut params = form_urlencoded::Serializer::new(String::new());
        if let Some(hint) = &link.id_token {
            params.append_pair("id_token_hint", hint);
        }
        params
            .append_pair("post_logout_redirect_uri", &back)
            .append_pair("client_id", &provider.config.client_id);
        Some(with_query(&endpoint, &params.finish()))
    }

    /// The banners of `provider_logout` and `provider_revoked`, naming the provider when it is
    /// clear which.
    pub(super) fn provider_banner(&self, reason: EndReason) -> Banner {
        let only = (self.providers.len() == 1)
            .then(|| self.providers.iter().next())
            .flatten()
            .map(|p| p.config.name.as_str());
        match reason {
            EndReason::ProviderRevoked => Banner::warn(format!(
                "{} no longer accepts your account.",
                only.unwrap_or("Your identity provider")
            )),
            _ => Banner::warn(format!(
                "You were signed out at {}.",
                only.unwrap_or("your identity provider")
            )),
        }
    }
}

/// The note naming the user a provider's subject signed in as.
fn subject_note(provider: &str, subject: &str) -> String {
    format!("oidc:{provider}:sub:{}", encode_component(subject))
}

/// The note naming the user a provider's session belongs to.
fn session_note(provider: &str, sid: &str) -> String {
    format!("oidc:{provider}:sid:{}", encode_component(sid))
}
