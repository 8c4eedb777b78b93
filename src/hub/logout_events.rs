//! `POST <hub>/api/logout-event`: a front end reports a sign-out it saw — `{type, message,
//! location, idle_minutes}` — and the gateway adds who sent it (user, session, app, IP, device),
//! writes one log line, counts `hubgate_client_logout_events_total{type}` and keeps the report
//! with the user's recent sign-outs. Limits: 4 KiB (413), well-formed JSON with a known `type`
//! (400), same-site only (403), 30 a minute per session and per IP (429). Never a 5xx: a report
//! the store cannot keep is still logged and counted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::{Hub, HubRequest, Reply};
use crate::session::device;
use crate::session::recent_ends::{session_ref, FrontEndReport, ReportType};
use crate::session::{Lookup, SessionId};
use crate::time::Timestamp;

/// Larger than any honest report (a message, a URL and a number).
pub const MAX_BODY: usize = 4 * 1024;
/// Reports a minute per session and per client address.
pub const PER_MINUTE: u32 = 30;
/// Longest message and location kept (the rest is cut, not refused).
const MAX_TEXT: usize = 500;

/// A report as the front end sent it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutEvent {
    pub kind: ReportType,
    pub message: String,
    pub location: String,
    pub idle_minutes: Option<f64>,
}

/// Why a report body is refused (each a 400 with its own `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadEvent {
    NotJson,
    UnknownType,
}

impl BadEvent {
    fn code(self) -> &'static str {
        match self {
            BadEvent::NotJson => "bad_json",
            BadEvent::UnknownType => "unknown_type",
        }
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    idle_minutes: Option<f64>,
}

/// Parses a report body: a JSON object whose `type` is one of [`ReportType::ALL`]; `message` and
/// `location` strings (cut to 500 characters, control characters dropped so a log line stays one
/// line; the location without its query), `idle_minutes` a finite number of zero or more. Anything else is refused.
pub fn parse(body: &[u8]) -> Result<LogoutEvent, BadEvent> {
    let wire: Wire = serde_json::from_slice(body).map_err(|_| BadEvent::NotJson)?;
    let kind = ReportType::parse(&wire.kind).ok_or(BadEvent::UnknownType)?;
    let idle_minutes = match wire.idle_minutes {
        Some(m) if m.is_finite() && m >= 0.0 => Some(m),
        Some(_) => return Err(BadEvent::NotJson),
        None => None,
    };
    Ok(LogoutEvent {
        kind,
        message: clean(wire.message.as_deref().unwrap_or_default()),
        // A query or fragment may carry a token or a one-time code: never logged or kept.
        location: clean(
            wire.location
                .as_deref()
                .unwrap_or_default()
                .split(['?', '#'])
                .next()
                .unwrap_or_default(),
        ),
        idle_minutes,
    })
}

fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

/// Counts reports per key in fixed one-minute windows, on this instance (a front end talks to
/// whichever instance the balancer picks; a flood is stopped at each one it reaches).
pub struct EventRate {
    counts: moka::sync::Cache<String, Arc<AtomicU32>>,
}

impl Default for EventRate {
    fn default() -> Self {
        EventRate {
            counts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }
    }
}

impl EventRate {
    /// Counts one report for each key; `false` when any of them is over [`PER_MINUTE`].
    pub fn allow(&self, keys: &[String]) -> bool {
        let mut allowed = true;
        for key in keys {
            let count = self.counts.get_with(key.clone(), Arc::default);
            if count.fetch_add(1, Ordering::Relaxed) >= PER_MINUTE {
                allowed = false;
            }
        }
        allowed
    }
}

/// Who sent a report, as far as the gateway can tell from the cookies.
struct Sender {
    user: Option<String>,
    session: Option<SessionId>,
}

