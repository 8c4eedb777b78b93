//! Two small demo upstreams for `hubgate demo` (and the tests): each answers with what it received
//! from the gateway — the identity headers and the cookies that reached it — and echoes WebSocket
//! messages on any path ending in `/ws`. Its HTML page keeps such a WebSocket open, so a newcomer
//! (and the browser tests) can see one pass through the gateway, and includes `session.js`; a
//! path ending in `/strict` is a page under a strict Content-Security-Policy.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use serde_json::json;

use crate::hub::pages::esc;

#[derive(Clone)]
struct Demo {
    name: String,
}

pub fn router(name: &str) -> Router {
    Router::new().fallback(echo).with_state(Demo {
        name: name.to_string(),
    })
}

/// Serves the demo app `name` on an already bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, name: &str) -> std::io::Result<()> {
    axum::serve(listener, router(name)).await
}

pub async fn bind_and_serve(addr: SocketAddr, name: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve(listener, &name).await
}

async fn echo(
    State(demo): State<Demo>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    if request.uri().path().ends_with("/ws") {
        if let Ok(ws) = ws {
            return ws.on_upgrade(echo_socket);
        }
    }
    // `?delay_ms=N` answers late (at most 10 s): lets tests keep a request in flight.
    if let Some(delay) = request
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "delay_ms"))
        .and_then(|(_, v)| v.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(delay.min(10_000))).await;
    }
    let headers = request.headers();
    let seen = Seen::from(&demo.name, &request, headers);
    if request.uri().path().ends_with("/strict") {
        return strict_page(&seen);
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        Html(seen.page()).into_response()
    } else {
        axum::Json(seen.json()).into_response()
    }
}

