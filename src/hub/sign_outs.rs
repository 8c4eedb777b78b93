//! Recent sign-outs and other devices: what the session page, `/hub/api/session` and the admin API
//! (`GET <hub>/api/admin/sessions?user=`, `GET <hub>/api/admin/ends?user=&limit=`) tell, and
//! "Sign out that device" (`POST <hub>/session/logout-device`, reason `logout_device`).

use std::fmt::Write;

use serde_json::{json, Value};

use super::pages::esc;
use super::{Hub, HubRequest, Reply};
use crate::auth::cookies::{self, Found};
use crate::session::recent_ends::{session_ref, EndRecord, FrontEndReport, RecentEnds, KEPT};
use crate::session::{EndReason, Noticed, Session, SessionId, StoreError};
use crate::time::{human_duration, utc_text, Timestamp};

/// The form field naming the device to sign out (a session ref, never an id).
const DEVICE_FIELD: &str = "session";

/// How a 403 from one of the session page's forms reads.
pub(super) struct Refused<'a> {
    pub heading: &'a str,
    /// The text for a form posted from another site.
    pub from_elsewhere: &'a str,
}

fn report_json(r: &FrontEndReport) -> Value {
    json!({
        "type": r.kind.as_str(),
        "at": r.at.as_secs(),
        "session": r.session,
        "message": r.message,
        "location": r.location,
        "idle_minutes": r.idle_minutes,
        "app": r.app,
        "device": r.device,
        "ip": r.ip,
    })
}

fn end_json(e: &EndRecord, recent: &RecentEnds) -> Value {
    json!({
        "reason": e.reason.as_str(),
        "at": e.at.as_secs(),
        "session": e.session,
        "session_age_seconds": e.session_age_seconds,
        "idle_seconds": e.idle_seconds,
        "app": e.app,
        "path": e.path,
        "device": e.device,
        "ip": e.ip,
        "reports": recent.reports_of(&e.session).map(report_json).collect::<Vec<_>>(),
    })
}

/// The ends (each with the reports its session's front ends sent) and, apart, every report.
pub fn recent_json(recent: &RecentEnds) -> (Value, Value) {
    (
        recent.ends.iter().map(|e| end_json(e, recent)).collect(),
        recent.reports.iter().map(report_json).collect(),
    )
}

fn device_json(s: &Session) -> Value {
    json!({
        "session": session_ref(&s.id),
        "device": s.from.device,
        "ip": s.from.ip,
        "signed_in_at": s.created_at.as_secs(),
        "last_seen": s.last_seen.as_secs(),
        "expires_at": s.expires_at.as_secs(),
        "remember_me": s.remember_me,
        "provider": s.provider.as_deref().map(|l| l.provider.as_str()),
    })
}

/// A reason in words, for the tables.
fn reason_words(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Logout => "signed out",
        EndReason::LogoutAll => "signed out everywhere",
        EndReason::IdleTimeout => "no activity",
        EndReason::Expired => "time limit reached",
        EndReason::Revoked => "ended by an administrator",
        EndReason::KeyRemoved => "signing key retired",
        EndReason::ProviderLogout => "signed out at the identity provider",
        EndReason::ProviderRevoked => "refused by the identity provider",
        EndReason::LogoutDevice => "signed out from another device",
        EndReason::UserRemoved => "account removed",
    }
}

impl Hub {
    /// The session a call of `session.js` comes with: the hub-login cookie at the hub, the
    /// session-id cookie on an app host (the hub's cookies never reach it). A hub-login cookie
    /// that is sent but names nobody (two copies, another key) is not replaced by the session id.
    pub(super) fn script_session_id(&self, req: &HubRequest<'_>) -> Option<SessionId> {
        let names = &self.cookies.names;
        match cookies::lookup(req.cookie_headers.iter().copied(), &names.hub_login) {
            Found::Missing => self.session_id_cookie(req),
            _ => self.hub_login_id(req),
        }
    }

    pub(super) async fn live_for_script(
        &self,
        req: &HubRequest<'_>,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Result<Session, Option<EndReason>>, StoreError> {
        let noticed = Noticed {
            app: None,
            path: Some(req.endpoint),
        };
        self.sessions.live(id, now, noticed).await
    }

    /// The user's recent sign-outs, younger than 30 days; empty when there is no history or the
    /// store does not answer (the page still shows the session).
    pub(super) async fn recent_sign_outs(
        &self,
        user: &str,
        now: Timestamp,
        limit: usize,
    ) -> RecentEnds {
        match self.sessions.history() {
            Some(history) => history
                .recent(user)
                .await
                .map(|r| r.within(now, limit))
                .unwrap_or_default(),
            None => RecentEnds::default(),
        }
    }

