//! What operators see: every metric moving by the expected amount, and logs that never carry a
//! secret.

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn each_counter_moves_by_the_expected_amount() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await).with("public_paths = [\"/apps/one/public/\"]"))
        .app(App::new("two", upstream("two").await).with("websocket = false"))
        .start();
    // Every family is there before any traffic, at zero.
    for series in [
        "hubgate_requests_total{app=\"one\",outcome=\"allowed\"}",
        "hubgate_logins_total{result=\"locked_out\"}",
        "hubgate_sessions_ended_total{reason=\"idle_timeout\"}",
        "hubgate_store_errors_total{op=\"lookup\"}",
        "hubgate_revocations_received_total",
    ] {
        assert_eq!(gw.metric(series).await, 0.0, "{series}");
    }

    let mut browser = gw.browser();
    assert_eq!(browser.get("/apps/one/").await.status, 302); // redirected
    assert_eq!(
        browser
            .sign_in_to("alice", "wrong", false, "/")
            .await
            .status,
        401
    ); // login failure
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await; // login success + 1 redirected + 1 allowed
    browser.accept = JSON;
    for _ in 0..3 {
        assert_eq!(browser.get("/apps/one/x").await.status, 200); // allowed, cache hits
    }
    assert_eq!(browser.get("/apps/one/public/a").await.status, 200); // public
    let mut api = gw.browser().api();
    assert_eq!(api.get("/apps/one/y").await.status, 401); // unauthorized
    browser.accept = HTML;
    assert_eq!(browser.follow("/apps/two/").await.1.status, 200); // no second sign-in: 1 redirected, 1 allowed
    browser.accept = JSON;
    let upgrade = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    assert_eq!(browser.get_with("/apps/two/ws", &upgrade).await.status, 403); // forbidden
    assert_eq!(browser.get("/hub/logout").await.status, 302); // session ended: logout

    for (series, expected) in [
        (
            "hubgate_requests_total{app=\"one\",outcome=\"redirected\"}",
            2.0,
        ),
        (
            "hubgate_requests_total{app=\"one\",outcome=\"allowed\"}",
            4.0,
        ),
        (
            "hubgate_requests_total{app=\"one\",outcome=\"public\"}",
            1.0,
        ),
        (
            "hubgate_requests_total{app=\"one\",outcome=\"unauthorized\"}",
            1.0,
        ),
        (
            "hubgate_requests_total{app=\"two\",outcome=\"forbidden\"}",
            1.0,
        ),
        ("hubgate_logins_total{result=\"success\"}", 1.0),
        (
            "hubgate_requests_total{app=\"two\",outcome=\"allowed\"}",
            1.0,
        ),
        ("hubgate_logins_total{result=\"failure\"}", 1.0),
        ("hubgate_sessions_ended_total{reason=\"logout\"}", 1.0),
        ("hubgate_auth_cache_lookups_total{result=\"hit\"}", 3.0),
    ] {
        assert_eq!(
            gw.metric_reaches(series, expected).await,
            expected,
            "{series}"
        );
    }
    assert_eq!(
        gw.metric("hubgate_request_duration_seconds_count{app=\"one\"}")
            .await,
        8.0
    );
    assert_eq!(
        gw.metric("hubgate_store_operation_duration_seconds_count{op=\"create\"}")
            .await,
        1.0
    );
    assert_eq!(
        gw.metric("hubgate_build_info{version=\"0.1.0\"}").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_log_line_carries_a_token_cookie_value_or_password() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .env("HUBGATE_ADMIN_TOKEN", "observability-admin-token-42")
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_to("alice", "a-wrong-password-xyz", false, "/")
        .await;
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let secrets: Vec<String> = browser
        .jar
        .iter()
        .map(|c| c.value.clone())
        .filter(|v| v.len() > 8)
        .collect();
    assert!(
        secrets.len() >= 3,
        "hub-login, session id and app token: {secrets:?}"
    );
    browser.get("/apps/one/x").await;
    reqwest::Client::new()
        .post(gw.url("/hub/api/admin/revoke"))
        .bearer_auth("observability-admin-token-42")
        .body(r#"{"user":"nobody"}"#)
        .send()
        .await
        .unwrap();
    browser.get("/hub/logout").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let log = gw.log_text();
    assert!(
        log.contains("\"event\":\"login\"") && log.contains("\"event\":\"session_ended\""),
        "{log}"
    );
    assert!(
        log.contains("hubgate::access"),
        "an access log line per request"
    );
    for secret in secrets.iter().map(String::as_str).chain([
        ALICE_PASSWORD,
        "a-wrong-password-xyz",
        "observability-admin-token-42",
    ]) {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
    // JSON lines, each parseable.
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_refused_at_authorize_is_counted_as_forbidden_under_that_app() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .app(App::new("ops", upstream("ops").await).with("allowed_groups = [\"ops\"]"))
        .start();
    let mut bob = gw.browser();
    assert_eq!(
        bob.sign_in_to("bob", BOB_PASSWORD, false, "/").await.status,
        303
    );
    let (visited, page) = bob.follow("/apps/ops/").await;
    assert_eq!(page.status, 403, "{visited:?}");
    assert!(visited.iter().any(|u| u.contains("/hub/authorize")));
    for (series, expected) in [
        (
            "hubgate_requests_total{app=\"ops\",outcome=\"forbidden\"}",
            1.0,
        ),
        (
            "hubgate_requests_total{app=\"ops\",outcome=\"redirected\"}",
            1.0,
        ),
        (
            "hubgate_requests_total{app=\"one\",outcome=\"forbidden\"}",
            0.0,
        ),
    ] {
        assert_eq!(
            gw.metric_reaches(series, expected).await,
            expected,
            "{series}"
        );
    }
    // An unknown app name at authorize is no app's series.
    assert_eq!(bob.get("/hub/authorize?app=nope").await.status, 404);
    assert!(!String::from_utf8_lossy(
        &reqwest::get(format!("http://127.0.0.1:{}/metrics", gw.metrics_port))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    )
    .contains("app=\"nope\""));
}
