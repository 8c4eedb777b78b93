//! Test harness: a real gateway process on free loopback ports, real demo upstreams, and a
//! cookie-keeping client that scopes cookies by path the way a browser does.
#![allow(dead_code)]

pub mod oidc;
pub mod sites;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ALICE_PASSWORD: &str = "alice-demo-password";
pub const BOB_PASSWORD: &str = "bob-demo-password";

const USERS: &str = r#"
[[users]]
name = "alice"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$zf0gDhaKy554UXxOTEGLXA$iHgRyANUxF5FCkjI9YwbbemXA/ENpCJit2PYcTq+ddE"
groups = ["ops"]
email = "alice@example.com"

[[users]]
name = "bob"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$xLY7NMiskGtf6c7jOBbaZA$i8bOz+En+89s+bYCP7Ixi4ISpJ0QzyLQlfMxF1MgbUo"
groups = ["research"]
email = "bob@example.com"
"#;

/// A users file of `names`, each with alice's password ([`ALICE_PASSWORD`]).
pub fn users_toml(names: &[String]) -> String {
    let hash = USERS
        .lines()
        .find_map(|l| l.strip_prefix("password_hash = "))
        .unwrap_or_default();
    names
        .iter()
        .map(|n| format!("[[users]]\nname = \"{n}\"\npassword_hash = {hash}\ngroups = []\n"))
        .collect()
}

/// A port for a child process to listen on. Taken from below Linux's ephemeral range (32768+),
/// which `bind(…:0)` never hands out, so a port freed here cannot be grabbed by another test's
/// listener before the gateway binds it; each test process starts at its own offset.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 250) as u16 * 50,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32_700, "ran out of test ports");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A demo upstream (echoes what it received as JSON, WebSocket echo at `*/ws`) on a free port.
pub async fn upstream(name: &str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    let name = name.to_string();
    tokio::spawn(async move { hubgate::demo::serve(listener, &name).await });
    addr
}

/// An app entry for the test config.
#[derive(Clone)]
pub struct App {
    pub name: String,
    pub upstreams: Vec<SocketAddr>,
    pub extra: String,
    /// On its own host (`grafana.localhost`) instead of under `/apps/<name>` on the hub's.
    pub host: Option<String>,
}

impl App {
    pub fn new(name: &str, upstream: SocketAddr) -> Self {
        App {
            name: name.into(),
            upstreams: vec![upstream],
            extra: String::new(),
            host: None,
        }
    }

    /// The app owns `host` (prefix `/`), like `grafana.example.com`.
    pub fn on_host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    pub fn with(mut self, extra: &str) -> Self {
        self.extra.push_str(extra);
        self.extra.push('\n');
        self
    }

    fn toml(&self) -> String {
        let upstreams: Vec<String> = self.upstreams.iter().map(|u| format!("\"{u}\"")).collect();
        if let Some(host) = &self.host {
            return format!(
                "[[apps]]\nname = \"{}\"\nhost = \"{host}\"\nupstreams = [{}]\n{}\n",
                self.name,
                upstreams.join(", "),
                self.extra
            );
        }
        format!(
            "[[apps]]\nname = \"{n}\"\nprefix = \"/apps/{n}\"\nupstreams = [{}]\n{}\n",
            upstreams.join(", "),
            self.extra,
            n = self.name
        )
    }
}

/// Config sections a test changes; everything else takes the test defaults.
#[derive(Default, Clone)]
pub struct Setup {
    pub server: String,
    pub hub: String,
    pub session: String,
    pub tokens: String,
    pub cookies: String,
    pub apps: Vec<App>,
    pub env: Vec<(String, String)>,
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// Listen on this port (when a peer must know the gateway's address before it starts).
    pub port: Option<u16>,
}

impl Setup {
    pub fn app(mut self, app: App) -> Self {
        self.apps.push(app);
        self
    }
    pub fn session(mut self, lines: &str) -> Self {
        self.session.push_str(lines);
        self.session.push('\n');
        self
    }
    pub fn tokens(mut self, lines: &str) -> Self {
        self.tokens.push_str(lines);
        self.tokens.push('\n');
        self
    }
    pub fn server(mut self, lines: &str) -> Self {
        self.server.push_str(lines);
        self.server.push('\n');
        self
    }
    pub fn hub(mut self, lines: &str) -> Self {
        self.hub.push_str(lines);
        self.hub.push('\n');
        self
    }
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn start(self) -> Gateway {
        Gateway::start(self)
    }
}

