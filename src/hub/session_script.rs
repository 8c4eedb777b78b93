//! `session.js` and the endpoints it talks to: the script itself (`<hub>/static/session.js`, and
//! `/.hubgate/static/session.js` on an app host), and `POST <hub>/api/session/touch` — "Stay
//! signed in", the only call of the script that counts as activity. Reading the session
//! (`GET <hub>/api/session`, every 30 s at most) never does: a tab left open must not keep an idle
//! session alive.

use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::json;
use sha2::Digest;

use super::{Hub, HubRequest, Reply};
use crate::time::Timestamp;

/// The script, served as is: no build step, no dependencies.
pub const SCRIPT: &str = include_str!("session.js");

/// The header `session.js` sets on its calls (value `1`).
pub const SCRIPT_HEADER: &str = "x-hubgate-script";

/// `"<version>-<digest>"`: a new release or a changed script is a new ETag.
static ETAG: LazyLock<String> = LazyLock::new(|| {
    let digest = sha2::Sha256::digest(SCRIPT.as_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{}-{short}\"", env!("CARGO_PKG_VERSION"))
});

impl Hub {
    pub(super) fn session_script(&self, req: &HubRequest<'_>) -> Reply {
        let etag = ETAG.as_str();
        let cache = ("Cache-Control", "public, max-age=300");
        if req.if_none_match.is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        }) {
            return Reply::empty(304)
                .with_header("ETag", etag)
                .with_header(cache.0, cache.1);
        }
        Reply {
            status: 200,
            headers: vec![("Content-Type", "text/javascript; charset=utf-8".into())],
            body: Bytes::from_static(SCRIPT.as_bytes()),
        }
        .with_header("ETag", etag)
        .with_header(cache.0, cache.1)
    }

    /// "Stay signed in": activity, from the script only. A cross-site page could make the
    /// browser POST here with its cookies; the same-origin check and the custom header (which no
    /// other site can set without a CORS preflight the gateway never grants) stop it.
    pub(super) async fn session_touch(&self, req: &HubRequest<'_>, now: Timestamp) -> Reply {
        if self.check_same_origin(req).is_err() || req.script_header != Some("1") {
            tracing::warn!(client = %req.client_ip, "session touch refused: not from session.js on this site");
            return Reply::json(403, &json!({"error": "cross_site"}));
        }
        let Some(id) = self.script_session_id(req) else {
            return self.session_api(req, now).await;
        };
        if let Ok(Ok(_)) = self.live_for_script(req, &id, now).await {
            if self.sessions.store().touch(&id, now).await.is_err() {
                return Reply::json(503, &json!({"error": "store_unavailable"}));
            }
            tracing::debug!(session = %id, "activity from session.js: stay signed in");
        }
        self.session_api(req, now).await
    }
}
