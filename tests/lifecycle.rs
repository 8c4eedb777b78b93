//! Session lifecycle with short durations: sliding renewal, idle timeout, remember-me, admin
//! revoke, logout-all, and why each session ended (retired keys: security_tokens.rs).

mod common;
use common::*;
use std::time::Duration;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

async fn gateway(session: &str, tokens: &str) -> Gateway {
    Setup::default()
        .app(
            App::new("one", upstream("one").await)
                .with("activity_exempt_paths = [\"/apps/one/api/status\"]"),
        )
        .app(App::new("two", upstream("two").await))
        .session(session)
        .tokens(tokens)
        .env("HUBGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .start()
}

fn renewed_token(page: &Page) -> Option<String> {
    page.set_cookies()
        .iter()
        .find_map(|c| c.strip_prefix("hubgate-app-one="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_happens_past_the_threshold_and_not_before() {
    let gw = gateway("", "ttl = \"4s\"\nrenew_threshold = 0.5\nrenew_min_interval = \"0s\"\nexpose_new_token_header = true").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let fresh = browser.get("/apps/one/x").await;
    assert_eq!(fresh.status, 200);
    assert_eq!(renewed_token(&fresh), None, "a fresh token is not renewed");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let old = browser.cookie("hubgate-app-one").unwrap().value;
    let late = browser.get("/apps/one/x").await;
    assert_eq!(late.status, 200);
    let new = renewed_token(&late).expect("renewed past the threshold");
    assert_ne!(new, old);
    assert_eq!(late.header("x-new-token"), Some(new.as_str()));
    assert!(late
        .set_cookies()
        .iter()
        .any(|c| c.contains("Path=/apps/one/") && c.contains("HttpOnly")));
    assert_eq!(
        gw.metric_reaches("hubgate_token_renewals_total{app=\"one\"}", 1.0)
            .await,
        1.0
    );
    // The new token works, and is fresh again.
    let again = browser.get("/apps/one/x").await;
    assert_eq!((again.status, renewed_token(&again)), (200, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn renewal_happens_at_most_once_per_min_interval() {
    // Threshold 1.0: every token always "wants" renewal; only the interval holds it back.
    let gw = gateway(
        "",
        "ttl = \"1h\"\nrenew_threshold = 1.0\nrenew_min_interval = \"30s\"",
    )
    .await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let old = browser.cookie("hubgate-app-one").unwrap().value;
    let mut renewals = 0;
    for _ in 0..5 {
        // Replaying the old token too: concurrent tabs may still send it.
        browser.set_cookie("hubgate-app-one", &old, "/apps/one/");
        let page = browser.get("/apps/one/x").await;
        assert_eq!(page.status, 200);
        renewals += usize::from(renewed_token(&page).is_some());
    }
    // The first request (opening the app while signing in) renewed; none of the next five did.
    assert_eq!(renewals, 0);
    assert_eq!(
        gw.metric_reaches("hubgate_token_renewals_total{app=\"one\"}", 1.0)
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exempt_paths_never_renew() {
    let gw = gateway(
        "",
        "ttl = \"1h\"\nrenew_threshold = 1.0\nrenew_min_interval = \"0s\"",
    )
    .await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    for _ in 0..3 {
        let page = browser.get("/apps/one/api/status").await;
        assert_eq!((page.status, renewed_token(&page)), (200, None));
    }
    let page = browser.get("/apps/one/work").await;
    assert!(renewed_token(&page).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_of_a_live_session_is_reissued_without_a_redirect() {
    let gw = gateway("", "ttl = \"1s\"\nrenew_min_interval = \"1h\"").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // An in-flight POST with an expired token goes through and gets a fresh token.
    let page = browser.post_form("/apps/one/save", &[("doc", "1")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(renewed_token(&page).is_some());
    let mut html = gw.browser();
    html.jar = browser.jar.clone();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let nav = html.get("/apps/one/").await;
    assert_eq!(
        nav.status, 200,
        "a browser is not bounced through the hub either"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_is_refused_even_while_its_verification_is_cached() {
    let gw = gateway("idle_timeout = \"2s\"\ncache_ttl = \"5m\"", "").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    assert!(
        gw.metric_reaches("hubgate_auth_cache_lookups_total{result=\"hit\"}", 1.0)
            .await
            >= 1.0
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let page = browser.get("/apps/one/x").await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "idle_timeout");
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"idle_timeout\"}", 1.0)
            .await,
        1.0
    );
    // The browser lands on the sign-in page, which says why.
    browser.accept = HTML;
    let (chain, login) = browser.follow("/apps/one/").await;
    assert!(
        chain.last().unwrap().contains("reason=idle_timeout"),
        "{chain:?}"
    );
    assert!(
        login
            .body
            .contains("You were signed out after 2 seconds without activity."),
        "{}",
        login.body
    );
    let log = gw.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("session_ended"))
        .expect("a session_ended log line");
    // Noticed by a request (app and path named) or by the sweeper (app "-"), whichever came first.
    for field in [
        "\"user\":\"alice\"",
        "\"reason\":\"idle_timeout\"",
        "\"session_age\"",
        "\"idle_time\"",
        "\"app\":",
        "\"path\":",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_session_outlives_several_idle_periods() {
    let gw = gateway("idle_timeout = \"2s\"", "").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    for _ in 0..14 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let page = browser.get("/apps/one/work").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_kept_busy_only_on_exempt_paths_ends() {
    let gw = gateway("idle_timeout = \"2s\"", "").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut polls = Vec::new();
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        polls.push(browser.get("/apps/one/api/status").await.status);
    }
    assert_eq!(
        polls[0], 200,
        "polling is admitted while the session lives: {polls:?}"
    );
    assert_eq!(
        *polls.last().unwrap(),
        401,
        "but does not keep it alive: {polls:?}"
    );
    assert_eq!(
        browser.get("/apps/one/work").await.json()["reason"],
        "idle_timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn remember_me_outlives_the_normal_lifetime() {
    let gw = gateway(
        "lifetime = \"2s\"\nremember_me_lifetime = \"1h\"\nidle_timeout = \"0s\"",
        "",
    )
    .await;
    let mut plain = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut remembered = gw.browser();
    let page = remembered
        .sign_in_to("alice", ALICE_PASSWORD, true, "/apps/one/")
        .await;
    assert_eq!(page.status, 303);
    for cookie in page
        .set_cookies()
        .iter()
        .filter(|c| c.starts_with("hubgate-hub-login") || c.starts_with("hubgate-session-id"))
    {
        assert!(
            cookie.contains("Max-Age=3600"),
            "remember-me cookies persist: {cookie}"
        );
    }
    remembered.follow("/apps/one/").await;
    remembered.accept = JSON;
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(remembered.get("/apps/one/x").await.status, 200);
    let expired = plain.get("/apps/one/x").await;
    assert_eq!(expired.json()["reason"], "session_expired");
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"expired\"}", 1.0)
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_page_explains_each_reason() {
    let gw = gateway("idle_timeout = \"30m\"", "").await;
    let mut browser = gw.browser();
    for (reason, text) in [
        ("logged_out", "You have signed out of every app."),
        (
            "idle_timeout",
            "You were signed out after 30 minutes without activity.",
        ),
        ("session_expired", "Your session reached its time limit."),
        ("revoked", "An administrator ended your session."),
        (
            "key_removed",
            "signed with a key that has since been retired",
        ),
    ] {
        let page = browser.get(&format!("/hub/login?reason={reason}")).await;
        assert!(page.body.contains(text), "{reason}: {}", page.body);
    }
    let unknown = browser.get("/hub/login?reason=%3Cscript%3E").await;
    assert!(!unknown.body.contains("class=\"banner") && !unknown.body.contains("<script>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_revoke_needs_the_right_token_and_ends_the_users_sessions() {
    let gw = gateway("", "").await;
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut bob = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    let client = reqwest::Client::new();
    let revoke = |token: &str, body: &str| {
        client
            .post(gw.url("/hub/api/admin/revoke"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let wrong = revoke("not-the-token", r#"{"user":"alice"}"#)
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        alice.get("/apps/one/x").await.status,
        200,
        "a wrong token revokes nothing"
    );
    let missing = client
        .post(gw.url("/hub/api/admin/revoke"))
        .body(r#"{"all":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);

    let right = revoke(ADMIN_TOKEN, r#"{"user":"alice"}"#).await.unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(
        right.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"revoked": 1})
    );
    assert_eq!(
        alice.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    assert_eq!(bob.get("/apps/one/x").await.status, 200);

    let everyone = revoke(ADMIN_TOKEN, r#"{"all":true}"#).await.unwrap();
    assert_eq!(
        everyone.json::<serde_json::Value>().await.unwrap()["revoked"],
        1
    );
    assert_eq!(bob.get("/apps/one/x").await.status, 401);
    assert_eq!(revoke(ADMIN_TOKEN, "nonsense").await.unwrap().status(), 400);
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"revoked\"}", 2.0)
            .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_is_off_without_a_token() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let off = reqwest::Client::new()
        .post(gw.url("/hub/api/admin/revoke"))
        .header("authorization", "Bearer anything")
        .body(r#"{"all":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_all_ends_every_session_of_the_user() {
    let gw = gateway("", "").await;
    let mut laptop = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut phone = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut bob = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    laptop.accept = HTML;
    let out = laptop.get("/hub/logout?all=1").await;
    assert_eq!(out.status, 302);
    assert_eq!(
        phone.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    assert_eq!(bob.get("/apps/one/x").await.status, 200);
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"logout_all\"}", 2.0)
            .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_api_tells_what_an_operator_needs_to_debug_a_logout() {
    let gw = gateway("idle_timeout = \"30m\"", "ttl = \"1h\"").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let info = browser.get("/hub/api/session").await.json();
    assert_eq!(info["user"], "alice");
    assert_eq!(info["groups"], serde_json::json!(["ops"]));
    assert_eq!(info["remember_me"], false);
    assert_eq!(info["idle_timeout_seconds"], 1800);
    assert!(info["idle_seconds_left"].as_u64().unwrap() > 1790);
    assert!(info["expires_in_seconds"].as_u64().unwrap() > 43_000);
    let apps = info["apps"].as_array().unwrap();
    let one = apps.iter().find(|a| a["name"] == "one").unwrap();
    assert!(one["token_seconds_left"].as_u64().unwrap() > 3500, "{one}");
    let two = apps.iter().find(|a| a["name"] == "two").unwrap();
    assert!(two["token_seconds_left"].is_null(), "not opened yet: {two}");
    browser.accept = HTML;
    let page = browser.get("/hub/session").await;
    assert!(
        page.body.contains("Signed in as alice") && page.body.contains("not opened yet"),
        "{}",
        page.body
    );
    let mut anonymous = gw.browser().api();
    assert_eq!(anonymous.get("/hub/api/session").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_requests_of_one_busy_session_cost_almost_no_store_work() {
    let gw = gateway("idle_timeout = \"30m\"", "").await;
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let touches = "hubgate_store_operation_duration_seconds_count{op=\"touch\"}";
    let lookups = "hubgate_store_operation_duration_seconds_count{op=\"lookup\"}";
    let (touch_before, lookup_before) = (gw.metric(touches).await, gw.metric(lookups).await);
    for _ in 0..1000 {
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let writes = gw.metric(touches).await - touch_before;
    let reads = gw.metric(lookups).await - lookup_before;
    println!(
        "1000 requests of one session: {writes} store writes (touch), {reads} store reads (lookup)"
    );
    assert!(writes <= 1.0, "{writes} writes");
    assert!(reads <= 1.0, "{reads} reads");
}
