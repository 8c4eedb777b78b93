//! API tokens at the hub: the signed-in person makes, lists and revokes their own
//! (`POST/GET <hub>/api/tokens`, `DELETE <hub>/api/tokens/<id>`, and the session page's card),
//! and administrators list and revoke anyone's (`GET/DELETE <hub>/api/admin/tokens?user=`).
//! The secret is in the answer that makes a token, and nowhere else ever again.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};

use super::pages::esc;
use super::sign_outs::Refused;
use super::{Hub, HubRequest, Reply};
use crate::api_tokens::{ApiToken, CreateError, Issued, Owner, Request};
use crate::session::Session;
use crate::time::{human_duration, utc_text, Timestamp};

/// Lifetimes the session page offers (those above `api_tokens.max_lifetime` are left out).
const OFFERED_DAYS: [u64; 5] = [1, 7, 30, 90, 365];
const DAY: Duration = Duration::from_secs(24 * 3600);

fn token_json(t: &ApiToken, now: Timestamp) -> Value {
    json!({
        "id": t.id,
        "user": t.user,
        "name": t.name,
        "apps": t.apps,
        "created_at": t.created_at.as_secs(),
        "expires_at": t.expires_at.as_secs(),
        "expired": now >= t.expires_at,
    })
}

fn issued_json(issued: &Issued, now: Timestamp) -> Value {
    let mut value = token_json(&issued.token, now);
    value["token"] = json!(issued.secret);
    value
}

fn bad_request(field: &str, hint: &str) -> Reply {
    Reply::json(
        400,
        &json!({"error": "bad_request", "field": field, "hint": hint}),
    )
}

fn store_unavailable_json() -> Reply {
    Reply::json(503, &json!({"error": "store_unavailable"})).with_header("Retry-After", "30")
}

/// What `POST <hub>/api/tokens` sends: `{"name": "ci", "apps": ["grafana"], "expires_in": "30d"}`.
fn request_from_json(body: &[u8]) -> Result<Request, Reply> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        bad_request(
            "body",
            "send JSON: {\"name\": \"ci\", \"apps\": [\"app\"], \"expires_in\": \"30d\"}",
        )
    })?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let apps = match value.get("apps").and_then(Value::as_array) {
        Some(apps) => apps
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_request("apps", "a list of app names"))?,
        None => return Err(bad_request("apps", "a list of app names")),
    };
    let lifetime = match value.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            crate::config::parse_duration(text).map_err(|why| bad_request("expires_in", &why))?,
        ),
        Some(_) => return Err(bad_request("expires_in", "a duration such as \"30d\"")),
    };
    Ok(Request {
        name: name.to_string(),
        apps,
        lifetime,
    })
}

/// What the session page's form sends: `name`, an `app` per checked box, `days`.
fn request_from_form(body: &[u8]) -> Request {
    let mut request = Request {
        name: String::new(),
        apps: Vec::new(),
        lifetime: None,
    };
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "name" => request.name = value.into_owned(),
            "app" => request.apps.push(value.into_owned()),
            "days" => request.lifetime = value.parse::<u64>().ok().map(|d| DAY * d as u32),
            _ => {}
        }
    }
    request
}

