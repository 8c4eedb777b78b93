//! Sign-out and everything that must be refused: tokens of another app, tampered tokens, old
//! cookies after sign-out, users outside an app's allowed groups.

mod common;
use common::*;

async fn two_apps() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .app(App::new("two", upstream("two").await).with("allowed_groups = [\"ops\"]"))
        .start()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_token_of_one_app_is_refused_by_another() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let token_for_one = browser.cookie("hubgate-app-one").unwrap().value;
    browser.set_cookie("hubgate-app-two", &token_for_one, "/apps/two/");
    browser.accept = JSON;
    let page = browser.get("/apps/two/x").await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "invalid_token");
    // A cached verification for app one does not open app two either.
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    assert_eq!(
        browser.get("/apps/two/x").await.json()["reason"],
        "invalid_token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_or_truncated_token_is_refused() {
    let gw = two_apps().await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let token = browser.cookie("hubgate-app-one").unwrap().value;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    // Claim to be bob, keep alice's signature.
    let claims = String::from_utf8(base64_decode(&parts[1]))
        .unwrap()
        .replace("alice", "bob");
    parts[1] = base64_encode(claims.as_bytes());
    for bad in [
        parts.join("."),
        token[..token.len() - 4].to_string(),
        format!("{token}A"),
        "garbage".into(),
        String::new(),
    ] {
        browser.set_cookie("hubgate-app-one", &bad, "/apps/one/");
        let page = browser.get("/apps/one/x").await;
        assert_eq!(page.status, 401, "{bad}");
        assert_eq!(page.json()["reason"], "invalid_token", "{bad}");
    }
    browser.set_cookie("hubgate-app-one", &token, "/apps/one/");
    assert_eq!(
        browser.get("/apps/one/x").await.status,
        200,
        "the real token still works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_its_session_id_cookie_is_a_mismatch() {
    let gw = two_apps().await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let real_sid = browser.cookie("hubgate-session-id").unwrap().value;
    browser.jar.retain(|c| c.name != "hubgate-session-id");
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_mismatch"
    );
    // Someone else's session id with alice's token: also a mismatch.
    let mut bob = gw.browser();
    bob.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    browser.set_cookie(
        "hubgate-session-id",
        &bob.cookie("hubgate-session-id").unwrap().value,
        "/",
    );
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_mismatch"
    );
    browser.set_cookie("hubgate-session-id", &real_sid, "/");
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sign_out_the_old_cookies_are_refused_at_once() {
    let gw = two_apps().await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    // Warm the verification cache: the next request is a cache hit.
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    let app_cookie = browser.cookie("hubgate-app-one").unwrap().value;
    let sid = browser.cookie("hubgate-session-id").unwrap().value;

    let out = browser.get("/hub/logout").await;
    assert_eq!(
        (out.status, out.location()),
        (302, Some("/hub/login?reason=logged_out"))
    );
    // Every cookie is cleared at its own path.
    let cleared = out.set_cookies();
    for (name, path) in [
        ("hubgate-hub-login", "/hub/"),
        ("hubgate-session-id", "/"),
        ("hubgate-app-one", "/apps/one/"),
        ("hubgate-app-two", "/apps/two/"),
    ] {
        assert!(
            cleared.iter().any(|c| c.starts_with(&format!("{name}=;"))
                && c.contains(&format!("Path={path};"))
                && c.contains("Max-Age=0")),
            "{name} not cleared at {path}: {cleared:?}"
        );
    }
    let left: Vec<&str> = browser.jar.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        left,
        vec!["hubgate-signed-out"],
        "only the signed-out marker is left"
    );
    // A tab reloaded later still learns why it has to sign in again.
    browser.accept = HTML;
    let (_, later) = browser.follow("/apps/one/").await;
    browser.accept = JSON;
    assert!(
        later.body.contains("You have signed out of every app."),
        "{}",
        later.body
    );

    let mut replay = gw.browser().api();
    replay.set_cookie("hubgate-app-one", &app_cookie, "/apps/one/");
    replay.set_cookie("hubgate-session-id", &sid, "/");
    let page = replay.get("/apps/one/x").await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "session_revoked");
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"logout\"}", 1.0)
            .await,
        1.0
    );
    let login = browser.get("/hub/login?reason=logged_out").await;
    assert!(login.body.contains("You have signed out of every app."));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_logout_alias_works_from_an_apps_page() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    // At /logout the browser sends only the session-id cookie (path /): that is enough.
    assert!(browser
        .cookie_header("/logout")
        .unwrap()
        .starts_with("hubgate-session-id="));
    let out = browser
        .request(
            reqwest::Method::POST,
            "/logout",
            &[("origin", &gw.url(""))],
            Some(String::new()),
        )
        .await;
    assert_eq!(out.status, 302);
    let (chain, _) = browser.follow("/apps/one/").await;
    assert!(
        chain.iter().any(|u| u.starts_with("/hub/login")),
        "{chain:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_outside_the_allowed_groups_gets_403() {
    let gw = two_apps().await;
    let mut bob = gw.browser();
    bob.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    let (_, page) = bob.follow("/apps/two/").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("No access to this app"), "{}", page.body);
    assert!(bob.cookie("hubgate-app-two").is_none());
    // Alice (group ops) may.
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "two").await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
