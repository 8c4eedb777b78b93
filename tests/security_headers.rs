//! Header injection and hub page hardening: client-sent identity headers never reach an upstream
//! (any letter case, repeated, or spelled with underscores), nothing a client sends is echoed raw
//! into a response header, and every hub page carries the browser protections.

mod common;
use common::*;

/// Identity claims a client may try to smuggle past the gateway, each as an upstream might read
/// it. `X_Forwarded_User` is what a CGI/WSGI server files under the same name as the real one.
const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-user", "mallory"),
    ("X-FORWARDED-USER", "root"),
    ("X-Forwarded-User", "admin"),
    ("x_forwarded_user", "mallory"),
    ("X_Forwarded_Groups", "admin"),
    ("x-forwarded-groups", "admin"),
    ("X-Forwarded-Email", "mallory@evil.example"),
    ("remote-user", "root"),
    ("REMOTE_USER", "root"),
    ("X-Original-URL", "/apps/one/admin"),
    ("x-rewrite-url", "/apps/one/admin"),
    ("Forwarded", "for=10.0.0.1;host=admin.internal;proto=https"),
];

fn assert_no_spoofed_header(seen: &serde_json::Value, user: Option<&str>) {
    let headers = seen["headers"].as_object().expect("headers");
    for (name, value) in headers {
        let value = value.as_str().unwrap_or_default();
        assert!(
            !["mallory", "root", "admin"].contains(&value) && !value.contains("evil.example"),
            "{name}: {value} reached the upstream: {seen}"
        );
        assert!(
            !name.contains('_')
                && !["x-original-url", "x-rewrite-url", "forwarded"].contains(&name.as_str()),
            "{name} reached the upstream: {seen}"
        );
    }
    assert_eq!(seen["headers"]["remote-user"].as_str(), user, "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_identity_headers_never_reach_the_upstream() {
    let gw = Setup::default()
        .app(
            App::new("one", upstream("one").await).with(
                "public_paths = [\"/apps/one/public/\"]\n[apps.identity_headers]\nuser = \"Remote-User\"",
            ),
        )
        .start();
    // On a public path: no identity at all, whatever the client claims.
    let mut api = gw.browser().api();
    let seen = api.get_with("/apps/one/public/x", SPOOFED).await.json();
    assert_no_spoofed_header(&seen, None);
    // Signed in as alice: the upstream sees alice, once, and nothing the client made up.
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    browser.accept = JSON;
    let seen = browser.get_with("/apps/one/x", SPOOFED).await.json();
    assert_no_spoofed_header(&seen, Some("alice"));
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_header_tricks_are_refused_or_stripped() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await).with("public_paths = [\"/apps/one/public/\"]"))
        .start();
    // A header folded onto the next line (obs-fold) could hide an identity header from a
    // filter that reads line by line: refused outright.
    let folded = raw_request(
        gw.port,
        b"GET /apps/one/public/x HTTP/1.1\r\nHost: x\r\nX-Other: a\r\n X-Forwarded-User: mallory\r\n\r\n",
    );
    assert_eq!(folded, 400);
    // A bare CR inside a header value, or a space before the colon: refused.
    for request in [
        &b"GET /apps/one/public/x HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Forwarded-User: mallory\r\n\r\n"
            [..],
        b"GET /apps/one/public/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-User : mallory\r\n\r\n",
    ] {
        let status = raw_request(gw.port, request);
        assert_eq!(status, 400, "{:?}", String::from_utf8_lossy(request));
    }
    // A bare CR in the request line stays part of the path (Pingora percent-encodes it): the
    // upstream gets one odd path, never a header.
    let answer = raw_exchange(
        gw.port,
        b"GET /apps/one/public/x\rX-Forwarded-User: mallory HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let seen: serde_json::Value = serde_json::from_str(body).expect(&answer);
    assert!(seen["headers"].get("x-forwarded-user").is_none(), "{seen}");
    assert_eq!(
        seen["path"],
        "/apps/one/public/x%0DX-Forwarded-User:%20mallory"
    );
    // The same identity header three times, sent raw: every copy goes.
    let head = raw_response_head(
        gw.port,
        b"GET /apps/one/public/x HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nX-Forwarded-User: a\r\nx-forwarded-user: b\r\nX_FORWARDED_USER: c\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut api = gw.browser().api();
    let seen = api
        .get_with(
            "/apps/one/public/x",
            &[("x-forwarded-user", "a"), ("x-forwarded-user", "b")],
        )
        .await
        .json();
    assert!(seen["headers"].get("x-forwarded-user").is_none(), "{seen}");
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_pages_carry_browser_protections_and_escape_what_they_echo() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut browser = gw.browser();
    let check = |page: &Page, what: &str| {
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            page.header("referrer-policy"),
            Some("same-origin"),
            "{what}"
        );
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        let csp = page.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp}");
        }
        assert!(
            !csp.contains("script-src"),
            "no scripts on hub pages: {csp}"
        );
    };
    // Everything a person sees at the hub, signed out and signed in, answers and errors alike.
    for path in [
        "/hub/login",
        "/hub/nothing",
        "/hub/authorize?app=nope",
        "/hub/api/session",
    ] {
        let page = browser.get(path).await;
        check(&page, path);
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }
    // A failed sign-in echoes the user name and `next` back into the form: escaped.
    let xss = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";
    let failed = browser
        .sign_in_to(
            xss,
            "wrong",
            false,
            "/apps/one/\"><script>alert(2)</script>",
        )
        .await;
    assert_eq!(failed.status, 401);
    check(&failed, "failed sign-in");
    assert!(!failed.body.contains("<script>"), "{}", failed.body);
    assert!(!failed.body.contains("<img"), "{}", failed.body);
    assert!(failed
        .body
        .contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;"));
    // Signed in: the pages that show session state are never cached.
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    for path in ["/hub/session", "/hub/api/session", "/hub/"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        check(&page, path);
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
    }
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_response_carrying_a_fresh_token_is_never_cacheable() {
    // Threshold 1.0 and no minimum interval: every request renews the token.
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .tokens("ttl = \"1h\"\nrenew_threshold = 1.0\nrenew_min_interval = \"0s\"")
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    browser.accept = JSON;
    let page = browser.get("/apps/one/static/app.js").await;
    assert_eq!(page.status, 200);
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("hubgate-app-one=")),
        "expected a renewal: {:?}",
        page.headers
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_still_serves(&gw, "one").await;
}

/// Sends raw bytes and reads the whole answer (the request must say `Connection: close`).
fn raw_exchange(port: u16, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
