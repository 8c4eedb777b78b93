//! Two small demo upstreams for `hubgate demo` (and the tests): each answers with what it received
//! from the gateway — the identity headers and the cookies that reached it — and echoes WebSocket
//! messages on any path ending in `/ws`.

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
            "x-forwarded-user",
            "x-forwarded-groups",
            "x-forwarded-email",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
        ]
        .iter()
        .map(|h| {
            format!(
                "<tr><th>{h}</th><td id=\"{h}\">{}</td></tr>",
                esc(self.header(h))
            )
        })
        .collect();
        let cookie = self.cookie.as_deref().unwrap_or("(none)");
        format!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{app} · demo app</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7fb;color:#1d2433}}main{{max-width:46rem;margin:0 auto;padding:2rem 1.25rem}}
h1{{margin:.2rem 0 1rem}}.card{{background:#fff;border:1px solid #d9dee8;border-radius:.8rem;padding:1.25rem;margin-bottom:1rem}}
table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #eef0f5;overflow-wrap:anywhere}}th{{color:#5b6475;font-weight:600;width:40%}}
code{{background:#eef0f5;padding:.1rem .3rem;border-radius:.3rem;overflow-wrap:anywhere}}nav a{{margin-right:1rem}}.pill{{display:inline-block;background:#2f5bea;color:#fff;border-radius:1rem;padding:.1rem .7rem;font-size:.85rem}}</style></head>
<body><main><span class="pill">demo app</span><h1 id="app-name">{app}</h1>
<nav><a href="/hub/">all apps &amp; your session</a><a href="/logout" id="logout">sign out</a></nav>
<div class="card"><h2>Who the gateway says you are</h2><table>{rows}</table></div>
<div class="card"><h2>Cookies that reached this app</h2><p><code id="cookies">{cookie}</code></p>
<p>The gateway's own cookies never get here: only the app's own do.</p></div>
<div class="card"><h2>Request</h2><p><code>{method} {path}</code></p></div>
</main></body></html>"#,
            app = esc(&self.app),
            cookie = esc(cookie),
            method = esc(&self.method),
            path = esc(&self.path),
        )
    }
}