pub struct Gateway {
    child: Child,
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    env: Vec<(String, String)>,
}

/// The gateway process for the config in `dir`, logging JSON lines to `log`.
fn spawn_gateway(dir: &std::path::Path, env: &[(String, String)], log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .arg("-c")
        .arg(dir.join("gateway.toml"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("HUBGATE_LOG", "info")
        .env("HUBGATE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start hubgate")
}

impl Gateway {
    fn start(setup: Setup) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = setup.port.unwrap_or_else(free_port);
        let metrics_port = free_port();
        // A test that sets `users_file` itself (to "" for providers only) replaces the default.
        let users_file = if setup.hub.contains("users_file") {
            ""
        } else {
            "users_file = \"users.toml\""
        };
        let apps: String = setup.apps.iter().map(App::toml).collect();
        let (scheme, tls) = if setup.tls {
            self_signed_certificate(dir.path());
            ("https", "tls = { cert = \"cert.pem\", key = \"key.pem\" }")
        } else {
            ("http", "")
        };
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
metrics_listen = "127.0.0.1:{metrics_port}"
public_url = "{scheme}://127.0.0.1:{port}"
threads = 2
shutdown_grace = "1s"
{tls}
{server}

[hub]
{users_file}
{hub}

[session]
{session}

[tokens]
{tokens}

[cookies]
{cookies}

{apps}
"#,
            server = setup.server,
            hub = setup.hub,
            session = setup.session,
            tokens = setup.tokens,
            cookies = setup.cookies,
        );
        std::fs::write(dir.path().join("gateway.toml"), config).expect("write config");
        std::fs::write(dir.path().join("users.toml"), USERS).expect("write users");
        let log = dir.path().join("gateway.log");
        let child = spawn_gateway(dir.path(), &setup.env, &log);
        let gateway = Gateway {
            child,
            port,
            metrics_port,
            dir,
            log,
            env: setup.env,
        };
        gateway.wait_until_serving();
        gateway
    }

    /// Until both the proxy and the metrics listener accept: they start as separate services,
    /// and a test that scrapes first would otherwise meet a refused connection now and then.
    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let accepts = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        while Instant::now() < deadline {
            if accepts(self.port) && accepts(self.metrics_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("gateway did not start; log:\n{}", self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.url(""))
    }

    /// The value of one metric series from `/metrics` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// The metric once it reaches `expected` (counters are bumped in the logging phase, just after
    /// the response is sent), or its last value after two seconds.
    pub async fn metric_reaches(&self, series: &str, expected: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let value = self.metric(series).await;
            if value == expected || Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The gateway's process id (for its RSS and open files in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL): no shutdown of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again, with the same config, port and log, once it has exited.
    pub fn restart(&mut self) {
        self.child = spawn_gateway(self.dir.path(), &self.env, &self.log);
        self.wait_until_serving();
    }

    /// Sends SIGHUP (reload) once the gateway listens for it.
    pub fn hang_up(&self) {
        self.wait_for_log("reload: listening for SIGHUP");
        unsafe_kill(self.child.id(), "HUP");
    }

    /// Waits (at most 10 s) until the log holds `text`.
    pub fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log_text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never logged {text:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), "TERM");
        self.child.wait().ok().and_then(|s| s.code())
    }
}

fn self_signed_certificate(dir: &std::path::Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success(), "openssl could not make a certificate");
}

/// `curl` for what reqwest is not built for here (HTTPS with a self-signed certificate): returns
/// the response head.
pub fn curl_head(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-k", "-s", "-o", "/dev/null", "-D", "-", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct StoredCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub max_age: Option<i64>,
    pub raw: String,
}

/// What came back from one request.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

/// A client that keeps cookies like a browser: scoped by Path, replaced by name and path,
/// deleted by `Max-Age=0`, sent longest path first.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub jar: Vec<StoredCookie>,
    pub accept: &'static str,
    /// Sent with every request (e.g. the `X-Forwarded-For` a load balancer would add).
    pub extra_headers: Vec<(String, String)>,
}