impl Hub {
    fn owner_of(session: &Session) -> Owner<'_> {
        Owner {
            user: &session.user,
            groups: &session.groups,
            email: &session.email,
            from_provider: session.provider.is_some(),
        }
    }

    async fn make_token(
        &self,
        session: &Session,
        request: &Request,
        now: Timestamp,
    ) -> Result<Issued, CreateError> {
        let may_use = |app: &str| {
            self.config
                .app(app)
                .is_some_and(|a| a.allows(&session.user, session.groups.iter().map(String::as_str)))
        };
        self.api_tokens
            .create(&Self::owner_of(session), request, may_use, now)
            .await
    }

    /// The signed-in person behind a JSON call, or the answer that refuses it. A call that
    /// changes something must come from this site.
    async fn token_owner(
        &self,
        req: &HubRequest<'_>,
        changes: bool,
        now: Timestamp,
    ) -> Result<Session, Reply> {
        if !self.api_tokens.enabled() {
            return Err(Reply::json(
                404,
                &json!({"error": "api_tokens_disabled", "hint": "api_tokens.enabled = false"}),
            ));
        }
        if changes && self.check_same_origin(req).is_err() {
            tracing::warn!(client = %req.client_ip, "API token change refused: not from this site");
            return Err(Reply::json(403, &json!({"error": "cross_site"})));
        }
        match self.signed_in(req, now).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(reason)) => Err(Reply::json(
                401,
                &json!({"error": "unauthenticated", "reason": reason.map_or("no_session", |r| r.banner_key()), "login_url": self.url("/login")}),
            )),
            Err(_) => Err(store_unavailable_json()),
        }
    }

    /// `GET <hub>/api/tokens`: the signed-in person's tokens (never their secrets).
    pub(super) async fn api_tokens_list(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session = match self.token_owner(req, false, now).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        match self.api_tokens.list(&session.user).await {
            Ok(tokens) => Reply::json(
                200,
                &json!({"tokens": tokens.iter().map(|t| token_json(t, now)).collect::<Vec<_>>()}),
            ),
            Err(_) => store_unavailable_json(),
        }
    }

    /// `POST <hub>/api/tokens` with JSON: a new token, its secret in the answer (201).
    pub(super) async fn api_tokens_create(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session = match self.token_owner(req, true, now).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        // A form from another site cannot send this type without a preflight, never granted.
        if !req.content_type.is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        }) {
            return Reply::json(
                415,
                &json!({"error": "unsupported_media_type", "hint": "Content-Type: application/json"}),
            );
        }
        let asked = match request_from_json(&req.body) {
            Ok(asked) => asked,
            Err(refused) => return refused,
        };
        match self.make_token(&session, &asked, now).await {
            Ok(issued) => Reply::json(201, &issued_json(&issued, now)),
            Err(CreateError::Invalid(why)) => bad_request(why.field, &why.hint),
            Err(CreateError::Store(_)) => store_unavailable_json(),
        }
    }

    /// `DELETE <hub>/api/tokens/<id>`: revokes one of the signed-in person's tokens.
    pub(super) async fn api_token_delete(
        &self,
        req: &HubRequest<'_>,
        id: &str,
        now: Timestamp,
    ) -> Reply {
        let session = match self.token_owner(req, true, now).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        match self
            .api_tokens
            .revoke(&session.user, id, &session.user)
            .await
        {
            Ok(true) => Reply::json(200, &json!({"revoked": 1})),
            Ok(false) => Reply::json(
                404,
                &json!({"error": "not_found", "hint": "no token of yours has this id"}),
            ),
            Err(_) => store_unavailable_json(),
        }
    }

    /// `GET <hub>/api/admin/tokens?user=NAME`: that user's tokens.
    pub(super) async fn admin_tokens(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let user = match self.admin_user(req) {
            Ok(user) => user,
            Err(refused) => return refused,
        };
        match self.api_tokens.list(&user).await {
            Ok(tokens) => Reply::json(
                200,
                &json!({"user": user, "tokens": tokens.iter().map(|t| token_json(t, now)).collect::<Vec<_>>()}),
            ),
            Err(_) => store_unavailable_json(),
        }
    }

    /// `DELETE <hub>/api/admin/tokens?user=NAME[&id=ID]`: one of that user's tokens, or all.
    pub(super) async fn admin_tokens_revoke(&self, req: &HubRequest<'_>) -> Reply {
        let user = match self.admin_user(req) {
            Ok(user) => user,
            Err(refused) => return refused,
        };
        let revoked = match req.query_param("id") {
            Some(id) => self
                .api_tokens
                .revoke(&user, &id, "admin")
                .await
                .map(usize::from),
            None => self.api_tokens.revoke_user(&user, "admin").await,
        };
        match revoked {
            Ok(revoked) => Reply::json(200, &json!({"user": user, "revoked": revoked})),
            Err(_) => store_unavailable_json(),
        }
    }

    /// The session page's card: the person's tokens, each with its revoke button, and the form
    /// that makes one for the apps they may use.
    pub(super) async fn api_tokens_html(
        &self,
        session: &Session,
        csrf: &str,
        now: Timestamp,
    ) -> String {
        if !self.api_tokens.enabled() {
            return String::new();
        }
        let mut html = String::from(
            "<div class=\"card\" id=\"api-tokens\"><h2>API tokens</h2>\
<p class=\"muted\">For scripts: send <code>Authorization: Bearer &lt;token&gt;</code> to an app. \
A token opens only the apps it names, as you, until it expires or you revoke it.</p>",
        );
        let tokens = self
            .api_tokens
            .list(&session.user)
            .await
            .unwrap_or_default();
        if tokens.is_empty() {
            html.push_str("<p class=\"muted\" id=\"no-api-tokens\">You have no API tokens.</p>");
        } else {
            let action = esc(&self.url("/session/tokens/revoke"));
            html.push_str("<table id=\"api-token-list\"><thead><tr><th>Name</th><th>Apps</th><th>Expires</th><th></th></tr></thead><tbody>");
            for t in &tokens {
                let expires = if now >= t.expires_at {
                    "expired".to_string()
                } else {
                    format!("in {}", human_duration(now.until(t.expires_at)))
                };
                let _ = write!(
                    html,
                    "<tr data-token=\"{id}\"><td>{name}</td><td>{apps}</td><td title=\"{at}\">{expires}</td>\
<td><form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"small\">Revoke</button></form></td></tr>",
                    id = esc(&t.id),
                    name = esc(&t.name),
                    apps = esc(&t.apps.join(", ")),
                    at = esc(&utc_text(t.expires_at)),
                    expires = esc(&expires),
                    csrf = esc(csrf),
                );
            }
            html.push_str("</tbody></table>");
        }
        html.push_str(&self.new_token_form(session, csrf));
        html.push_str("</div>");
        html
    }

    fn new_token_form(&self, session: &Session, csrf: &str) -> String {
        let mut apps = String::new();
        for app in &self.config.apps {
            if app.allows(&session.user, session.groups.iter().map(String::as_str)) {
                let _ = write!(
                    apps,
                    "<label class=\"check\"><input type=\"checkbox\" name=\"app\" value=\"{name}\"> {name}</label>",
                    name = esc(&app.name)
                );
            }
        }
        let policy = self.api_tokens.policy();
        let mut lifetimes = String::new();
        for days in OFFERED_DAYS
            .iter()
            .filter(|d| DAY * **d as u32 <= policy.max_lifetime)
        {
            let selected = if DAY * *days as u32 == policy.default_lifetime {
                " selected"
            } else {
                ""
            };
            let unit = if *days == 1 { "day" } else { "days" };
            let _ = write!(
                lifetimes,
                "<option value=\"{days}\"{selected}>{days} {unit}</option>"
            );
        }
        format!(
            "<h2>New API token</h2><form method=\"post\" action=\"{action}\" id=\"new-api-token\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"token-name\">Name</label><input id=\"token-name\" name=\"name\" type=\"text\" maxlength=\"64\" required placeholder=\"nightly report\">\
<label>Apps</label>{apps}\
<label for=\"token-days\">Expires after</label><select id=\"token-days\" name=\"days\">{lifetimes}</select>\
<button type=\"submit\">Create token</button></form>",
            action = esc(&self.url("/session/tokens")),
            csrf = esc(csrf),
        )
    }

    /// The session page's "Create token": a page showing the secret, this once.
    pub(super) async fn session_token_create(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session = match self.token_form_owner(req, now).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        let asked = request_from_form(&req.body);
        let back = self.url("/session");
        let text = match self.make_token(&session, &asked, now).await {
            Ok(issued) => {
                let body = format!(
                    "<div class=\"card\"><h1>Your new API token</h1>\
<p class=\"lead\">Copy it now: it will not be shown again. It opens {apps} as {user} until {until}.</p>\
<code class=\"secret\" id=\"new-token\">{secret}</code>\
<p class=\"muted\">Use it as <code>curl -H \"Authorization: Bearer $TOKEN\" …</code></p>\
<a class=\"button secondary\" href=\"{back}\">Back to your session</a></div>",
                    apps = esc(&issued.token.apps.join(", ")),
                    user = esc(&issued.token.user),
                    until = esc(&utc_text(issued.token.expires_at)),
                    secret = esc(&issued.secret),
                    back = esc(&back),
                );
                return self.page(201, "New API token", &body, true);
            }
            Err(CreateError::Invalid(why)) => why.hint,
            Err(CreateError::Store(_)) => return self.store_unavailable(),
        };
        self.page(
            400,
            "Token not created",
            &super::pages::message(
                "Token not created",
                &text,
                Some((&back, "Back to your session")),
            ),
            false,
        )
    }

    /// The session page's "Revoke".
    pub(super) async fn session_token_revoke(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session = match self.token_form_owner(req, now).await {
            Ok(session) => session,
            Err(refused) => return refused,
        };
        let id = req.form_field("id").unwrap_or_default();
        match self
            .api_tokens
            .revoke(&session.user, &id, &session.user)
            .await
        {
            Ok(_) => Reply::redirect(303, &self.url("/session")),
            Err(_) => self.store_unavailable(),
        }
    }

    /// The signed-in person behind one of the session page's token forms: same site, the form's
    /// CSRF token, a live session.
    async fn token_form_owner(
        &self,
        req: &HubRequest<'_>,
        now: Timestamp,
    ) -> Result<Session, Reply> {
        if !self.api_tokens.enabled() {
            return Err(self.not_found());
        }
        let refused = Refused {
            heading: "Refused",
            from_elsewhere: "This form did not come from this site.",
        };
        self.session_form_owner(req, &refused, now).await
    }
}
