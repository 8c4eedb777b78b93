//! hubgate as the forward auth of a proxy in front: Traefik's questions as raw requests with the
//! headers Traefik documents, and real nginx and Caddy running exactly the snippets of
//! docs/FORWARD-AUTH.md in front of a real upstream.

mod common;
use common::sites::{code_of, Sites};
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SPOOFED: [(&str, &str); 4] = [
    ("x-forwarded-user", "mallory"),
    ("x-forwarded-groups", "admins"),
    ("x-forwarded-email", "mallory@evil.example"),
    ("x_forwarded_user", "mallory"),
];

/// Apps only a proxy in front serves (`upstreams = []`): one on its own host, one under a prefix.
/// `host`: where the app lives (with the port of the proxy in front, when that is not hubgate's).
async fn fronted_apps(host: &str) -> Setup {
    let mut one = App::new("one", upstream("unused").await).on_host(host);
    one.upstreams.clear();
    let mut three = App::new("three", upstream("unused").await);
    three.upstreams.clear();
    // Every admitted request renews, so the renewal's way back to the browser is tested too.
    Setup::default()
        .app(one)
        .app(three)
        .tokens("renew_threshold = 1.0\nrenew_min_interval = \"0s\"")
}

/// Signs in at the hub and redeems a code on `host` (with port), reaching hubgate directly.
async fn signed_in_on(sites: &mut Sites, app: &str, host: &str) {
    sites.sign_in().await;
    let callback = sites.code_for(app, &format!("http://{host}/x")).await;
    let code = code_of(&callback);
    let page = sites
        .get(&format!(
            "http://{host}/.hubgate/callback?code={code}&next=/x"
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn traefik_questions_get_identity_headers_a_sign_in_redirect_or_a_refusal() {
    let gw = fronted_apps("one.localhost").await.start();
    let mut sites = Sites::new(&gw);
    let host = sites.host("one.localhost");
    signed_in_on(&mut sites, "one", &host).await;
    let cookies = sites.jar(&host).cookie_header("/x").expect("cookies");
    let hub = sites.hub.clone();

    let mut traefik = Browser::new(gw.url(""));
    let page = ask(&mut traefik, &host, "/x?y=1", Some(&cookies), HTML).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.is_empty());
    assert_eq!(page.header("x-forwarded-user"), Some("alice"));
    assert_eq!(page.header("x-forwarded-groups"), Some("ops"));
    assert_eq!(page.header("x-forwarded-email"), Some("alice@example.com"));
    // A renewed token for addAuthCookiesToResponse, at `/` on the app's host.
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("hubgate-app-one=") && c.contains("Path=/;")),
        "{:?}",
        page.set_cookies()
    );

    // Not signed in: a navigation is sent to sign in (back to the full original URL), the rest 401.
    let page = ask(&mut traefik, &host, "/x?y=1", None, HTML).await;
    assert_eq!(page.status, 302);
    let next: String =
        form_urlencoded::byte_serialize(format!("http://{host}/x?y=1").as_bytes()).collect();
    assert_eq!(
        page.location(),
        Some(format!("{}/hub/authorize?app=one&next={next}", gw.url("")).as_str())
    );
    assert_eq!(page.header("x-forwarded-user"), None);
    let page = ask(&mut traefik, &host, "/x?y=1", None, JSON).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "no_token");

    // On the hub's host, prefix apps are found by path.
    let page = ask(&mut traefik, &hub, "/apps/three/x", None, JSON).await;
    assert_eq!(page.status, 401, "{}", page.body);
    let page = ask(&mut traefik, &hub, "/x?y=1", None, JSON).await;
    assert_eq!(page.status, 403, "/x belongs to no app: {}", page.body);
    assert_eq!(page.json()["reason"], "unknown_app");

    // Nothing is admitted by default: an unknown host, or no host at all.
    let page = ask(
        &mut traefik,
        "stranger.localhost",
        "/x?y=1",
        Some(&cookies),
        JSON,
    )
    .await;
    assert_eq!(page.status, 403);
    assert_eq!(page.json()["reason"], "unknown_app");
    let page = traefik
        .get_with("/hub/forward-auth", &[("cookie", cookies.as_str())])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(page.json()["reason"], "unknown_app");
    let page = traefik
        .request(reqwest::Method::POST, "/hub/forward-auth", &[], None)
        .await;
    assert_eq!(page.status, 405);

    // nginx's way of asking: 200 with the headers, or 401 with where to sign in.
    traefik.jar.clear();
    let url = format!("http://{host}/x");
    let page = traefik
        .get_with(
            "/hub/auth-request",
            &[
                ("x-original-url", url.as_str()),
                ("cookie", cookies.as_str()),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-forwarded-user"), Some("alice"));
    traefik.jar.clear();
    traefik.accept = HTML;
    let page = traefik
        .get_with("/hub/auth-request", &[("x-original-url", url.as_str())])
        .await;
    assert_eq!(page.status, 401);
    assert!(page
        .header("x-hubgate-redirect")
        .is_some_and(|l| l.contains("/hub/authorize?app=one&next=")));

    // After sign-out the same cookies are refused at once.
    let page = sites.get(&format!("http://{host}/.hubgate/logout")).await;
    assert_eq!(page.status, 302);
    let page = ask(&mut traefik, &host, "/x?y=1", Some(&cookies), JSON).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "session_revoked");
}