impl Hub {
    pub(super) async fn logout_event(
        &self,
        req: &HubRequest<'_>,
        app_host: Option<&str>,
        now: Timestamp,
    ) -> Reply {
        if req.body.len() > MAX_BODY {
            return Reply::json(413, &json!({"error": "body_too_large", "limit": MAX_BODY}));
        }
        if let Err(why) = self.check_same_origin(req) {
            tracing::warn!(client = %req.client_ip, why, "logout event refused: cross-site");
            return Reply::json(403, &json!({"error": "cross_site"}));
        }
        let id = self.script_session_id(req);
        let mut keys = vec![format!("ip:{}", req.client_ip)];
        keys.extend(id.as_ref().map(|id| format!("session:{}", id.as_str())));
        if !self.event_rate.allow(&keys) {
            return Reply::json(
                429,
                &json!({"error": "too_many_events", "limit_per_minute": PER_MINUTE}),
            )
            .with_header("Retry-After", "60");
        }
        let event = match parse(&req.body) {
            Ok(event) => event,
            Err(bad) => {
                return Reply::json(
                    400,
                    &json!({"error": bad.code(), "types": ReportType::ALL.map(ReportType::as_str)}),
                )
            }
        };
        let sender = self.sender(id).await;
        let app = app_host
            .and_then(|host| {
                self.config
                    .apps
                    .iter()
                    .find(|a| a.host.as_deref() == Some(host))
            })
            .or_else(|| self.app_of_location(&event.location))
            .map(|a| a.name.clone());
        self.metrics
            .client_logout_events
            .with_label_values(&[event.kind.as_str()])
            .inc();
        let report = FrontEndReport {
            kind: event.kind,
            at: now,
            session: sender.session.as_ref().map(session_ref).unwrap_or_default(),
            message: event.message,
            location: event.location,
            idle_minutes: event.idle_minutes,
            app,
            device: device::describe(req.user_agent),
            ip: req.client_ip.clone(),
        };
        tracing::info!(
            event = "client_logout",
            r#type = report.kind.as_str(),
            user = sender.user.as_deref().unwrap_or("-"),
            session = %sender.session.as_ref().map_or("-".to_string(), |s| s.to_string()),
            app = report.app.as_deref().unwrap_or("-"),
            location = %report.location,
            idle_minutes = report.idle_minutes.unwrap_or(-1.0),
            client = %report.ip,
            device = %report.device,
            message = %report.message,
            "front end reported a sign-out: {}", report.kind.as_str()
        );
        let stored = match (&sender.user, self.sessions.history()) {
            (Some(user), Some(history)) => match history.record_report(user, &report).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(user, error = %e, "logout event not kept: store unavailable");
                    false
                }
            },
            _ => false,
        };
        Reply::json(202, &json!({"accepted": true, "stored": stored}))
    }

    /// The user behind the report's session: its own while it lives, or the one it belonged to
    /// if it ended lately (the report of a dialog comes after the end). A store that does not
    /// answer leaves the report anonymous.
    async fn sender(&self, id: Option<SessionId>) -> Sender {
        let Some(id) = id else {
            return Sender {
                user: None,
                session: None,
            };
        };
        let user = match self.sessions.store().lookup(&id).await {
            Ok(Lookup::Live(session)) => Some(session.user),
            Ok(_) => match self.sessions.history() {
                Some(history) => history.ended_owner(&id).await.ok().flatten(),
                None => None,
            },
            Err(_) => None,
        };
        Sender {
            user,
            session: Some(id),
        }
    }

    /// The hub-host app whose prefix the reported location is under, if any.
    fn app_of_location(&self, location: &str) -> Option<&crate::config::AppConfig> {
        let path = match location.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => location,
        };
        self.config
            .apps
            .iter()
            .filter(|a| a.host.is_none())
            .find(|a| a.owns_path(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse_only_with_a_known_type() {
        let event = parse(br#"{"type":"token_expired","message":"401 from /api\n","location":"/apps/a/x?code=secret","idle_minutes":23.5}"#).unwrap();
        assert_eq!(event.location, "/apps/a/x");
        assert_eq!(event.kind, ReportType::TokenExpired);
        assert_eq!(event.message, "401 from /api");
        assert_eq!(event.idle_minutes, Some(23.5));
        assert_eq!(parse(br#"{"type":"unknown"}"#).unwrap().message, "");
        for (body, why) in [
            (&b"not json"[..], BadEvent::NotJson),
            (b"[]", BadEvent::NotJson),
            (br#"{"message":"x"}"#, BadEvent::NotJson),
            (br#"{"type":"reboot"}"#, BadEvent::UnknownType),
            (br#"{"type":7}"#, BadEvent::NotJson),
            (
                br#"{"type":"user_action","idle_minutes":-1}"#,
                BadEvent::NotJson,
            ),
            (br#"{"type":"user_action","message":5}"#, BadEvent::NotJson),
        ] {
            assert_eq!(parse(body), Err(why), "{}", String::from_utf8_lossy(body));
        }
        let long = format!(
            r#"{{"type":"auth_error","message":"{}"}}"#,
            "x".repeat(3000)
        );
        assert_eq!(parse(long.as_bytes()).unwrap().message.len(), MAX_TEXT);
    }

    #[test]
    fn the_rate_counts_each_key() {
        let rate = EventRate::default();
        let keys = ["ip:1".to_string(), "session:a".to_string()];
        for _ in 0..PER_MINUTE {
            assert!(rate.allow(&keys));
        }
        assert!(!rate.allow(&keys));
        assert!(!rate.allow(&["ip:1".to_string()]));
        assert!(rate.allow(&["ip:2".to_string(), "session:b".to_string()]));
    }
}