pub const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
pub const JSON: &str = "application/json";

impl Browser {
    pub fn new(base: String) -> Self {
        Browser {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: Vec::new(),
            accept: HTML,
            extra_headers: Vec::new(),
        }
    }

    pub fn api(mut self) -> Self {
        self.accept = JSON;
        self
    }

    pub fn cookie_header(&self, path: &str) -> Option<String> {
        let mut matching: Vec<&StoredCookie> = self
            .jar
            .iter()
            .filter(|c| path_matches(path, &c.path))
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    pub fn cookie(&self, name: &str) -> Option<StoredCookie> {
        self.jar.iter().find(|c| c.name == name).cloned()
    }

    pub fn set_cookie(&mut self, name: &str, value: &str, path: &str) {
        self.jar.retain(|c| !(c.name == name && c.path == path));
        self.jar.push(StoredCookie {
            name: name.into(),
            value: value.into(),
            path: path.into(),
            max_age: None,
            raw: String::new(),
        });
    }

    fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            return;
        };
        let mut path = "/".to_string();
        let mut max_age = None;
        for attr in parts {
            let attr = attr.trim();
            if let Some(p) = attr.strip_prefix("Path=") {
                path = p.to_string();
            } else if let Some(a) = attr.strip_prefix("Max-Age=") {
                max_age = a.parse().ok();
            }
        }
        self.jar.retain(|c| !(c.name == name && c.path == path));
        if max_age != Some(0) {
            self.jar.push(StoredCookie {
                name: name.into(),
                value: value.into(),
                path,
                max_age,
                raw: set_cookie.into(),
            });
        }
    }

    pub async fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<String>,
    ) -> Page {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("accept", self.accept);
        let bare_path = path.split('?').next().unwrap_or(path);
        if let Some(cookies) = self.cookie_header(bare_path) {
            req = req.header("cookie", cookies);
        }
        for (k, v) in &self.extra_headers {
            req = req.header(k, v);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for sc in headers.get_all("set-cookie") {
            if let Ok(sc) = sc.to_str() {
                self.store(sc);
            }
        }
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.request(reqwest::Method::GET, path, &[], None).await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        self.request(reqwest::Method::GET, path, headers, None)
            .await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(reqwest::Method::POST, path, &[], Some(body))
            .await
    }

    /// Follows redirects from `path`; returns every URL visited and the final page.
    pub async fn follow(&mut self, path: &str) -> (Vec<String>, Page) {
        let mut visited = vec![path.to_string()];
        let mut page = self.get(path).await;
        while let (300..=399, Some(next)) = (page.status, page.location().map(str::to_string)) {
            assert!(visited.len() < 12, "redirect loop: {visited:?}");
            visited.push(next.clone());
            page = self.get(&next).await;
        }
        (visited, page)
    }

    /// Opens the sign-in form (for its anti-CSRF token) and submits it.
    pub async fn sign_in_to(
        &mut self,
        user: &str,
        password: &str,
        remember_me: bool,
        next: &str,
    ) -> Page {
        let accept = self.accept;
        self.accept = HTML;
        let form = self
            .get(&format!(
                "/hub/login?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        let csrf = hidden_field(&form.body, "csrf");
        let mut fields = vec![
            ("username", user),
            ("password", password),
            ("next", next),
            ("csrf", csrf.as_str()),
        ];
        if remember_me {
            fields.push(("remember_me", "1"));
        }
        let page = self.post_form("/hub/login", &fields).await;
        self.accept = accept;
        page
    }

    /// Signs in, opens `app` once (so the browser holds its app cookie), then speaks JSON like an
    /// API client or a page's XHR.
    pub async fn signed_in_api(gw: &Gateway, user: &str, password: &str, app: &str) -> Browser {
        let mut browser = gw.browser();
        browser.sign_in_and_open(user, password, app).await;
        browser.accept = JSON;
        browser
    }

    /// Signs in and opens `app` once, so the browser holds its app cookie.
    pub async fn sign_in_and_open(&mut self, user: &str, password: &str, app: &str) -> Page {
        let page = self.sign_in_to(user, password, false, "/").await;
        assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
        let accept = self.accept;
        self.accept = HTML;
        let (_, page) = self.follow(&format!("/apps/{app}/")).await;
        self.accept = accept;
        assert_eq!(page.status, 200, "opening {app} failed: {}", page.body);
        page
    }
}

pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in: {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_string()
}

/// RFC 6265 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/') || request_path[cookie_path.len()..].starts_with('/')))
}

/// Sends raw bytes (for requests a well-behaved client library would refuse or normalise) and
/// returns the status code of the answer, or 0 if the connection closed without one.
pub fn raw_request(port: u16, request: &[u8]) -> u16 {
    raw_response_head(port, request)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A private `redis-server` on a free port, stopped when dropped. Nothing is saved to disk.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// More `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(free_port(), &[])
    }

    /// A Redis that keeps every write on disk before answering (`appendonly yes`, `appendfsync
    /// always`), so that [`Redis::stop`] (SIGKILL) then [`Redis::restart`] loses nothing.
    pub fn start_persistent() -> Redis {
        Redis::start_with(
            free_port(),
            &["--appendonly", "yes", "--appendfsync", "always"],
        )
    }

    fn start_with(port: u16, extra: &[&str]) -> Redis {
        let mut redis = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            extra: extra.iter().map(|a| a.to_string()).collect(),
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it again on the same port (after [`Redis::stop`]); its data is gone unless it was
    /// started with [`Redis::start_persistent`].
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/install-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.command(&["PING"]).is_some_and(|r| r.contains("PONG")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs one command with redis-cli-free plain RESP over TCP; returns the raw reply.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        resp_command(self.port, args)
    }

    /// Calls per command from `INFO commandstats`, e.g. {"hgetall": 3, "evalsha": 2}.
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let info = self.command(&["INFO", "commandstats"]).unwrap_or_default();
        info.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("cmdstat_")?;
                let (name, stats) = rest.split_once(':')?;
                let calls = stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_string(), calls))
            })
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One command in plain RESP over TCP to `127.0.0.1:port`; the raw reply.
pub fn resp_command(port: u16, args: &[&str]) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).ok()?;
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || reply.ends_with(b"\r\n") {
            break;
        }
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