async fn echo_socket(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(text) => Message::Text(text),
            Message::Binary(data) => Message::Binary(data),
            Message::Close(_) => break,
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

struct Seen {
    app: String,
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    cookie: Option<String>,
}

impl Seen {
    fn from(app: &str, request: &Request, headers: &HeaderMap) -> Self {
        let mut all = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            all.entry(name.as_str().to_string())
                .and_modify(|v: &mut String| {
                    v.push_str(" | ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        Seen {
            app: app.to_string(),
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            query: request.uri().query().unwrap_or("").to_string(),
            cookie: all.get("cookie").cloned(),
            headers: all,
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("(not sent)", String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "app": self.app,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "cookie": self.cookie,
        })
    }

    fn page(&self) -> String {
        let rows: String = [
            ("x-forwarded-user", "X-Forwarded-User"),
            ("x-forwarded-groups", "X-Forwarded-Groups"),
            ("x-forwarded-email", "X-Forwarded-Email"),
            ("x-forwarded-for", "X-Forwarded-For"),
            ("x-forwarded-proto", "X-Forwarded-Proto"),
            ("x-forwarded-host", "X-Forwarded-Host"),
        ]
        .iter()
        .map(|(id, name)| {
            format!(
                "<tr><th>{name}</th><td id=\"{id}\">{}</td></tr>",
                esc(self.header(id))
            )
        })
        .collect();
        let cookie = self.cookie.as_deref().unwrap_or("(none)");
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{app} · demo app</title>
<style>
*{{box-sizing:border-box}}body{{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7fb;color:#1d2433}}
main{{max-width:46rem;margin:0 auto;padding:2rem 1.25rem 3rem}}h1{{margin:.35rem 0 .25rem;font-size:2rem;line-height:1.2}}
h2{{font-size:1.05rem;margin:0 0 .75rem}}.lead{{color:#5b6475;margin:0 0 1rem}}
.card{{background:#fff;border:1px solid #d9dee8;border-radius:.8rem;padding:1.25rem;margin-bottom:1rem}}
table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.45rem .4rem;border-bottom:1px solid #eef0f5;overflow-wrap:anywhere;vertical-align:top}}
th{{color:#5b6475;font-weight:600;width:42%;font-size:.9rem}}tr:last-child th,tr:last-child td{{border-bottom:0}}
code{{background:#eef0f5;padding:.1rem .3rem;border-radius:.3rem;overflow-wrap:anywhere}}.note{{color:#5b6475;font-size:.92rem;margin:.75rem 0 0}}
nav{{display:flex;flex-wrap:wrap;gap:.5rem;margin:0 0 1.25rem}}nav a{{padding:.45rem .85rem;border-radius:.5rem;border:1px solid #d9dee8;background:#fff;color:#1d2433;text-decoration:none;font-weight:600;font-size:.92rem}}
nav a:hover{{border-color:#2f5bea}}.pill{{display:inline-block;background:#2f5bea;color:#fff;border-radius:1rem;padding:.1rem .7rem;font-size:.85rem}}
form{{display:flex;gap:.5rem}}input{{flex:1;min-width:0;font:inherit;padding:.5rem .65rem;border:1px solid #d9dee8;border-radius:.5rem}}
button{{font:inherit;font-weight:600;padding:.5rem 1rem;border:0;border-radius:.5rem;background:#2f5bea;color:#fff;cursor:pointer}}
#ws-log{{list-style:none;padding:0;margin:.75rem 0 0;font-family:ui-monospace,monospace;font-size:.9rem}}#ws-log li{{padding:.2rem 0;overflow-wrap:anywhere}}
.status{{display:inline-block;font-size:.85rem;font-weight:600;border-radius:1rem;padding:0 .6rem;background:#eef0f5}}.status.open{{background:#e8f5ee;color:#1e6b3c}}.status.closed{{background:#fdecec;color:#9b1c1c}}
@media (max-width:30rem){{h1{{font-size:1.6rem}}th,td{{display:block;width:auto;border:0;padding:.1rem 0}}td{{padding-bottom:.6rem}}}}
</style></head>
<body><main><span class="pill">demo app</span><h1 id="app-name">{app}</h1>
<p class="lead">A stand-in for one of your apps. It has no sign-in of its own: hubgate checked your session and told it who you are.</p>
<nav><a href="/hub/" id="session-link">Your session and apps</a><a href="/logout" id="logout">Sign out</a></nav>
<div class="card"><h2>Who the gateway says you are</h2><table>{rows}</table>
<p class="note">hubgate sets these headers on every request it lets through, and removes any copies the browser sent.</p></div>
<div class="card"><h2>Cookies that reached this app</h2><p><code id="cookies">{cookie}</code></p>
<p class="note">The gateway's own cookies never get here: only the app's own do.</p></div>
<div class="card"><h2>WebSocket through the gateway <span id="ws-status" class="status">connecting</span></h2>
<form id="ws-form"><input id="ws-message" aria-label="Message" value="hello" autocomplete="off"><button id="ws-send" type="submit">Send</button></form>
<ul id="ws-log"></ul>
<p class="note">This page keeps a WebSocket open to <code>ws</code> beside it; the app echoes every message back.</p></div>
<div class="card"><h2>Request</h2><p><code id="request">{method} {path}</code></p></div>
</main>
<script src="{script}" defer></script>
<script>
(() => {{
  const status = document.getElementById("ws-status");
  const log = document.getElementById("ws-log");
  const input = document.getElementById("ws-message");
  const note = (text) => {{ const li = document.createElement("li"); li.textContent = text; log.append(li); }};
  const show = (text, kind) => {{ status.textContent = text; status.className = "status " + kind; }};
  // Relative to this page, so it stays under the app's prefix (and its cookie's path) wherever the app is mounted.
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  socket.onopen = () => show("open", "open");
  socket.onmessage = (event) => note("← " + event.data);
  socket.onclose = (event) => show("closed (" + event.code + ")", "closed");
  document.getElementById("ws-form").addEventListener("submit", (event) => {{
    event.preventDefault();
    if (socket.readyState !== WebSocket.OPEN) {{ note("not sent: the connection is closed"); return; }}
    socket.send(input.value);
    note("→ " + input.value);
  }});
}})();
</script></body></html>"#,
            app = esc(&self.app),
            script = session_script(&self.path),
            cookie = esc(cookie),
            method = esc(&self.method),
            path = esc(&self.path),
        )
    }
}

/// Where the gateway serves `session.js` for a page at `path`: the hub's (prefix `/hub`, as
/// `hubgate demo` configures it) for apps under `/apps/`, `/.hubgate/` for an app on its own host.
fn session_script(path: &str) -> &'static str {
    if path.starts_with("/apps/") {
        "/hub/static/session.js"
    } else {
        "/.hubgate/static/session.js"
    }
}

/// A page under the strictest policy an app might send (`…/strict`): scripts and styles from the
/// site itself only, nothing inline. `session.js` must work here unchanged.
fn strict_page(seen: &Seen) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{app} · strict</title>\
<script src=\"{script}\" defer></script></head><body><h1 id=\"app-name\">{app}</h1>\
<p id=\"strict\">This page allows only scripts and styles from this site.</p></body></html>",
        app = esc(&seen.app),
        script = session_script(&seen.path),
    );
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'",
        )],
        Html(page),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_everything_the_client_sent() {
        let request = Request::builder()
            .uri("/apps/x/")
            .header("cookie", "a=<script>alert(1)</script>")
            .header("x-forwarded-user", "<i>mallory</i>")
            .body(axum::body::Body::empty())
            .expect("request");
        let page = Seen::from("x", &request, request.headers()).page();
        assert!(page.contains("a=&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<i>"));
    }
}