/// What Traefik sends: the original request in `X-Forwarded-*`, the client's headers as they came.
async fn ask(
    traefik: &mut Browser,
    host: &str,
    uri: &str,
    cookie: Option<&str>,
    accept: &'static str,
) -> Page {
    // Traefik keeps no cookies: each question carries only the client's.
    traefik.jar.clear();
    traefik.accept = accept;
    let mut headers = vec![
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", uri),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    traefik.get_with("/hub/forward-auth", &headers).await
}

/// A child process (nginx, Caddy) stopped when the test ends.
struct Proxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// The started `child`, once it accepts connections on `port`.
    fn serving(child: Child, port: u16, log: std::path::PathBuf, dir: tempfile::TempDir) -> Proxy {
        Proxy {
            child,
            port,
            log,
            _dir: dir,
        }
        .wait_until_serving()
    }

    fn wait_until_serving(self) -> Proxy {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return self;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "proxy did not start; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// The documentation's snippet with the test's addresses in place of the examples.
fn snippet(name: &str, gw: &Gateway, app: std::net::SocketAddr, port: u16) -> String {
    doc_snippet("docs/FORWARD-AUTH.md", name)
        .replace("127.0.0.1:8000", &format!("127.0.0.1:{}", gw.port))
        .replace("127.0.0.1:3000", &app.to_string())
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace(
            "grafana.example.com {",
            &format!("http://one.localhost:{port} {{"),
        )
        .replace(
            "hub.example.com {",
            &format!("http://hub.localhost:{port} {{"),
        )
        .replace("grafana.example.com", "one.localhost")
}

fn start_nginx(gw: &Gateway, app: std::net::SocketAddr, port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n{}\n}}\n",
        snippet("nginx", gw, app, port)
    );
    std::fs::write(dir.path().join("nginx.conf"), config).expect("nginx.conf");
    let log = dir.path().join("error.log");
    // Debian puts it in /usr/sbin, which a non-root PATH may lack.
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("nginx");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx must be installed (scripts/install-deps.sh installs it)");
    Proxy::serving(child, port, log, dir)
}

fn start_caddy(gw: &Gateway, app: std::net::SocketAddr, port: u16) -> Proxy {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "{{\n\tadmin off\n\tauto_https off\n}}\n\n{}\n",
        snippet("caddy", gw, app, port)
    );
    std::fs::write(dir.path().join("Caddyfile"), config).expect("Caddyfile");
    let log = dir.path().join("caddy.log");
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.path().join("Caddyfile"))
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("caddy log"))
        .spawn()
        .expect("caddy must be installed (scripts/install-deps.sh installs it)");
    Proxy::serving(child, port, log, dir)
}

/// Through the proxy in front: one sign-in at the hub, the app host opened through the callback
/// that the proxy sends to hubgate, identity headers from hubgate only, sign-out effective at once.
/// `renewal_reaches_browser`: whether the proxy hands a renewed token to the browser (nginx does
/// with the documented `add_header`; Caddy's `forward_auth` cannot).
async fn identity_reaches_the_app_through(
    proxy: &Proxy,
    gw: &Gateway,
    renewal_reaches_browser: bool,
) {
    let host = format!("one.localhost:{}", proxy.port);
    let app_url = format!("http://{host}/x");
    let mut sites = Sites::new(gw);
    sites.via(&host, format!("http://127.0.0.1:{}", proxy.port));

    // Not signed in, with spoofed identity headers: sent to sign in, the app never answers.
    let page = sites.get_with(&app_url, HTML, &SPOOFED).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(
        page.location()
            .is_some_and(|l| l.starts_with(&format!("{}/hub/authorize?app=one&next=", gw.url("")))),
        "{:?}",
        page.location()
    );
    let page = sites.get_with(&app_url, JSON, &SPOOFED).await;
    assert!(matches!(page.status, 302 | 401), "{}", page.status);
    assert!(!page.body.contains("mallory"), "{}", page.body);

    sites.sign_in().await;
    sites.open_through_callback(&app_url).await;
    assert_eq!(
        sites.cookie_names(&host),
        ["hubgate-app-one", "hubgate-session-id"]
    );

    let seen = sites.get_with(&app_url, JSON, &SPOOFED).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    let renewed = seen
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("hubgate-app-one=") && c.contains("Path=/;"));
    assert_eq!(renewed, renewal_reaches_browser, "{:?}", seen.set_cookies());
    let seen = seen.json();
    assert_eq!(seen["app"], "one", "the real upstream answered");
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");
    assert_eq!(seen["headers"]["x-forwarded-groups"], "ops");
    assert_eq!(seen["headers"]["x-forwarded-email"], "alice@example.com");
    assert!(!seen.to_string().contains("mallory"), "{seen}");

    let (visited, _) = sites
        .follow(&format!("http://{host}/.hubgate/logout"))
        .await;
    assert!(
        visited
            .last()
            .is_some_and(|u| u.ends_with("/hub/login?reason=logged_out")),
        "{visited:?}"
    );
    let page = sites.get_with(&app_url, HTML, &SPOOFED).await;
    assert_eq!(page.status, 302);
    assert!(!page.body.contains("mallory"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_auth_request_with_the_documented_snippet() {
    let app = upstream("one").await;
    let port = free_port();
    let gw = fronted_apps(&format!("one.localhost:{port}")).await.start();
    let nginx = start_nginx(&gw, app, port);
    identity_reaches_the_app_through(&nginx, &gw, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caddy_forward_auth_with_the_documented_snippet() {
    let app = upstream("one").await;
    let port = free_port();
    let gw = fronted_apps(&format!("one.localhost:{port}")).await.start();
    let caddy = start_caddy(&gw, app, port);
    identity_reaches_the_app_through(&caddy, &gw, false).await;
}