/// A private Redis Cluster of three primaries (`redis-server --cluster-enabled yes`, joined with
/// `redis-cli --cluster create`), stopped when dropped. Slots as `--cluster create` assigns them:
/// 0–5460, 5461–10922, 10923–16383, in node order.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        RedisCluster::start_with_replicas(0)
    }

    /// Three primaries, each with `replicas` replicas (nodes 3.. are the replicas).
    pub fn start_with_replicas(replicas: usize) -> RedisCluster {
        let nodes: Vec<Redis> = (0..3 * (1 + replicas))
            .map(|_| {
                Redis::start_with(
                    free_port_with_bus(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ready();
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// Stops every node (an outage of the whole cluster).
    pub fn stop(&mut self) {
        self.nodes.iter_mut().for_each(Redis::stop);
    }

    /// Starts every node again on its port: each remembers the cluster (its nodes.conf), not
    /// the data.
    pub fn restart(&mut self) {
        self.nodes.iter_mut().for_each(Redis::restart);
        self.wait_until_ready();
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when every node agrees the cluster is up and every replica is in sync.
        while !self.nodes.iter().enumerate().all(|(i, n)| {
            n.command(&["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
                && (i < 3
                    || n.command(&["INFO", "replication"])
                        .is_some_and(|info| info.contains("master_link_status:up")))
        }) {
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node (index into `nodes`) whose slots hold `slot`.
    pub fn node_of_slot(slot: u16) -> usize {
        match slot {
            0..=5460 => 0,
            5461..=10922 => 1,
            _ => 2,
        }
    }

    /// The node that holds `key`, asked of the cluster itself (`CLUSTER KEYSLOT`).
    pub fn node_of_key(&self, key: &str) -> usize {
        let reply = self.nodes[0]
            .command(&["CLUSTER", "KEYSLOT", key])
            .unwrap_or_default();
        let slot = reply.trim().trim_start_matches(':').parse().unwrap_or(0);
        RedisCluster::node_of_slot(slot)
    }

    /// Calls per command summed over every node (`INFO commandstats`).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let mut total = std::collections::BTreeMap::new();
        for node in &self.nodes {
            for (command, calls) in node.command_calls() {
                *total.entry(command).or_insert(0) += calls;
            }
        }
        total
    }

    /// Keys on each node (`DBSIZE`).
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                n.command(&["DBSIZE"])
                    .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

/// A Sentinel set-up: a primary, its replica and three Sentinels watching it as `mymaster` (down
/// after 1 s), all stopped when dropped.
pub struct RedisSentinel {
    pub primary: Redis,
    pub replica: Redis,
    pub sentinel_ports: Vec<u16>,
    sentinels: Vec<Child>,
    dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub fn start() -> RedisSentinel {
        let primary = Redis::start();
        let replica_port = free_port();
        let replica = Redis::start_with(
            replica_port,
            &["--replicaof", "127.0.0.1", &primary.port.to_string()],
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sentinels = Vec::new();
        let mut sentinel_ports = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n",
                    dir.path().display(),
                    primary.port
                ),
            )
            .expect("write sentinel.conf");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel");
            sentinels.push(child);
            sentinel_ports.push(port);
        }
        let set_up = RedisSentinel {
            primary,
            replica,
            sentinel_ports,
            sentinels,
            dir,
        };
        // Ready once the replica is in sync and every Sentinel knows the replica and the others
        // (a failover needs a quorum of Sentinels that found each other).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = set_up
                .replica
                .command(&["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"));
            let acquainted = set_up.sentinel_ports.iter().all(|port| {
                let info =
                    resp_command(*port, &["SENTINEL", "MASTER", "mymaster"]).unwrap_or_default();
                let field = |name: &str| {
                    let lines: Vec<&str> = info.lines().collect();
                    lines
                        .iter()
                        .position(|l| *l == name)
                        .and_then(|i| lines.get(i + 2))
                        .map(|v| v.to_string())
                };
                field("num-other-sentinels").as_deref() == Some("2")
                    && field("num-slaves").as_deref() == Some("1")
            });
            if synced && acquainted {
                return set_up;
            }
            assert!(
                Instant::now() < deadline,
                "the Sentinel set-up did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.sentinel_ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The port Sentinel names as the primary now.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = resp_command(
            self.sentinel_ports[0],
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"],
        )?;
        reply.lines().nth(4)?.trim().parse().ok()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for child in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = &self.dir;
    }
}

impl Setup {
    /// Shares sessions through the primary a Sentinel set-up names.
    pub fn with_redis_sentinel(self, set_up: &RedisSentinel) -> Self {
        self.redis_session("sentinel", &set_up.urls(), "sentinel_master = \"mymaster\"")
    }

    /// Shares sessions through a Redis Cluster, given its seed nodes.
    pub fn with_redis_cluster(self, cluster: &RedisCluster) -> Self {
        self.redis_session("cluster", &cluster.urls(), "")
    }

    fn redis_session(self, mode: &str, urls: &[String], extra: &str) -> Self {
        let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
        self.session(&format!(
            "store = \"redis\"\nredis_mode = \"{mode}\"\nredis_urls = [{}]\nkey_prefix = \"test:\"\n{extra}",
            urls.join(", ")
        ))
    }
}

/// A port whose cluster bus port (port + 10000) is free too.
fn free_port_with_bus() -> u16 {
    loop {
        let port = free_port();
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl Setup {
    /// Shares sessions through `redis`, with a fixed signing key so instances agree.
    pub fn with_redis(self, redis: &Redis) -> Self {
        self.session(&format!(
            "store = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"test:\"",
            redis.url()
        ))
    }
}

/// `[[tokens.keys]]` entries, each a [`fixed_key`] of its byte: the first signs.
pub fn token_keys(ids: &[(&str, u8)]) -> String {
    ids.iter()
        .map(|(id, byte)| {
            format!(
                "[[tokens.keys]]\nid = \"{id}\"\nsecret = \"{}\"\n",
                fixed_key(*byte)
            )
        })
        .collect()
}

/// With `on_store_error = "allow_cached"`: a session cached before `stop` takes the store away
/// keeps working, and a newcomer's sign-in answers 503 (one Redis or a cluster).
pub async fn allow_cached_through_an_outage(gw: &Gateway, stop: impl FnOnce()) {
    let mut browser = Browser::signed_in_api(gw, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        browser.get("/apps/one/x").await.status,
        200,
        "cached: still admitted"
    );
    let mut newcomer = gw.browser();
    assert_eq!(
        newcomer
            .sign_in_to("alice", ALICE_PASSWORD, false, "/")
            .await
            .status,
        503
    );
}

/// A gateway restart keeps sessions, a new first key logs nobody out, and retiring the old key
/// refuses its tokens with `key_removed` while the new key's keep working. `base` signs with k1
/// (`token_keys(&[("k1", 1)])`); `second` signs in after the rotation.
pub async fn restart_and_key_rotation_log_nobody_out(base: Setup, second: (&str, &str)) {
    let mut first = base.clone().start();
    let browser = Browser::signed_in_api(&first, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(first.stop(), Some(0), "SIGTERM exits 0");

    // Restarted with a new first key: the old token (k1) still verifies.
    let mut rotated_setup = base.clone();
    rotated_setup.tokens = token_keys(&[("k2", 2), ("k1", 1)]);
    let mut rotated = rotated_setup.start();
    let mut on_rotated = browser.on(&rotated);
    assert_eq!(on_rotated.get("/apps/one/x").await.status, 200);
    // Signing in anew issues k2 tokens.
    let mut fresh = rotated.browser();
    fresh.sign_in_and_open(second.0, second.1, "one").await;
    fresh.accept = JSON;
    assert_eq!(rotated.stop(), Some(0));

    // k1 retired: alice's k1 token is refused with key_removed (its signature still verifies, so
    // it is known to be ours); the k2 token still works.
    let mut removed_setup = base;
    removed_setup.tokens = format!("{}retired = true\n", token_keys(&[("k2", 2), ("k1", 1)]));
    let removed = removed_setup.start();
    let mut alice = on_rotated.on(&removed);
    let page = alice.get("/apps/one/x").await;
    assert_eq!(
        (page.status, page.json()["reason"].as_str()),
        (401, Some("key_removed")),
        "{}",
        page.body
    );
    let mut later = fresh.on(&removed);
    assert_eq!(later.get("/apps/one/x").await.status, 200);
}

/// A base64url 32-byte key made of one repeated byte: fixed, so several gateways share it.
pub fn fixed_key(byte: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32])
}

impl Browser {
    /// The same cookies, talking to another gateway instance (as behind a load balancer).
    pub fn on(&self, gateway: &Gateway) -> Browser {
        let mut other = Browser::new(gateway.url(""));
        other.jar = self.jar.clone();
        other.accept = self.accept;
        other
    }
}

pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// After a sign-out: a message sent on `socket` is not echoed — the gateway closes the tunnel
/// when it next carries a message — and the socket is not left hanging.
pub async fn assert_carries_nothing_more(socket: &mut WebSocket, after: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let _ = socket.send(Message::text("after")).await;
    let next = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("the socket is closed, not left hanging");
    assert!(
        !matches!(&next, Some(Ok(Message::Text(t))) if t.as_str() == "after"),
        "message carried after {after}: {next:?}"
    );
}

/// One upgrade and one echoed message: `Ok(())`, or what happened instead.
pub async fn upgrade_and_echo(url: &str, cookie: &str, n: usize) -> Result<(), String> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("cookie", cookie.parse().map_err(|_| "cookie header")?);
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if response.status() != 101 {
        return Err(format!("status {}", response.status()));
    }
    let text = format!("message {n}");
    socket
        .send(Message::text(text.clone()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .map_err(|_| "no echo within 10 s".to_string())?;
    match answer {
        Some(Ok(Message::Text(echo))) if echo.as_str() == text => {
            let _ = socket.close(None).await;
            Ok(())
        }
        other => Err(format!("instead of the echo: {other:?}")),
    }
}

/// Opens a WebSocket through the gateway and proves it carries a message (the echo comes back).
/// No retry: a tunnel torn down right after its `101` (pingora#946, which hubgate's own tunnel
/// avoids) fails the test.
pub async fn open_echoing_websocket(url: &str, cookie: Option<&str>) -> WebSocket {
    open_echoing_websocket_on(url, cookie, None).await
}

/// [`open_echoing_websocket`] with another `Host` header than the URL's (an app's own host).
pub async fn open_echoing_websocket_on(
    url: &str,
    cookie: Option<&str>,
    host: Option<&str>,
) -> WebSocket {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = url.into_client_request().expect("websocket URL");
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("cookie header"));
    }
    if let Some(host) = host {
        request
            .headers_mut()
            .insert("host", host.parse().expect("host header"));
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket handshake through the gateway");
    socket.send(Message::text("probe")).await.expect("send");
    match socket.next().await {
        Some(Ok(Message::Text(text))) if text.as_str() == "probe" => socket,
        other => panic!("a fresh WebSocket did not echo: {other:?}"),
    }
}

/// Like [`raw_request`], but returns the whole response head (status line and headers) as text,
/// or an empty string if the connection closed without an answer.
pub fn raw_response_head(port: u16, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            answer.truncate(end);
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

impl Gateway {
    /// A browser whose connections come from another loopback address (`127.0.0.2`, ...), so a
    /// test can play several client IPs.
    pub fn browser_from(&self, ip: &str) -> Browser {
        let mut browser = self.browser();
        browser.client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
            .build()
            .expect("client");
        browser
    }

    /// The JSON log lines whose `fields.event` is `event`.
    pub fn log_events(&self, event: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["event"] == event)
            .collect()
    }
}

/// After an attack, the gateway still does its job: a fresh browser signs in as alice, opens
/// `app` and the upstream sees her; the process is alive and never panicked.
pub async fn assert_still_serves(gw: &Gateway, app: &str) {
    let mut browser = gw.browser();
    browser.sign_in_and_open("alice", ALICE_PASSWORD, app).await;
    let mut api = std::mem::replace(&mut browser, gw.browser()).api();
    let seen = api.get(&format!("/apps/{app}/after-the-attack")).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let identity = seen.json()["headers"]
        .as_object()
        .is_some_and(|h| h.values().any(|v| v == "alice"));
    assert!(identity, "the upstream did not see alice: {}", seen.body);
    assert!(
        !gw.log_text().contains("panicked"),
        "the gateway panicked:\n{}",
        gw.log_text()
    );
}

/// Polls `/apps/one/x` until it is refused; how long that took, or `None` within `limit`.
pub async fn refused_within(browser: &mut Browser, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if browser.get("/apps/one/x").await.status == 401 {
            return Some(started.elapsed());
        }
    }
    None
}

/// `POST /hub/api/admin/revoke` with `body`; the JSON answer.
pub async fn admin_revoke(gw: &Gateway, token: &str, body: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(gw.url("/hub/api/admin/revoke"))
        .bearer_auth(token)
        .body(body.to_string())
        .send()
        .await
        .expect("revoke answered")
        .json()
        .await
        .expect("revoke JSON")
}

/// Two instances sharing a store (app "one"): alice signs in on `a`, her session works on `b`,
/// both cache it; she signs out on `b` and `a` refuses the old cookies at once (the delay is
/// printed, labelled `store`), with reason `session_revoked` on both, heard as one revocation.
pub async fn sign_out_on_b_is_refused_on_a_at_once(a: &Gateway, b: &Gateway, store: &str) {
    let mut on_a = a.browser();
    on_a.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    on_a.accept = JSON;
    let mut on_b = on_a.on(b);
    assert_eq!(
        on_b.get("/apps/one/x").await.json()["headers"]["x-forwarded-user"],
        "alice"
    );
    // Both instances now hold the verification in their caches.
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
    }
    assert!(
        a.metric_reaches("hubgate_auth_cache_lookups_total{result=\"hit\"}", 2.0)
            .await
            >= 2.0
    );

    let mut sign_out = on_b.on(b);
    sign_out.accept = HTML;
    assert_eq!(sign_out.get("/hub/logout").await.status, 302);
    let delay = refused_within(&mut on_a, Duration::from_secs(2))
        .await
        .expect("instance A refuses the old cookies");
    println!(
        "{store}: sign-out on B refused on A after {delay:?} (including one request round trip)"
    );
    for browser in [&mut on_a, &mut on_b] {
        assert_eq!(
            browser.get("/apps/one/x").await.json()["reason"],
            "session_revoked"
        );
    }
    assert_eq!(
        a.metric_reaches("hubgate_revocations_received_total", 1.0)
            .await,
        1.0
    );
}

/// A fenced code block of `doc` (a file under the repository), the one right after the line
/// `<!-- snippet: NAME -->`: tests run exactly what the documentation shows.
pub fn doc_snippet(doc: &str, name: &str) -> String {
    let path = format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let marker = format!("<!-- snippet: {name} -->");
    let after = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {doc}"))
        .1;
    let body = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, rest)| rest)
        .expect("a fenced block after the marker");
    body.split_once("\n```")
        .map(|(block, _)| block.to_string())
        .expect("the fenced block ends")
}

/// During a store outage with `on_store_error = "deny"`: the app request answered once the
/// instance has noticed it is deaf to revocations (milliseconds; bounded here at 2 s), after which
/// its cache vouches for nothing. No request may hang meanwhile.
pub async fn answer_once_deaf(browser: &mut Browser) -> Page {
    let noticed = Instant::now();
    loop {
        let started = Instant::now();
        let page = browser.get("/apps/one/x").await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no request hangs: {:?}",
            started.elapsed()
        );
        if page.status != 200 || noticed.elapsed() > Duration::from_secs(2) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances sharing a store that lock out after three failures: three wrong passwords for
/// `user` (whose password is `password`) over both instances lock `user` out on both (429 with
/// Retry-After), and alice from another address still signs in on both.
pub async fn three_failures_lock_out_on_both(a: &Gateway, b: &Gateway, user: &str, password: &str) {
    // Three wrong passwords for `user`, spread over both instances and three addresses: with a
    // count per instance neither would have reached three.
    for (gw, ip) in [(a, "127.0.0.2"), (b, "127.0.0.3"), (a, "127.0.0.4")] {
        let mut guesser = gw.browser_from(ip);
        assert_eq!(
            guesser.sign_in_to(user, "wrong", false, "/").await.status,
            401
        );
    }
    for gw in [a, b] {
        let mut victim = gw.browser_from("127.0.0.5");
        let page = victim.sign_in_to(user, password, false, "/").await;
        assert_eq!(page.status, 429, "{}", page.body);
        assert!(page.header("retry-after").is_some());
    }
    // Other users and addresses are not affected, on either instance.
    for gw in [a, b] {
        let mut alice = gw.browser_from("127.0.0.6");
        assert_eq!(
            alice
                .sign_in_to("alice", ALICE_PASSWORD, false, "/")
                .await
                .status,
            303
        );
    }
}

/// Two instances sharing a store (app "one"): alice's WebSocket open through `a` carries nothing
/// more once she signs out on `b`.
pub async fn websocket_closed_by_sign_out_on_b(a: &Gateway, b: &Gateway) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut browser = a.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let url = format!("ws://127.0.0.1:{}/apps/one/ws", a.port);
    let cookie = browser.cookie_header("/apps/one/ws").unwrap();
    let mut socket = open_echoing_websocket(&url, Some(&cookie)).await;
    socket.send(Message::text("before")).await.unwrap();
    assert_eq!(
        socket
            .next()
            .await
            .unwrap()
            .unwrap()
            .into_text()
            .unwrap()
            .as_str(),
        "before"
    );

    let mut on_b = browser.on(b);
    assert_eq!(on_b.get("/hub/logout").await.status, 302);
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_carries_nothing_more(&mut socket, "sign-out").await;
}

/// After a store outage or failover: sessions signed in on `a` and signed out on `b` until `a`'s
/// listener hears the revocation itself (it resubscribes by itself, backing off up to 2 s), so
/// `a` is not merely finding the end in the store. Fails after 10 s.
pub async fn revocations_heard_again(a: &Gateway, b: &Gateway, user: &str, password: &str) {
    let before = a.metric("hubgate_revocations_received_total").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut on_a = Browser::signed_in_api(a, user, password, "one").await;
        let mut on_b = on_a.on(b);
        assert_eq!(on_a.get("/apps/one/x").await.status, 200);
        let mut out = on_a.on(b);
        out.accept = HTML;
        assert_eq!(out.get("/hub/logout").await.status, 302);
        assert_eq!(on_b.get("/apps/one/x").await.status, 401);
        assert_eq!(on_a.get("/apps/one/x").await.status, 401);
        if a.metric_reaches("hubgate_revocations_received_total", before + 1.0)
            .await
            > before
        {
            return;
        }
        assert!(Instant::now() < deadline, "A hears revocations again");
    }
}
