//! Cookie tossing, session fixation and cross-site requests: cookies someone else planted are
//! never adopted, two different copies of one of the gateway's cookies are refused rather than
//! resolved in the attacker's favour, and sign-in and sign-out only accept the gateway's own pages.

mod common;
use common::*;

async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .start()
}

/// Sends exactly this Cookie header (a browser sends tossed cookies in one header, in an order
/// the attacker can influence: longer paths first, then older cookies first).
async fn with_cookie_header(gw: &Gateway, path: &str, cookie: &str, accept: &'static str) -> Page {
    let mut client = gw.browser();
    client.accept = accept;
    client.get_with(path, &[("cookie", cookie)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_copies_of_a_gateway_cookie_are_refused_not_resolved() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let a_token = alice.cookie("hubgate-app-one").unwrap().value;
    let a_sid = alice.cookie("hubgate-session-id").unwrap().value;
    let a_hub = alice.cookie("hubgate-hub-login").unwrap().value;
    // The attacker's own valid cookies, as a sibling subdomain would toss them for the parent domain.
    let mut mallory = gw.browser();
    mallory.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    let m_token = mallory.cookie("hubgate-app-one").unwrap().value;
    let m_sid = mallory.cookie("hubgate-session-id").unwrap().value;
    let m_hub = mallory.cookie("hubgate-hub-login").unwrap().value;

    let tossed = [
        // The attacker's copies first (older), then the victim's.
        format!("hubgate-app-one={m_token}; hubgate-session-id={m_sid}; hubgate-app-one={a_token}; hubgate-session-id={a_sid}"),
        // The victim's first.
        format!("hubgate-app-one={a_token}; hubgate-session-id={a_sid}; hubgate-app-one={m_token}; hubgate-session-id={m_sid}"),
        // Only the session id tossed: the victim's token no longer has one partner.
        format!("hubgate-session-id={m_sid}; hubgate-app-one={a_token}; hubgate-session-id={a_sid}"),
        // Only the app cookie tossed, at a longer path so it comes first.
        format!("hubgate-app-one={m_token}; hubgate-app-one={a_token}; hubgate-session-id={a_sid}"),
    ];
    for cookie in &tossed {
        let api = with_cookie_header(&gw, "/apps/one/x", cookie, JSON).await;
        assert_eq!(api.status, 400, "{cookie}: {}", api.body);
        assert_eq!(api.json()["error"], "conflicting_cookies");
        // A browser gets a page that says what to do — not a redirect that would come back here.
        let page = with_cookie_header(&gw, "/apps/one/x", cookie, HTML).await;
        assert_eq!(page.status, 400);
        assert!(
            page.body.contains("Conflicting sign-in cookies"),
            "{}",
            page.body
        );
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
    // The same cookie twice (host-only and for the configured domain) is one cookie.
    let twice = format!(
        "hubgate-app-one={a_token}; hubgate-session-id={a_sid}; hubgate-session-id={a_sid}"
    );
    let page = with_cookie_header(&gw, "/apps/one/x", &twice, JSON).await;
    assert_eq!(page.json()["headers"]["x-forwarded-user"], "alice");

    // At the hub: two hub-login cookies name nobody, and the sign-in page says why.
    let hub =
        format!("hubgate-hub-login={m_hub}; hubgate-hub-login={a_hub}; hubgate-session-id={a_sid}");
    let page = with_cookie_header(&gw, "/hub/api/session", &hub, JSON).await;
    assert_eq!(page.status, 401, "{}", page.body);
    let page = with_cookie_header(&gw, "/hub/login", &hub, HTML).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("two different copies of a sign-in cookie"),
        "{}",
        page.body
    );
    // A tossed anti-CSRF cookie next to the real one: the sign-in is refused, with the reason.
    let mut victim = gw.browser();
    let form = victim.get("/hub/login").await;
    let csrf = hidden_field(&form.body, "csrf");
    let body = format!("username=alice&password={ALICE_PASSWORD}&csrf={csrf}&next=/");
    let page = victim
        .request(
            reqwest::Method::POST,
            "/hub/login",
            &[("cookie", "hubgate-csrf=attackerchosenvalue0123456789abc")],
            Some(body),
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("two different copies"), "{}", page.body);
    assert!(victim.cookie("hubgate-session-id").is_none());

    // Nobody's session was harmed or swapped.
    alice.accept = JSON;
    assert_eq!(
        alice.get("/apps/one/x").await.json()["headers"]["x-forwarded-user"],
        "alice"
    );
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_session_is_never_adopted_at_sign_in() {
    let gw = gateway().await;
    // The attacker's real, live session cookies, planted in the victim's browser beforehand.
    let mut mallory = gw.browser();
    mallory.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    let m_sid = mallory.cookie("hubgate-session-id").unwrap().value;
    let m_hub = mallory.cookie("hubgate-hub-login").unwrap().value;
    let mut victim = gw.browser();
    victim.set_cookie("hubgate-session-id", &m_sid, "/");
    victim.set_cookie("hubgate-hub-login", "planted-garbage", "/hub/");
    // A syntactically valid id nobody issued, planted the same way, is not adopted either.
    let mut other = gw.browser();
    other.set_cookie("hubgate-session-id", &"A".repeat(43), "/");
    // Even the attacker's live hub-login cookie: a person who signs in gets their own session.
    let mut tossed = gw.browser();
    tossed.set_cookie("hubgate-session-id", &m_sid, "/");
    tossed.set_cookie("hubgate-hub-login", &m_hub, "/hub/");

    for (browser, planted) in [
        (&mut victim, m_sid.as_str()),
        (&mut other, &"A".repeat(43)),
        (&mut tossed, m_sid.as_str()),
    ] {
        let form = browser.get("/hub/login?reason=logged_out").await;
        let csrf = hidden_field(&form.body, "csrf");
        let page = browser
            .post_form(
                "/hub/login",
                &[
                    ("username", "alice"),
                    ("password", ALICE_PASSWORD),
                    ("csrf", &csrf),
                    ("next", "/"),
                ],
            )
            .await;
        assert_eq!(page.status, 303);
        let minted = browser.cookie("hubgate-session-id").unwrap().value;
        assert_ne!(minted, planted, "the planted session id was adopted");
        assert_ne!(browser.cookie("hubgate-hub-login").unwrap().value, m_hub);
        assert!(page
            .set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("hubgate-session-id={minted};"))));
        browser.accept = JSON;
        let me = browser.get("/hub/api/session").await.json();
        assert_eq!(me["user"], "alice");
        browser.accept = HTML;
        let (_, app) = browser.follow("/apps/one/x").await;
        assert!(
            app.body.contains("id=\"x-forwarded-user\">alice<"),
            "{}",
            app.body
        );
    }
    // The attacker's session is still only the attacker's, and it never became alice's.
    mallory.accept = JSON;
    assert_eq!(mallory.get("/hub/api/session").await.json()["user"], "bob");
    assert_eq!(
        mallory.get("/apps/one/x").await.json()["headers"]["x-forwarded-user"],
        "bob"
    );
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_sign_in_is_refused() {
    let gw = gateway().await;
    let own_origin = gw.url("");
    let mut victim = gw.browser();
    let form = victim.get("/hub/login").await;
    let csrf_cookie = victim.cookie("hubgate-csrf").unwrap();
    assert!(csrf_cookie.raw.contains("HttpOnly") && csrf_cookie.raw.contains("SameSite=Lax"));
    assert_eq!(csrf_cookie.path, "/hub/");
    assert!(
        csrf_cookie
            .max_age
            .is_some_and(|age| age > 0 && age <= 3600),
        "short-lived: {}",
        csrf_cookie.raw
    );
    let csrf = hidden_field(&form.body, "csrf");
    let body =
        |token: &str| format!("username=alice&password={ALICE_PASSWORD}&csrf={token}&next=/");

    // The attacker's own form token (from their own visit) does not match the victim's cookie.
    let mut attacker = gw.browser();
    let attackers_token = hidden_field(&attacker.get("/hub/login").await.body, "csrf");
    for (what, token, headers) in [
        ("the attacker's token", attackers_token.as_str(), vec![]),
        ("no token", "", vec![]),
        (
            "another origin",
            csrf.as_str(),
            vec![("origin", "https://evil.example")],
        ),
        ("origin null", csrf.as_str(), vec![("origin", "null")]),
        (
            "a sibling subdomain",
            csrf.as_str(),
            vec![("sec-fetch-site", "same-site")],
        ),
        (
            "cross-site",
            csrf.as_str(),
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", own_origin.as_str()),
            ],
        ),
    ] {
        let page = victim
            .request(
                reqwest::Method::POST,
                "/hub/login",
                &headers,
                Some(body(token)),
            )
            .await;
        assert_eq!(page.status, 403, "{what}: {}", page.body);
        assert!(victim.cookie("hubgate-session-id").is_none(), "{what}");
    }
    // Without the victim's cookie, the token alone is worth nothing.
    let mut cookieless = gw.browser();
    let page = cookieless
        .request(reqwest::Method::POST, "/hub/login", &[], Some(body(&csrf)))
        .await;
    assert_eq!(page.status, 403);
    // The real form, from the gateway's own page, works.
    let page = victim
        .request(
            reqwest::Method::POST,
            "/hub/login",
            &[
                ("origin", own_origin.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
            Some(body(&csrf)),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_sign_out_is_refused() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    for path in ["/hub/logout", "/logout", "/hub/logout?all=1"] {
        for headers in [
            vec![("origin", "https://evil.example")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
        ] {
            let page = alice
                .request(reqwest::Method::POST, path, &headers, Some(String::new()))
                .await;
            assert_eq!(page.status, 403, "{path} {headers:?}");
            assert!(page.set_cookies().is_empty(), "{path}: cookies touched");
        }
    }
    alice.accept = JSON;
    assert_eq!(
        alice.get("/apps/one/x").await.status,
        200,
        "still signed in"
    );
    // From the gateway's own page it works.
    let out = alice
        .request(
            reqwest::Method::POST,
            "/hub/logout",
            &[("origin", gw.url("").as_str())],
            Some(String::new()),
        )
        .await;
    assert_eq!(out.status, 302);
    assert_eq!(alice.get("/apps/one/x").await.status, 401);
    assert_still_serves(&gw, "one").await;
}
