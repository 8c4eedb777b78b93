//! Sign-in, the browser's redirect chain, and what API clients are told.

mod common;
use common::*;

async fn two_apps() -> Gateway {
    let one = upstream("one").await;
    let two = upstream("two").await;
    Setup::default()
        .app(App::new("one", one))
        .app(App::new("two", two).with("allowed_groups = [\"ops\"]"))
        .start()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_goes_app_authorize_login_authorize_app() {
    let gw = two_apps().await;
    let mut browser = gw.browser();

    let (chain, login_page) = browser.follow("/apps/one/notes?page=2").await;
    assert_eq!(
        chain[1],
        "/hub/authorize?app=one&next=%2Fapps%2Fone%2Fnotes%3Fpage%3D2"
    );
    assert!(
        chain[2].starts_with("/hub/login?next=%2Fhub%2Fauthorize%3Fapp%3Done"),
        "{chain:?}"
    );
    assert_eq!(login_page.status, 200);
    assert!(login_page
        .body
        .contains("<form method=\"post\" action=\"/hub/login\">"));

    let next = hidden_field(&login_page.body, "next");
    assert_eq!(
        next,
        "/hub/authorize?app=one&amp;next=%2Fapps%2Fone%2Fnotes%3Fpage%3D2"
    );
    let signed_in = browser
        .sign_in_to("alice", ALICE_PASSWORD, false, &next.replace("&amp;", "&"))
        .await;
    assert_eq!(signed_in.status, 303);
    let (chain, app_page) = browser.follow(signed_in.location().unwrap()).await;
    assert_eq!(chain.last().unwrap(), "/apps/one/notes?page=2");
    assert_eq!(app_page.status, 200);
    assert!(
        app_page.body.contains("id=\"x-forwarded-user\">alice<"),
        "{}",
        app_page.body
    );

    // The second app needs no second sign-in.
    let (chain, page) = browser.follow("/apps/two/").await;
    assert_eq!(page.status, 200, "{chain:?}");
    assert!(
        chain.iter().all(|url| !url.contains("/hub/login")),
        "{chain:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_client_gets_401_json_with_a_reason() {
    let gw = two_apps().await;
    let mut api = gw.browser().api();
    let page = api.get("/apps/one/api/items").await;
    assert_eq!(page.status, 401);
    assert_eq!(
        page.json(),
        serde_json::json!({"error": "unauthenticated", "reason": "no_token", "login_url": "/hub/login"})
    );
    // A POST from a browser page is not a navigation either: 401, never a redirect.
    let mut browser = gw.browser();
    let post = browser.post_form("/apps/one/save", &[("a", "1")]).await;
    assert_eq!(post.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_refused_without_a_session() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    let page = browser
        .sign_in_to("alice", "not-her-password", false, "/")
        .await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("Wrong user name or password."));
    assert!(browser.cookie("hubgate-session-id").is_none());
    assert!(browser.cookie("hubgate-hub-login").is_none());
    // An unknown user gets the very same answer: user names cannot be probed.
    let unknown = browser.sign_in_to("mallory", "x", false, "/").await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("Wrong user name or password."));
    assert_eq!(
        gw.metric_reaches("hubgate_logins_total{result=\"failure\"}", 2.0)
            .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_post_without_the_anti_csrf_token_or_from_another_site_is_refused() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    let _ = browser.get("/hub/login").await;
    let no_token = browser
        .post_form(
            "/hub/login",
            &[
                ("username", "alice"),
                ("password", ALICE_PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(no_token.status, 403);
    assert!(browser.cookie("hubgate-session-id").is_none());

    let form = browser.get("/hub/login").await;
    let csrf = hidden_field(&form.body, "csrf");
    let body = format!("username=alice&password={ALICE_PASSWORD}&csrf={csrf}&next=/");
    let cross_site = browser
        .request(
            reqwest::Method::POST,
            "/hub/login",
            &[("origin", "https://evil.example")],
            Some(body.clone()),
        )
        .await;
    assert_eq!(cross_site.status, 403);
    let fetch_meta = browser
        .request(
            reqwest::Method::POST,
            "/hub/login",
            &[("sec-fetch-site", "cross-site")],
            Some(body),
        )
        .await;
    assert_eq!(fetch_meta.status, 403);
    assert!(browser.cookie("hubgate-session-id").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_sign_in_mints_a_new_session_id_and_never_adopts_a_planted_one() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    let planted = "A".repeat(43);
    browser.set_cookie("hubgate-session-id", &planted, "/");
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let first = browser.cookie("hubgate-session-id").unwrap().value;
    assert_ne!(first, planted);
    browser.get("/hub/logout").await;
    browser
        .sign_in_to("alice", ALICE_PASSWORD, false, "/")
        .await;
    let second = browser.cookie("hubgate-session-id").unwrap().value;
    assert_ne!(first, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn cookies_have_the_documented_names_paths_and_flags() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let hub = browser.cookie("hubgate-hub-login").unwrap();
    let sid = browser.cookie("hubgate-session-id").unwrap();
    let app = browser.cookie("hubgate-app-one").unwrap();
    assert_eq!(
        (hub.path.as_str(), sid.path.as_str(), app.path.as_str()),
        ("/hub/", "/", "/apps/one/")
    );
    for c in [&hub, &sid, &app] {
        assert!(
            c.raw.contains("HttpOnly") && c.raw.contains("SameSite=Lax"),
            "{}",
            c.raw
        );
        assert!(
            !c.raw.contains("Secure"),
            "http public_url: no Secure by default: {}",
            c.raw
        );
        assert!(
            c.max_age.is_none(),
            "without remember-me these are browser-session cookies"
        );
    }
    assert_eq!(sid.value.len(), 43);
    // The app cookie is a JWT whose header names the key.
    assert_eq!(app.value.split('.').count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_pages_carry_the_security_headers() {
    let gw = two_apps().await;
    let mut browser = gw.browser();
    let page = browser.get("/hub/login").await;
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let health = browser.get("/hub/health").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "{\"status\":\"ok\"}")
    );
    let ready = browser.get("/hub/ready").await;
    assert_eq!(ready.status, 200);
}
