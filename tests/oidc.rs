//! Sign-in through a real OpenID Provider (panva's oidc-provider, tests/oidc/provider.mjs) with a
//! plain HTTP client playing the browser: the code flow end to end, who may sign in, the
//! provider down at start, a key rotation at the provider, back-channel logout across two
//! instances sharing Redis, and sign-out that ends the provider's session too.

mod common;
use common::oidc::{client, OidcProvider};
use common::*;

use std::time::{Duration, Instant};

const PROVIDER: &str = "corp";

/// A gateway on `port` that signs people in through `provider`, with app `one`.
async fn gateway_for(provider: &OidcProvider, port: u16, extra: &str) -> Gateway {
    Setup::default()
        .on_port(port)
        .app(App::new("one", upstream("one").await))
        .hub(&provider.config(PROVIDER, extra))
        .start()
}

/// Waits until the gateway has discovered the provider (discovery runs in the background).
async fn discovered(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready: serde_json::Value = reqwest::get(gw.url("/hub/ready"))
            .await
            .expect("ready")
            .json()
            .await
            .expect("ready JSON");
        if ready["providers"][PROVIDER] == "ready" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "provider never discovered: {ready}\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// App → authorize → sign-in page → the provider's button → provider login as `login` →
/// callback → app. Returns the gateway browser (signed in) and the app page.
async fn sign_in_through(
    provider: &OidcProvider,
    gw: &Gateway,
    login: &str,
) -> (Browser, Browser, Page) {
    let mut browser = gw.browser();
    let (chain, login_page) = browser.follow("/apps/one/notes?page=2").await;
    assert!(
        chain.last().unwrap().starts_with("/hub/login?next="),
        "{chain:?}"
    );
    assert!(
        login_page.body.contains("Sign in with Corp SSO"),
        "{}",
        login_page.body
    );
    let start = button_href(&login_page.body);
    let to_provider = browser.get(&start).await;
    assert_eq!(to_provider.status, 302, "{}", to_provider.body);
    let authorization = to_provider.location().unwrap().to_string();
    for param in [
        "code_challenge_method=S256",
        "response_type=code",
        "state=",
        "nonce=",
        "client_id=hubgate",
    ] {
        assert!(
            authorization.contains(param),
            "{param} missing: {authorization}"
        );
    }
    let mut at_provider = provider.browser();
    let callback = provider
        .sign_in(&mut at_provider, &authorization, login)
        .await;
    let callback_path = callback
        .strip_prefix(&gw.url(""))
        .expect("back at the gateway");
    assert!(
        callback_path.starts_with("/hub/oidc/corp/callback?"),
        "{callback}"
    );
    let (chain, page) = browser.follow(callback_path).await;
    assert!(chain.iter().all(|u| !u.contains("/hub/login")), "{chain:?}");
    (browser, at_provider, page)
}

fn button_href(html: &str) -> String {
    let marker = "href=\"/hub/oidc/corp/start";
    let start = html.find(marker).expect("a provider button") + "href=\"".len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_code_flow_signs_in_with_the_mapped_user_email_and_groups() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = gateway_for(&provider, port, "").await;
    discovered(&gw).await;

    let (browser, _, page) = sign_in_through(&provider, &gw, "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"x-forwarded-user\">alice<"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("id=\"x-forwarded-email\">alice@example.com<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"x-forwarded-groups\">ops,staff<"),
        "{}",
        page.body
    );
    // The same cookies as a password sign-in; the sign-in's own cookie is gone.
    for name in ["hubgate-hub-login", "hubgate-session-id", "hubgate-app-one"] {
        assert!(browser.cookie(name).is_some(), "{name} missing");
    }
    assert!(browser.cookie("hubgate-oidc").is_none());
    let session = browser.api().get("/hub/api/session").await.json();
    assert_eq!(session["user"], "alice");
    assert_eq!(session["provider"], "corp");
    assert_eq!(
        gw.metric("hubgate_oidc_logins_total{provider=\"corp\",result=\"success\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_groups_and_email_domains_refuse_with_a_page_and_no_session() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = gateway_for(
        &provider,
        port,
        "allowed_groups = [\"ops\", \"staff\"]\nallowed_email_domains = [\"example.com\"]",
    )
    .await;
    discovered(&gw).await;
    // carol: research only, other.org; dave: staff, but his example.com address is unverified.
    for login in ["carol", "dave"] {
        let mut browser = gw.browser();
        let login_page = browser.follow("/apps/one/").await.1;
        let to_provider = browser.get(&button_href(&login_page.body)).await;
        let mut at_provider = provider.browser();
        let callback = provider
            .sign_in(&mut at_provider, to_provider.location().unwrap(), login)
            .await;
        let page = browser
            .get(callback.strip_prefix(&gw.url("")).unwrap())
            .await;
        assert_eq!(page.status, 403, "{login}: {}", page.body);
        assert!(page.body.contains("No access"), "{}", page.body);
        assert!(
            browser.cookie("hubgate-hub-login").is_none(),
            "{login} got a session"
        );
        assert!(
            browser.cookie("hubgate-session-id").is_none(),
            "{login} got a session"
        );
    }
    assert_eq!(
        gw.metric("hubgate_oidc_logins_total{provider=\"corp\",result=\"denied\"}")
            .await,
        2.0
    );
    let (_, _, page) = sign_in_through(&provider, &gw, "alice").await;
    assert_eq!(page.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_or_tampered_callback_is_refused_and_changes_nothing() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = gateway_for(&provider, port, "").await;
    discovered(&gw).await;
    let mut browser = gw.browser();
    let login_page = browser.follow("/apps/one/").await.1;
    let start = button_href(&login_page.body);
    let to_provider = browser.get(&start).await;
    let pending_cookie = browser
        .cookie("hubgate-oidc")
        .expect("the sign-in's cookie");
    assert!(pending_cookie.raw.contains("HttpOnly") && pending_cookie.raw.contains("Path=/hub/"));
    let mut at_provider = provider.browser();
    let callback = provider
        .sign_in(&mut at_provider, to_provider.location().unwrap(), "alice")
        .await;
    let callback_path = callback.strip_prefix(&gw.url("")).unwrap().to_string();

    // A mismatched state (the cookie kept): refused, and the pending sign-in is used up.
    let mut attacker = gw.browser();
    attacker.jar = browser.jar.clone();
    let tampered = callback_path.replace("state=", "state=x");
    let page = attacker.get(&tampered).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(attacker.cookie("hubgate-session-id").is_none());
    // No sign-in under way in a browser without the cookie.
    let page = gw.browser().get(&callback_path).await;
    assert_eq!(page.status, 400);

    // The real browser signs in once…
    let page = browser.get(&callback_path).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // …and the same code again (cookie restored by hand) is refused by the provider.
    let mut replay = gw.browser();
    replay.jar.push(pending_cookie);
    let page = replay.get(&callback_path).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(replay.cookie("hubgate-session-id").is_none());
    assert!(
        gw.log_text().contains("\"check\":\"state\""),
        "the log names the check"
    );
    assert!(
        gw.log_text().contains("\"check\":\"code\""),
        "the log names the check"
    );

    // The provider's own error answer: the sign-in page with a message.
    let mut cancelled = gw.browser();
    cancelled.get(&start).await;
    let page = cancelled
        .get("/hub/oidc/corp/callback?error=access_denied&state=x")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("was cancelled or refused"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_down_at_start_is_named_then_used_once_it_answers() {
    let port = free_port();
    let provider_port = free_port();
    // The gateway starts first, pointing at a provider that is not there yet.
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let gw = Setup::default()
        .on_port(port)
        .app(App::new("one", upstream("one").await))
        .hub(&format!(
            "[[hub.providers]]\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = \"{issuer}\"\nclient_id = \"hubgate\"\nclient_secret = \"{}\"\n",
            common::oidc::CLIENT_SECRET
        ))
        .start();
    let ready: serde_json::Value = reqwest::get(gw.url("/hub/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["providers"]["corp"]
            .as_str()
            .unwrap()
            .starts_with("unavailable"),
        "{ready}"
    );
    let page = gw
        .browser()
        .get("/hub/oidc/corp/start?next=/apps/one/")
        .await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("Corp SSO is unavailable"),
        "{}",
        page.body
    );
    // The password form still works meanwhile.
    let mut password_user = gw.browser();
    assert_eq!(
        password_user
            .sign_in_and_open("alice", ALICE_PASSWORD, "one")
            .await
            .status,
        200
    );

    let provider = OidcProvider::start_on(
        provider_port,
        serde_json::json!([client(&[port], PROVIDER)]),
    );
    discovered(&gw).await;
    let (_, _, page) = sign_in_through(&provider, &gw, "alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_signing_key_at_the_provider_does_not_break_sign_in() {
    let port = free_port();
    let mut provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = gateway_for(&provider, port, "").await;
    discovered(&gw).await;
    assert_eq!(sign_in_through(&provider, &gw, "alice").await.2.status, 200);

    provider.restart_with_key("k2");
    let (_, _, page) = sign_in_through(&provider, &gw, "carol").await;
    assert_eq!(page.status, 200, "{}\n{}", page.body, gw.log_text());
    assert!(page.body.contains("id=\"x-forwarded-user\">carol<"));
    assert!(gw
        .log_text()
        .contains("provider signing keys fetched again"));
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_at_the_provider_ends_the_session_on_every_instance_and_its_websocket() {
    let redis = Redis::start();
    provider_sign_out_reaches_both_instances(|setup| setup.with_redis(&redis)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_at_the_provider_reaches_every_instance_on_a_redis_cluster() {
    let cluster = RedisCluster::start();
    provider_sign_out_reaches_both_instances(|setup| setup.with_redis_cluster(&cluster)).await;
}

/// Two instances sharing `store`: the person signs out at the provider, which calls instance A;
/// the old cookies are refused on both, and an open WebSocket on B closes.
async fn provider_sign_out_reaches_both_instances(store: impl Fn(Setup) -> Setup) {
    let (port_a, port_b) = (free_port(), free_port());
    let provider = OidcProvider::start(serde_json::json!([client(&[port_a, port_b], PROVIDER)]));
    let upstream_one = upstream("one").await;
    let setup = |port: u16| {
        store(Setup::default())
            .on_port(port)
            .app(App::new("one", upstream_one))
            .tokens(&format!(
                "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"",
                fixed_key(1)
            ))
            .hub(&provider.config(PROVIDER, ""))
            .start()
    };
    let (a, b) = (setup(port_a), setup(port_b));
    discovered(&a).await;
    discovered(&b).await;

    let (browser, mut at_provider, page) = sign_in_through(&provider, &a, "alice").await;
    assert_eq!(page.status, 200);
    let mut on_a = browser.on(&a);
    let mut on_b = browser.on(&b);
    on_a.accept = JSON;
    on_b.accept = JSON;
    assert_eq!(on_a.get("/apps/one/x").await.status, 200);
    assert_eq!(on_b.get("/apps/one/x").await.status, 200);
    let url = format!("ws://127.0.0.1:{}/apps/one/ws", b.port);
    let cookie = on_b.cookie_header("/apps/one/ws").unwrap();
    let mut socket = open_echoing_websocket(&url, Some(&cookie)).await;

    // The person signs out at the provider, which calls instance A's back-channel endpoint.
    let end_session = format!("{}/session/end", provider.issuer);
    let called = Instant::now();
    provider
        .confirm_sign_out(&mut at_provider, &end_session)
        .await;
    let mut refused = [None, None];
    while refused.iter().any(Option::is_none) && called.elapsed() < Duration::from_secs(5) {
        for (i, client) in [&mut on_a, &mut on_b].into_iter().enumerate() {
            if refused[i].is_none() && client.get("/apps/one/x").await.status == 401 {
                refused[i] = Some(called.elapsed());
            }
        }
    }
    println!(
        "provider sign-out → old cookies refused: instance A after {:?}, instance B after {:?} (from the confirmation, including the provider's call)",
        refused[0], refused[1]
    );
    assert!(
        refused.iter().all(Option::is_some),
        "old cookies still admitted: {refused:?}\nprovider:\n{}",
        provider.log_text()
    );
    assert_eq!(
        a.metric("hubgate_backchannel_logouts_total{provider=\"corp\",result=\"ended\"}")
            .await,
        1.0
    );
    assert_eq!(
        a.metric("hubgate_sessions_ended_total{reason=\"provider_logout\"}")
            .await,
        1.0
    );
    assert_carries_nothing_more(&mut socket, "the provider's sign-out").await;
    // A browser navigation is told why.
    let mut navigating = browser.on(&b);
    let (_, page) = navigating.follow("/apps/one/").await;
    assert!(
        page.body.contains("You were signed out at Corp SSO."),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_with_end_provider_session_ends_the_providers_session_and_comes_back() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = gateway_for(&provider, port, "end_provider_session = true").await;
    discovered(&gw).await;
    let (mut browser, mut at_provider, _) = sign_in_through(&provider, &gw, "alice").await;
    let out = browser.get("/logout").await;
    assert_eq!(out.status, 302);
    let to_provider = out.location().unwrap().to_string();
    assert!(
        to_provider.starts_with(&format!("{}/session/end?", provider.issuer)),
        "{to_provider}"
    );
    assert!(to_provider.contains("id_token_hint="), "{to_provider}");
    // Ours ended before the browser left.
    browser.accept = JSON;
    assert_eq!(browser.get("/hub/api/session").await.status, 401);
    let back = provider
        .confirm_sign_out(&mut at_provider, &to_provider)
        .await;
    assert_eq!(back, gw.url("/hub/login?reason=logged_out"));
    browser.accept = HTML;
    let page = browser.get("/hub/login?reason=logged_out").await;
    assert!(page.body.contains("You have signed out of every app."));
    // The provider's session is gone too: signing in again asks for the login form.
    let mut again = gw.browser();
    let login_page = again.follow("/apps/one/").await.1;
    let to_provider = again.get(&button_href(&login_page.body)).await;
    let first = at_provider
        .get(
            to_provider
                .location()
                .unwrap()
                .strip_prefix(&provider.issuer)
                .unwrap(),
        )
        .await;
    let location = first.location().unwrap();
    let interaction = at_provider
        .get(location.strip_prefix(&provider.issuer).unwrap_or(location))
        .await;
    assert!(
        interaction.body.contains("name=\"login\""),
        "{}",
        interaction.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_disabled_at_the_provider_loses_every_app_at_the_next_recheck() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    // Every request asks the store (no cache), so every request may recheck once it is due.
    let gw = Setup::default()
        .on_port(port)
        .app(App::new("one", upstream("one").await))
        .session("cache_ttl = \"0s\"")
        .hub(&provider.config(PROVIDER, "recheck_interval = \"1s\""))
        .start();
    discovered(&gw).await;
    let (browser, _, page) = sign_in_through(&provider, &gw, "alice").await;
    assert_eq!(page.status, 200);
    let mut api = browser.on(&gw);
    api.accept = JSON;
    // Rechecked and still accepted (the provider rotates the refresh token; the new one is kept).
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            api.get("/apps/one/x").await.status,
            200,
            "{}",
            gw.log_text()
        );
    }
    let disabled = reqwest::Client::new()
        .post(format!("{}/__test/disable?account=alice", provider.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 204);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = api.get("/apps/one/x").await;
    assert_eq!(
        refused.status,
        401,
        "{}\n{}",
        refused.body,
        gw.log_text()
            .lines()
            .filter(|l| l.contains("recheck") || l.contains("provider"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(refused.json()["reason"], "session_revoked");
    assert_eq!(
        gw.metric("hubgate_sessions_ended_total{reason=\"provider_revoked\"}")
            .await,
        1.0
    );
    let mut navigating = browser.on(&gw);
    let (_, page) = navigating.follow("/apps/one/").await;
    assert!(
        page.body
            .contains("Corp SSO no longer accepts your account."),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_users_file_the_sign_in_page_goes_straight_to_the_only_provider() {
    let port = free_port();
    let provider = OidcProvider::start(serde_json::json!([client(&[port], PROVIDER)]));
    let gw = Setup::default()
        .on_port(port)
        .app(App::new("one", upstream("one").await))
        .hub(&format!(
            "users_file = \"\"\nauto_redirect = true\n{}",
            provider.config(PROVIDER, "")
        ))
        .start();
    discovered(&gw).await;
    let mut browser = gw.browser();
    let page = browser.get("/hub/login?next=%2Fapps%2Fone%2F").await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location(),
        Some("/hub/oidc/corp/start?next=%2Fapps%2Fone%2F")
    );
    // With a reason to tell, the page is shown — the button only, no password form.
    let page = browser.get("/hub/login?reason=provider_logout").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("You were signed out at Corp SSO."),
        "{}",
        page.body
    );
    assert!(page.body.contains("Sign in with Corp SSO"));
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    let posted = browser
        .post_form(
            "/hub/login",
            &[("username", "alice"), ("password", ALICE_PASSWORD)],
        )
        .await;
    assert_eq!(posted.status, 404, "password sign-in is off");
    // The whole way through still works.
    let (_, _, page) = sign_in_through_auto_redirect(&provider, &gw).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

async fn sign_in_through_auto_redirect(
    provider: &OidcProvider,
    gw: &Gateway,
) -> (Browser, Browser, Page) {
    let mut browser = gw.browser();
    // app → authorize → login → the provider's start → the provider (another origin).
    let mut url = "/apps/one/".to_string();
    let authorization = loop {
        let page = browser.get(&url).await;
        let location = page.location().expect("a redirect").to_string();
        if location.starts_with("http") {
            break location;
        }
        url = location;
    };
    assert!(
        authorization.starts_with(&provider.issuer),
        "{authorization}"
    );
    let mut at_provider = provider.browser();
    let callback = provider
        .sign_in(&mut at_provider, &authorization, "alice")
        .await;
    let (_, page) = browser
        .follow(callback.strip_prefix(&gw.url("")).unwrap())
        .await;
    (browser, at_provider, page)
}
