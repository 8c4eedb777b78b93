//! Oversized and malformed requests: each gets a 4xx answer, never a 500 or a crash, nothing of
//! it reaches an upstream it should not, and the gateway goes on serving everyone else.

mod common;
use common::*;

/// Two apps on one upstream server, as when one backend serves several prefixes: only a path
/// that escapes app one's prefix could reach app two, which alice may not use.
async fn gateway() -> Gateway {
    let shared = upstream("shared").await;
    Setup::default()
        .app(App::new("one", shared))
        .app(App::new("two", shared).with("allowed_users = [\"bob\"]"))
        .start()
}

fn request(path: &[u8], cookie: &[u8]) -> Vec<u8> {
    let mut r = b"GET ".to_vec();
    r.extend_from_slice(path);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n");
    if !cookie.is_empty() {
        r.extend_from_slice(b"Cookie: ");
        r.extend_from_slice(cookie);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"Connection: close\r\n\r\n");
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_cookie_headers_are_refused_with_431() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let own = alice.cookie_header("/apps/one/x").unwrap();

    let big = format!("{own}; filler={}", "A".repeat(64 * 1024));
    let many: String = (0..10_000).map(|i| format!("c{i}=v; ")).collect::<String>() + &own;
    for (what, cookie) in [("64 KiB", &big), ("10,000 cookies", &many)] {
        for path in ["/apps/one/x", "/hub/login", "/hub/api/session", "/nowhere"] {
            let status = raw_request(gw.port, &request(path.as_bytes(), cookie.as_bytes()));
            assert_eq!(status, 431, "{what} at {path}");
        }
    }
    // Split over many Cookie headers, as HTTP/2 clients send them: the total counts.
    let mut split = b"GET /apps/one/x HTTP/1.1\r\nHost: x\r\n".to_vec();
    for _ in 0..40 {
        split.extend_from_slice(format!("Cookie: f={}\r\n", "B".repeat(1000)).as_bytes());
    }
    split.extend_from_slice(b"\r\n");
    assert_eq!(raw_request(gw.port, &split), 431);
    // A browser gets a page saying what to do.
    let page = alice
        .get_with("/apps/one/", &[("cookie", &"C".repeat(40_000))])
        .await;
    assert_eq!(page.status, 431);
    assert!(page.body.contains("Too many cookies"), "{}", page.body);
    // A large but plausible set of app cookies (20 KiB) still works.
    let plenty = format!(
        "{own}; {}",
        (0..20)
            .map(|i| format!("app{i}={}", "d".repeat(1000)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let page = alice.get_with("/apps/one/x", &[("cookie", &plenty)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_bytes_in_cookies_and_paths_get_4xx() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let sid = alice.cookie("hubgate-session-id").unwrap().value;
    let token = alice.cookie("hubgate-app-one").unwrap().value;

    let mut binary_sid = b"hubgate-session-id=\xff; hubgate-app-one=".to_vec();
    binary_sid.extend_from_slice(token.as_bytes());
    for (path, cookie) in [
        (
            &b"/apps/one/x"[..],
            &b"hubgate-session-id=\xff\xfe\x00; hubgate-app-one=\xc3\x28"[..],
        ),
        (b"/apps/one/x", &binary_sid),
        (b"/hub/api/session", b"hubgate-hub-login=\xff\xfe\xfd"),
        (b"/apps/one/\xff\xfe", b""),
        (b"/hub/login?next=/\xff", b""),
        (b"/apps/one/x?q=\xc3\x28", b""),
    ] {
        let status = raw_request(gw.port, &request(path, cookie));
        assert!(
            (400..500).contains(&status),
            "{status} for {:?} with {:?}",
            String::from_utf8_lossy(path),
            String::from_utf8_lossy(cookie)
        );
    }
    // An app's own cookie with odd bytes is the app's business: alice's request still passes.
    let mut cookie = format!("hubgate-session-id={sid}; hubgate-app-one={token}; ").into_bytes();
    cookie.extend_from_slice(b"app_pref=\xff\xfe");
    let head = raw_response_head(gw.port, &request(b"/apps/one/x", &cookie));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_would_escape_an_app_prefix_are_refused_even_when_signed_in() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let cookie = alice.cookie_header("/apps/one/x").unwrap();
    for path in [
        "/apps/one/../two/secret",
        "/apps/one/%2e%2e/two/secret",
        "/apps/one/..%2Ftwo/secret",
        "/apps/one/..%2ftwo/secret",
        "/apps/one/%2e%2e%2ftwo/secret",
        "/apps/one/..%5Ctwo/secret",
        "/apps/one/..\\two/secret",
        "/apps/one/..;/two/secret",
        "/apps/one/x/..%2F..%2Ftwo/secret",
        "/apps/one/./../two/secret",
    ] {
        let head = raw_response_head(gw.port, &request(path.as_bytes(), cookie.as_bytes()));
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
    }
    // Encoded slashes that do not climb out are an app's own business (GitLab project paths).
    let head = raw_response_head(
        gw.port,
        &request(b"/apps/one/projects/group%2Fname", cookie.as_bytes()),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // And app two stays closed to alice by its own door.
    alice.accept = JSON;
    assert_eq!(alice.get("/apps/two/secret").await.status, 401);
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_request_lines_headers_and_bodies_get_4xx() {
    let gw = gateway().await;
    let long_line = request(
        format!("/apps/one/{}", "a".repeat(100 * 1024)).as_bytes(),
        b"",
    );
    assert_eq!(raw_request(gw.port, &long_line), 400);
    let long_hub = request(
        format!("/hub/login?next=/{}", "a".repeat(100 * 1024)).as_bytes(),
        b"",
    );
    assert_eq!(raw_request(gw.port, &long_hub), 400);
    // More headers than Pingora keeps.
    let mut many = b"GET /hub/health HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..300 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(raw_request(gw.port, &many), 400);
    // Two different Content-Lengths (a request-smuggling classic).
    assert_eq!(
        raw_request(
            gw.port,
            b"POST /hub/login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"
        ),
        400
    );
    // A sign-in body far past any form.
    let mut body = b"POST /hub/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\n\r\n".to_vec();
    body.extend_from_slice(&vec![b'a'; 200_000]);
    assert_eq!(raw_request(gw.port, &body), 413);
    // A `next` of 60 KiB (under the request-line limit) is refused by the sanitiser, not echoed.
    let mut browser = gw.browser();
    let form = browser
        .get(&format!("/hub/login?next=/{}", "n".repeat(60 * 1024)))
        .await;
    assert_eq!(form.status, 200);
    assert_eq!(hidden_field(&form.body, "next"), "/");
    // Garbage instead of HTTP: no answer or a 400, and the next client is served.
    let status = raw_request(
        gw.port,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
    );
    assert!(status == 0 || status == 400, "{status}");
    assert_still_serves(&gw, "one").await;
}
