//! `POST /hub/api/logout-event`: a front end's report of a sign-out — its limits (size, JSON,
//! type, same-site, rate), never a 5xx, one log line, the per-type counter, and the report kept
//! with the user's recent sign-outs (also when it comes after the end, as session.js's does).

mod common;
use common::*;

const EVENT: &str = "/hub/api/logout-event";

async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .start()
}

async fn report(browser: &mut Browser, body: &str, headers: &[(&str, &str)]) -> Page {
    browser
        .request(
            reqwest::Method::POST,
            EVENT,
            headers,
            Some(body.to_string()),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_are_checked_counted_logged_and_kept_with_the_users_sign_outs() {
    let gw = gateway().await;
    for kind in [
        "user_action",
        "token_expired",
        "refresh_failed",
        "auth_error",
        "unknown",
    ] {
        let series = format!("hubgate_client_logout_events_total{{type=\"{kind}\"}}");
        assert_eq!(
            gw.metric(&series).await,
            0.0,
            "{series} exists before any event"
        );
    }
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;

    let too_big = format!(
        r#"{{"type":"unknown","message":"{}"}}"#,
        "x".repeat(4 * 1024)
    );
    assert_eq!(report(&mut alice, &too_big, &[]).await.status, 413);
    let huge = "x".repeat(100 * 1024);
    assert_eq!(report(&mut alice, &huge, &[]).await.status, 413);
    for (body, error) in [
        ("not json", "bad_json"),
        ("", "bad_json"),
        (r#"{"message":"no type"}"#, "bad_json"),
        (r#"{"type":"reboot"}"#, "unknown_type"),
        (r#"{"type":"auth_error","idle_minutes":"ten"}"#, "bad_json"),
    ] {
        let page = report(&mut alice, body, &[]).await;
        assert_eq!(page.status, 400, "{body}");
        assert_eq!(page.json()["error"], error, "{body}");
    }
    let good = r#"{"type":"token_expired","message":"refresh got 401","location":"/apps/one/d/x?token=secret","idle_minutes":23}"#;
    for cross_site in [
        [("origin", "http://evil.example")],
        [("sec-fetch-site", "cross-site")],
    ] {
        assert_eq!(report(&mut alice, good, &cross_site).await.status, 403);
    }
    assert_eq!(
        gw.metric("hubgate_client_logout_events_total{type=\"token_expired\"}")
            .await,
        0.0
    );

    let page = report(
        &mut alice,
        good,
        &[
            ("origin", &gw.url("")),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
        ],
    )
    .await;
    assert_eq!(page.status, 202, "{}", page.body);
    assert_eq!(page.json()["stored"], true);
    assert_eq!(
        gw.metric("hubgate_client_logout_events_total{type=\"token_expired\"}")
            .await,
        1.0
    );
    let log = gw.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("\"event\":\"client_logout\""))
        .expect("one structured log line");
    for field in [
        "\"type\":\"token_expired\"",
        "\"user\":\"alice\"",
        "\"app\":\"one\"",
        "\"location\":\"/apps/one/d/x\"",
        "\"device\":\"Firefox 128 on Linux\"",
        "\"client\":\"127.0.0.1\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(
        !log.contains("token=secret"),
        "a location's query is never logged"
    );

    let session = alice.get("/hub/api/session").await.json();
    let reports = session["front_end_reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["type"], "token_expired");
    assert_eq!(reports[0]["message"], "refresh got 401");
    assert_eq!(reports[0]["idle_minutes"], 23.0);

    // The dialog's report comes after the end (here: "sign out everywhere" from another
    // browser): it still finds alice, and sits with that session's end.
    let first = session["session"]
        .as_str()
        .expect("session ref")
        .to_string();
    let mut other = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    other.get("/hub/logout?all=1").await;
    let after = report(
        &mut alice,
        r#"{"type":"user_action","message":"dialog"}"#,
        &[],
    )
    .await;
    assert_eq!(after.status, 202);
    assert_eq!(after.json()["stored"], true);
    let mut again = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let session = again.get("/hub/api/session").await.json();
    let ends = session["recent_sign_outs"].as_array().expect("ends");
    let end = ends
        .iter()
        .find(|e| e["session"] == first.as_str())
        .expect("the first session's end");
    assert_eq!(end["reason"], "logout_all");
    let with_end = end["reports"].as_array().expect("reports of that session");
    assert_eq!(
        with_end.len(),
        2,
        "both reports of the ended session: {end}"
    );
    assert_eq!(with_end[0]["message"], "dialog");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_thirty_a_minute_are_refused_per_session_and_per_address() {
    let gw = gateway().await;
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let body = r#"{"type":"unknown","message":"loop"}"#;
    for i in 0..30 {
        assert_eq!(
            report(&mut alice, body, &[]).await.status,
            202,
            "report {i}"
        );
    }
    let refused = report(&mut alice, body, &[]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("60"));
    // A stranger from the same address (no session at all) is over the address's limit too.
    let mut stranger = gw.browser().api();
    assert_eq!(report(&mut stranger, body, &[]).await.status, 429);
    assert_eq!(
        gw.metric("hubgate_client_logout_events_total{type=\"unknown\"}")
            .await,
        30.0
    );
}