    /// The user's live sessions other than `session`, newest first.
    pub(super) async fn other_devices(&self, session: &Session) -> Vec<Session> {
        let mut others: Vec<Session> = self
            .sessions
            .store()
            .user_sessions(&session.user)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.id != session.id)
            .collect();
        others.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        others
    }

    /// What `/api/session` adds for `session.js` and the panel.
    pub(super) async fn script_facts(&self, session: &Session, now: Timestamp) -> Value {
        let recent = self.recent_sign_outs(&session.user, now, KEPT).await;
        let (ends, reports) = recent_json(&recent);
        let others: Vec<Value> = self
            .other_devices(session)
            .await
            .iter()
            .map(device_json)
            .collect();
        let settings = &self.config.session;
        json!({
            "session": session_ref(&session.id),
            "device": session.from.device,
            "warn_before_seconds": settings.warn_before.as_secs(),
            "poll_seconds": settings.poll_interval.as_secs().max(1),
            "recent_sign_outs": ends,
            "front_end_reports": reports,
            "other_devices": others,
        })
    }

    /// The 401 of `/api/session` for a session that has ended: the reason, the banner the sign-in
    /// page will show, and (if recorded) when it ended and how long it had been idle.
    pub(super) async fn ended_json(
        &self,
        id: Option<&SessionId>,
        reason: Option<EndReason>,
        now: Timestamp,
    ) -> Value {
        let banner_key = reason.map_or("no_session", EndReason::banner_key);
        let mut end = None;
        if let (Some(id), Some(history)) = (id, self.sessions.history()) {
            if let Ok(Some(user)) = history.ended_owner(id).await {
                let recent = self.recent_sign_outs(&user, now, KEPT).await;
                end = recent.end_of(&session_ref(id)).cloned();
            }
        }
        json!({
            "signed_in": false,
            "error": "unauthenticated",
            "reason": banner_key,
            "end_reason": reason.map(EndReason::as_str),
            "message": reason.and_then(|_| self.reason_banner(banner_key)).map(|b| b.text),
            "ended_at": end.as_ref().map(|e| e.at.as_secs()),
            "idle_seconds": end.as_ref().map(|e| e.idle_seconds),
            "session_age_seconds": end.as_ref().map(|e| e.session_age_seconds),
            "login_url": self.hub_login_url(reason),
            "poll_seconds": self.config.session.poll_interval.as_secs().max(1),
        })
    }

    /// Where `session.js` sends the browser once the session has ended: the sign-in page with
    /// the banner that explains the end (an absolute URL, for app hosts).
    fn hub_login_url(&self, reason: Option<EndReason>) -> String {
        let mut url = format!(
            "{}{}",
            self.config.server.public_url.origin,
            self.url("/login")
        );
        if let Some(reason) = reason {
            url.push_str("?reason=");
            url.push_str(reason.banner_key());
        }
        url
    }

    /// The session page's second card: other devices (each with its sign-out form) and recent
    /// sign-outs.
    pub(super) async fn devices_and_sign_outs_html(
        &self,
        session: &Session,
        csrf: &str,
        now: Timestamp,
    ) -> String {
        let mut html = String::from("<div class=\"card\"><h2>Other devices</h2>");
        let others = self.other_devices(session).await;
        if others.is_empty() {
            html.push_str("<p class=\"muted\" id=\"no-other-devices\">You are signed in on this device only.</p>");
        } else {
            let action = self.url("/session/logout-device");
            html.push_str("<table id=\"other-devices\"><thead><tr><th>Device</th><th>Signed in</th><th>Last seen</th><th></th></tr></thead><tbody>");
            for s in &others {
                let _ = write!(
                    html,
                    "<tr><td>{device}<br><span class=\"muted\">{ip}</span></td><td>{signed_in} ago</td><td>{seen} ago</td>\
<td><form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"{DEVICE_FIELD}\" value=\"{sref}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\" class=\"small\">Sign out that device</button></form></td></tr>",
                    device = esc(&s.from.device),
                    ip = esc(&s.from.ip),
                    signed_in = esc(&human_duration(now.since(s.created_at))),
                    seen = esc(&human_duration(now.since(s.last_seen))),
                    action = esc(&action),
                    sref = esc(&session_ref(&s.id)),
                    csrf = esc(csrf),
                );
            }
            html.push_str("</tbody></table>");
        }
        html.push_str("<h2>Recent sign-outs</h2>");
        let recent = self.recent_sign_outs(&session.user, now, KEPT).await;
        if recent.ends.is_empty() && recent.reports.is_empty() {
            html.push_str(
                "<p class=\"muted\" id=\"no-sign-outs\">No sign-outs in the last 30 days.</p>",
            );
        } else {
            html.push_str("<table id=\"recent-sign-outs\"><thead><tr><th>When</th><th>Why</th><th>Idle · age</th><th>Where</th></tr></thead><tbody>");
            for e in &recent.ends {
                let place = match (&e.app, &e.path) {
                    (Some(app), Some(path)) => format!("{app} {path}"),
                    (None, Some(path)) => path.clone(),
                    (Some(app), None) => app.clone(),
                    (None, None) => "—".to_string(),
                };
                let mut reports = String::new();
                for r in recent.reports_of(&e.session) {
                    let _ = write!(
                        reports,
                        "<br><span class=\"muted\">front end: {} {}</span>",
                        esc(r.kind.as_str()),
                        esc(&r.message)
                    );
                }
                let _ = write!(
                    html,
                    "<tr><td>{when}</td><td>{why}{reports}</td><td>{idle} · {age}</td><td>{place}<br><span class=\"muted\">{device}</span></td></tr>",
                    when = esc(&utc_text(e.at)),
                    why = esc(reason_words(e.reason)),
                    idle = esc(&human_duration(std::time::Duration::from_secs(e.idle_seconds))),
                    age = esc(&human_duration(std::time::Duration::from_secs(e.session_age_seconds))),
                    place = esc(&place),
                    device = esc(&e.device),
                );
            }
            html.push_str("</tbody></table>");
        }
        html.push_str("</div>");
        html
    }

    /// "Sign out that device": ends one of the signed-in user's other sessions.
    pub(super) async fn logout_device(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let session_page = self.url("/session");
        let refused = Refused {
            heading: "Sign-out refused",
            from_elsewhere: "This sign-out did not come from this site.",
        };
        let session = match self.session_form_owner(req, &refused, now).await {
            Ok(session) => session,
            Err(answer) => return answer,
        };
        let wanted = req.form_field(DEVICE_FIELD).unwrap_or_default();
        let target = self
            .other_devices(&session)
            .await
            .into_iter()
            .find(|s| session_ref(&s.id) == wanted);
        let Some(target) = target else {
            // Already gone (signed out meanwhile), or not one of this user's sessions.
            return Reply::redirect(303, &session_page);
        };
        let noticed = Noticed {
            app: None,
            path: Some("/session/logout-device"),
        };
        match self
            .sessions
            .end(&target.id, EndReason::LogoutDevice, now, noticed)
            .await
        {
            Ok(_) => {
                tracing::info!(event = "logout_device", user = %session.user, device = %target.from.device, session = %target.id, "signed out another device");
                Reply::redirect(303, &session_page)
            }
            Err(_) => self.store_unavailable(),
        }
    }

    /// The signed-in person behind a form of the session page: the form came from this site with
    /// its anti-CSRF field, and the session lives. Otherwise the answer: a 403 page in `refused`'s
    /// words, or to sign in.
    pub(super) async fn session_form_owner(
        &self,
        req: &HubRequest<'_>,
        refused: &Refused<'_>,
        now: Timestamp,
    ) -> Result<Session, Reply> {
        if self.check_same_origin(req).is_err() {
            return Err(self.refused_page(refused.heading, refused.from_elsewhere));
        }
        if !self.csrf_matches(req, &req.form_field("csrf").unwrap_or_default()) {
            return Err(self.refused_page(
                refused.heading,
                "The form expired. Open your session page again.",
            ));
        }
        match self.signed_in(req, now).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(ended)) => Err(self.login_redirect(&self.url("/session"), ended)),
            Err(_) => Err(self.store_unavailable()),
        }
    }

    fn refused_page(&self, heading: &str, text: &str) -> Reply {
        self.page(
            403,
            "Refused",
            &super::pages::message(
                heading,
                text,
                Some((&self.url("/session"), "Open your session page")),
            ),
            false,
        )
    }

    /// The user an admin query names (`?user=`), once its bearer token is checked.
    pub(super) fn admin_user(&self, req: &HubRequest<'_>) -> Result<String, Reply> {
        self.admin_authorized(req)?;
        req.query_param("user")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                Reply::json(
                    400,
                    &json!({"error": "bad_request", "hint": "add ?user=NAME"}),
                )
            })
    }

    /// `GET <hub>/api/admin/sessions?user=NAME`: that user's live sessions.
    pub(super) async fn admin_sessions(&self, req: &HubRequest<'_>) -> Reply {
        let user = match self.admin_user(req) {
            Ok(user) => user,
            Err(refused) => return refused,
        };
        match self.sessions.store().user_sessions(&user).await {
            Ok(sessions) => Reply::json(
                200,
                &json!({"user": user, "sessions": sessions.iter().map(device_json).collect::<Vec<_>>()}),
            ),
            Err(_) => Reply::json(503, &json!({"error": "store_unavailable"})),
        }
    }

    /// `GET <hub>/api/admin/ends?user=NAME&limit=N`: that user's recent sign-outs (N at most 50,
    /// default 20; no more than 20 are kept).
    pub(super) async fn admin_ends(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        let user = match self.admin_user(req) {
            Ok(user) => user,
            Err(refused) => return refused,
        };
        let limit = match req.query_param("limit").map(|l| l.parse::<usize>()) {
            None => KEPT,
            Some(Ok(n)) if (1..=50).contains(&n) => n,
            Some(_) => {
                return Reply::json(
                    400,
                    &json!({"error": "bad_request", "hint": "limit is a number from 1 to 50"}),
                )
            }
        };
        let Some(history) = self.sessions.history() else {
            return Reply::json(
                200,
                &json!({"user": user, "ends": [], "front_end_reports": []}),
            );
        };
        match history.recent(&user).await {
            Ok(recent) => {
                let (ends, reports) = recent_json(&recent.within(now, limit));
                Reply::json(
                    200,
                    &json!({"user": user, "ends": ends, "front_end_reports": reports}),
                )
            }
            Err(_) => Reply::json(503, &json!({"error": "store_unavailable"})),
        }
    }
}
