//! What upstreams receive and how the gateway routes: identity headers, cookie stripping,
//! prefixes, load balancing, WebSockets, and answers when an upstream is down.

mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_sees_identity_headers_and_only_the_apps_own_cookies() {
    let one = upstream("one").await;
    let gw = Setup::default().app(App::new("one", one)).start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    browser.set_cookie("theme", "dark", "/");
    browser.set_cookie("app_session", "abc123", "/apps/one/");
    let mut api = std::mem::replace(&mut browser, gw.browser()).api();
    let seen = api.get("/apps/one/data?x=1").await.json();
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-user"], "alice");
    assert_eq!(headers["x-forwarded-groups"], "ops");
    assert_eq!(headers["x-forwarded-email"], "alice@example.com");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(
        headers["x-forwarded-host"],
        format!("127.0.0.1:{}", gw.port)
    );
    assert_eq!(seen["cookie"], "app_session=abc123; theme=dark");
    assert_eq!(
        (seen["path"].as_str(), seen["query"].as_str()),
        (Some("/apps/one/data"), Some("x=1"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_identity_header_never_reaches_the_upstream() {
    let one = upstream("one").await;
    let gw = Setup::default()
        .app(App::new("one", one).with("public_paths = [\"/apps/one/public/\"]\n[apps.identity_headers]\nuser = \"Remote-User\""))
        .start();
    let mut api = gw.browser().api();
    // Unauthenticated, on a public path: no identity at all, whatever the client claims.
    let spoofed = [
        ("x-forwarded-user", "mallory"),
        ("REMOTE-USER", "mallory"),
        ("Remote-User", "root"),
        ("X-Forwarded-Groups", "admin"),
    ];
    let seen = api.get_with("/apps/one/public/info", &spoofed).await.json();
    for h in ["remote-user", "x-forwarded-user", "x-forwarded-groups"] {
        assert!(
            seen["headers"].get(h).is_none(),
            "{h} reached the upstream: {seen}"
        );
    }
    // Authenticated: the configured header carries the verified user, nothing else.
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    browser.accept = JSON;
    let seen = browser.get_with("/apps/one/x", &spoofed).await.json();
    assert_eq!(seen["headers"]["remote-user"], "alice");
    assert!(seen["headers"].get("x-forwarded-user").is_none(), "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_paths_need_no_sign_in_and_strip_prefix_rewrites_the_path() {
    let one = upstream("one").await;
    let gw = Setup::default()
        .app(
            App::new("one", one)
                .with("strip_prefix = true\npublic_paths = [\"/apps/one/public/\"]"),
        )
        .start();
    let mut api = gw.browser().api();
    let page = api.get("/apps/one/public/logo.svg?v=3").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json()["path"], "/public/logo.svg");
    assert_eq!(page.json()["query"], "v=3");
    assert_eq!(api.get("/apps/one/private").await.status, 401);
    assert_eq!(
        gw.metric_reaches(
            "hubgate_requests_total{app=\"one\",outcome=\"public\"}",
            1.0
        )
        .await,
        1.0
    );
    assert_eq!(
        gw.metric_reaches(
            "hubgate_requests_total{app=\"one\",outcome=\"unauthorized\"}",
            1.0
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_spread_round_robin_over_the_upstreams() {
    let mut app = App::new("one", upstream("first").await);
    app.upstreams.push(upstream("second").await);
    let gw = Setup::default()
        .app(app.with("public_paths = [\"/apps/one/\"]"))
        .start();
    let mut api = gw.browser().api();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let name = api.get("/apps/one/x").await.json()["app"]
            .as_str()
            .unwrap()
            .to_string();
        *seen.entry(name).or_insert(0) += 1;
    }
    assert_eq!(seen.get("first"), Some(&5), "{seen:?}");
    assert_eq!(seen.get("second"), Some(&5), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_upstream_gets_a_502_page_for_browsers_and_json_for_apis() {
    let dead = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gw = Setup::default()
        .app(App::new("one", dead).with("public_paths = [\"/apps/one/\"]"))
        .start();
    let mut browser = gw.browser();
    let page = browser.get("/apps/one/").await;
    assert_eq!(page.status, 502);
    assert!(
        page.body.contains("The app is not answering"),
        "{}",
        page.body
    );
    let mut api = gw.browser().api();
    let json = api.get("/apps/one/x").await;
    assert_eq!(json.status, 502);
    assert_eq!(json.json()["error"], "bad_gateway");
    assert_eq!(
        gw.metric_reaches(
            "hubgate_requests_total{app=\"one\",outcome=\"upstream_error\"}",
            2.0
        )
        .await,
        2.0
    );
    // The gateway itself is fine.
    assert_eq!(browser.get("/hub/health").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_paths_get_clear_answers() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut browser = gw.browser();
    assert_eq!(browser.get("/nowhere").await.status, 404);
    // Sent raw: an HTTP library would normalise the dot segments away before sending.
    assert_eq!(
        raw_request(
            gw.port,
            b"GET /apps/one/../../hub/login HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        400
    );
    assert_eq!(
        raw_request(
            gw.port,
            b"GET /apps/one/%2e%2E/x HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        400
    );
    let bare = browser.get("/apps/one?tab=2").await;
    assert_eq!(
        (bare.status, bare.location()),
        (302, Some("/apps/one/?tab=2"))
    );
    let root = browser.get("/").await;
    assert_eq!(root.location(), Some("/hub/"));
    assert_eq!(
        browser
            .get("/hub/")
            .await
            .location()
            .map(|l| l.starts_with("/hub/login")),
        Some(true)
    );
    assert_eq!(browser.get("/hub/nothing-here").await.status, 404);
    assert_eq!(
        browser
            .request(reqwest::Method::DELETE, "/hub/login", &[], None)
            .await
            .status,
        405
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_echoes_through_the_gateway_for_a_signed_in_user_only() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let url = format!("ws://127.0.0.1:{}/apps/one/ws", gw.port);

    let cookie = browser.cookie_header("/apps/one/ws").unwrap();
    let mut socket = open_echoing_websocket(&url, Some(&cookie)).await;
    socket
        .send(Message::text("hello through hubgate"))
        .await
        .unwrap();
    let echoed = match socket.next().await {
        Some(Ok(message)) => message,
        other => panic!("no echo ({other:?}); gateway log:\n{}", gw.log_text()),
    };
    assert_eq!(
        echoed.into_text().unwrap().as_str(),
        "hello through hubgate"
    );

    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "a socket without cookies must be refused");
}

/// One request with curl over HTTP/2 (ALPN, `--http2`), cookies kept in `jar`: the protocol it
/// spoke and the body.
fn curl_h2(jar: &std::path::Path, url: &str, form: &[(&str, &str)]) -> (String, String) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-k", "-s", "--http2"])
        .arg("-c")
        .arg(jar)
        .arg("-b")
        .arg(jar);
    for (name, value) in form {
        cmd.arg("--data-urlencode").arg(format!("{name}={value}"));
    }
    let out = cmd
        .args(["-w", "\n%{http_version}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, version) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (version.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_a_browser_speaking_http2_signs_in_and_reaches_the_app_over_http2() {
    let mut setup = Setup::default().app(App::new("one", upstream("one").await));
    setup.tls = true;
    let gw = setup.start();
    let dir = tempfile::tempdir().expect("temp dir");
    let jar = dir.path().join("jar");
    let base = format!("https://127.0.0.1:{}", gw.port);
    let (version, login) = curl_h2(&jar, &format!("{base}/hub/login"), &[]);
    assert_eq!(version, "2", "the TLS listener must offer h2 by ALPN");
    let csrf = hidden_field(&login, "csrf");
    let credentials = [
        ("username", "alice"),
        ("password", ALICE_PASSWORD),
        ("csrf", csrf.as_str()),
        ("next", "/"),
    ];
    let (version, _) = curl_h2(&jar, &format!("{base}/hub/login"), &credentials);
    assert_eq!(version, "2");
    let (version, _) = curl_h2(&jar, &format!("{base}/hub/authorize?app=one"), &[]);
    assert_eq!(version, "2");
    let (version, seen) = curl_h2(&jar, &format!("{base}/apps/one/data?x=1"), &[]);
    assert_eq!(version, "2");
    let seen: serde_json::Value = serde_json::from_str(&seen).expect("the app's echo");
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice", "{seen}");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https", "{seen}");
    assert_eq!(
        seen["headers"]["x-forwarded-host"],
        format!("127.0.0.1:{}", gw.port),
        "the upstream gets a Host (from :authority) and X-Forwarded-Host: {seen}"
    );
    assert_eq!(seen["path"], "/apps/one/data", "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tls_configured_the_gateway_serves_https_and_cookies_are_secure() {
    let mut setup = Setup::default().app(App::new("one", upstream("one").await));
    setup.tls = true;
    let gw = setup.start();
    let head = curl_head(&format!("https://127.0.0.1:{}/hub/login", gw.port));
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/2 200"),
        "{head}"
    );
    let csrf_cookie = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: hubgate-csrf=")
        })
        .expect("a cookie");
    assert!(
        csrf_cookie.contains("; Secure"),
        "https public_url: Secure by default: {csrf_cookie}"
    );
}
