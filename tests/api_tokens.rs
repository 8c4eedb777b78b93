//! API tokens for scripts: made by a signed-in person (JSON API or the session page), sent as
//! `Authorization: Bearer hg_…` by a client with no cookies, accepted only for the apps they name
//! and only while their owner may use them; revoked on one instance, refused on every other at
//! once; revoked with their owner when a reload removes the user.

mod common;

use common::*;
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "api-token-test-admin-0123";

/// A signed-in person's JSON call to the hub, as the session page's own origin would send it.
async fn hub_json(
    gw: &Gateway,
    browser: &Browser,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, gw.url(path))
        .header("origin", gw.url(""))
        .header("accept", "application/json");
    if let Some(cookies) = browser.cookie_header("/hub/api/tokens") {
        req = req.header("cookie", cookies);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("hub answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn make_token(gw: &Gateway, browser: &Browser, apps: &[&str], expires_in: &str) -> Value {
    let (status, made) = hub_json(
        gw,
        browser,
        reqwest::Method::POST,
        "/hub/api/tokens",
        Some(json!({"name": "nightly report", "apps": apps, "expires_in": expires_in})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    made
}

/// What a script sees: `curl -H "Authorization: Bearer …"`, no cookies.
async fn script_get(gw: &Gateway, path: &str, token: &str) -> Page {
    let resp = reqwest::Client::new()
        .get(gw.url(path))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("gateway answered");
    Page {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap_or_default(),
    }
}

fn reason(page: &Page) -> String {
    page.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn admin(gw: &Gateway, method: reqwest::Method, query: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, gw.url(&format!("/hub/api/admin/tokens?{query}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin API answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_reaches_the_apps_its_token_names_with_its_owners_identity() {
    let (one, two) = (upstream("one").await, upstream("two").await);
    let gw = Setup::default()
        // Even where the app asks for Authorization headers, the gateway's own token stays home.
        .app(App::new("one", one).with("pass_authorization = true"))
        .app(App::new("two", two))
        .start();
    let alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;

    let made = make_token(&gw, &alice, &["one"], "1h").await;
    let token = made["token"].as_str().expect("the secret, this once");
    assert!(token.starts_with("hg_") && token.len() > 40, "{made}");
    assert_eq!(made["apps"], json!(["one"]));

    let page = script_get(&gw, "/apps/one/report", token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = page.json();
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");
    assert_eq!(seen["headers"]["x-forwarded-groups"], "ops");
    assert_eq!(seen["headers"]["x-forwarded-email"], "alice@example.com");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "the token never reaches the app: {seen}"
    );
    assert!(page.set_cookies().is_empty(), "tokens never get cookies");

    let other_app = script_get(&gw, "/apps/two/x", token).await;
    assert_eq!(
        (other_app.status, reason(&other_app)),
        (403, "token_not_for_app".into())
    );
    let forged = format!("hg_{}", "A".repeat(43));
    let unknown = script_get(&gw, "/apps/one/x", &forged).await;
    assert_eq!(
        (unknown.status, reason(&unknown)),
        (401, "token_unknown".into())
    );
    assert!(unknown
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
    // A bearer token that is not ours authenticates nothing: the cookie rules answer.
    let foreign = script_get(&gw, "/apps/one/x", "some-other-token").await;
    assert_eq!((foreign.status, reason(&foreign)), (401, "no_token".into()));

    // Listed without its secret; not a session, so not one of alice's devices.
    let (_, listed) = hub_json(&gw, &alice, reqwest::Method::GET, "/hub/api/tokens", None).await;
    assert_eq!(listed["tokens"][0]["id"], made["id"]);
    assert!(listed["tokens"][0].get("token").is_none(), "{listed}");
    assert!(!listed.to_string().contains(token));
    let (_, session) = hub_json(&gw, &alice, reqwest::Method::GET, "/hub/api/session", None).await;
    assert_eq!(session["other_devices"], json!([]), "{session}");

    let short = make_token(&gw, &alice, &["one"], "1s").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let expired = script_get(&gw, "/apps/one/x", short["token"].as_str().unwrap()).await;
    assert_eq!(
        (expired.status, reason(&expired)),
        (401, "token_expired".into())
    );

    assert_eq!(
        gw.metric("hubgate_api_token_requests_total{result=\"allowed\"}")
            .await,
        1.0
    );
    assert!(
        gw.metric("hubgate_api_token_requests_total{result=\"token_not_for_app\"}")
            .await
            >= 1.0
    );
    let id = made["id"].as_str().unwrap();
    assert!(
        gw.log_text().contains(&format!("\"api_token\":\"{id}\"")),
        "the use is logged with the token's id"
    );
    assert!(!gw.log_text().contains(token), "the secret is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_get_a_clear_answer_and_change_nothing() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .app(App::new("research", upstream("r").await).with("allowed_groups = [\"research\"]"))
        .start();
    let alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let post = |body: Value| {
        hub_json(
            &gw,
            &alice,
            reqwest::Method::POST,
            "/hub/api/tokens",
            Some(body),
        )
    };
    for (body, field) in [
        (json!({"name": "x", "apps": ["nope"]}), "apps"),
        (json!({"name": "x", "apps": ["research"]}), "apps"),
        (json!({"name": "x", "apps": []}), "apps"),
        (json!({"name": "", "apps": ["one"]}), "name"),
        (
            json!({"name": "x", "apps": ["one"], "expires_in": "400d"}),
            "expires_in",
        ),
        (
            json!({"name": "x", "apps": ["one"], "expires_in": "soon"}),
            "expires_in",
        ),
        (json!({"name": "x"}), "apps"),
    ] {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (400, Some(field)),
            "{body}: {answer}"
        );
    }
    // A cross-site page cannot make a token with the person's cookies.
    let resp = reqwest::Client::new()
        .post(gw.url("/hub/api/tokens"))
        .header("origin", "https://evil.example")
        .header("cookie", alice.cookie_header("/hub/api/tokens").unwrap())
        .header("content-type", "application/json")
        .body(json!({"name": "x", "apps": ["one"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = reqwest::Client::new()
        .post(gw.url("/hub/api/tokens"))
        .header("cookie", alice.cookie_header("/hub/api/tokens").unwrap())
        .header("content-type", "text/plain")
        .body(json!({"name": "x", "apps": ["one"]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let (status, _) = hub_json(
        &gw,
        &gw.browser(),
        reqwest::Method::GET,
        "/hub/api/tokens",
        None,
    )
    .await;
    assert_eq!(status, 401, "no session, no tokens");
    let (status, _) = hub_json(
        &gw,
        &alice,
        reqwest::Method::DELETE,
        "/hub/api/tokens/0123456789abcdef",
        None,
    )
    .await;
    assert_eq!(status, 404);

    let (_, listed) = hub_json(&gw, &alice, reqwest::Method::GET, "/hub/api/tokens", None).await;
    assert_eq!(listed["tokens"], json!([]), "nothing was made: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_instance_is_refused_on_the_other_at_once() {
    let redis = Redis::start();
    let setup = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 1)]))
        .env("HUBGATE_ADMIN_TOKEN", ADMIN_TOKEN);
    let (a, b) = (setup.clone().start(), setup.start());
    let alice = Browser::signed_in_api(&a, "alice", ALICE_PASSWORD, "one").await;
    let first = make_token(&a, &alice, &["one"], "1h").await;
    let second = make_token(&a, &alice, &["one"], "1h").await;
    let (first_token, second_token) = (
        first["token"].as_str().unwrap(),
        second["token"].as_str().unwrap(),
    );
    assert_eq!(script_get(&b, "/apps/one/x", first_token).await.status, 200);
    assert_eq!(
        script_get(&b, "/apps/one/x", second_token).await.status,
        200
    );

    let id = first["id"].as_str().unwrap();
    let (status, _) = hub_json(
        &a,
        &alice,
        reqwest::Method::DELETE,
        &format!("/hub/api/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let refused = script_get(&b, "/apps/one/x", first_token).await;
    assert_eq!(
        (refused.status, reason(&refused)),
        (401, "token_revoked".into()),
        "the very next request on B"
    );
    assert_eq!(
        script_get(&b, "/apps/one/x", second_token).await.status,
        200
    );

    // An administrator sees alice's remaining token on B and revokes it there; A refuses it.
    let (status, listed) = admin(&b, reqwest::Method::GET, "user=alice").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, [second["id"].as_str().unwrap()], "{listed}");
    let (status, revoked) = admin(&b, reqwest::Method::DELETE, "user=alice").await;
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(1)));
    let refused = script_get(&a, "/apps/one/x", second_token).await;
    assert_eq!(reason(&refused), "token_revoked");
    let (status, _) = admin(&b, reqwest::Method::GET, "user=alice").await;
    assert_eq!(status, 200);
    let resp = reqwest::Client::new()
        .get(b.url("/hub/api/admin/tokens?user=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "the admin API needs its token");

    // Only digests are stored: the secret is nowhere in Redis.
    let keys = redis
        .command(&["KEYS", "test:*apitoken*"])
        .unwrap_or_default();
    assert!(!keys.is_empty());
    assert!(!keys.contains(second_token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_page_makes_a_token_shows_it_once_and_revokes_it() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let page = alice.get("/hub/session").await;
    assert!(page.body.contains("id=\"new-api-token\""), "{}", page.body);
    assert!(page.body.contains("id=\"no-api-tokens\""));
    let csrf = hidden_field(&page.body, "csrf");
    let origin = gw.url("");
    alice.extra_headers = vec![("origin".into(), origin)];
    let made = alice
        .post_form(
            "/hub/session/tokens",
            &[
                ("csrf", &csrf),
                ("name", "grafana export"),
                ("app", "one"),
                ("days", "7"),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let start = made
        .body
        .find("id=\"new-token\">")
        .expect("the secret is shown")
        + 15;
    let token = &made.body[start..start + made.body[start..].find('<').unwrap()];
    assert!(token.starts_with("hg_"), "{token}");
    assert_eq!(script_get(&gw, "/apps/one/x", token).await.status, 200);

    let page = alice.get("/hub/session").await;
    assert!(page.body.contains("grafana export"));
    assert!(!page.body.contains(token), "never shown again");
    let id = {
        let start = page.body.find("data-token=\"").unwrap() + 12;
        page.body[start..start + 16].to_string()
    };
    let revoked = alice
        .post_form(
            "/hub/session/tokens/revoke",
            &[("csrf", &csrf), ("id", &id)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        reason(&script_get(&gw, "/apps/one/x", token).await),
        "token_revoked"
    );
    // Without the form's CSRF token nothing is made.
    let forged = alice
        .post_form(
            "/hub/session/tokens",
            &[("csrf", "wrong"), ("name", "x"), ("app", "one")],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_revokes_their_tokens() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let bob = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    let token = make_token(&gw, &bob, &["one"], "1h").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(script_get(&gw, "/apps/one/x", &token).await.status, 200);

    std::fs::write(
        gw.dir.path().join("users.toml"),
        users_toml(&["alice".into()]),
    )
    .unwrap();
    gw.hang_up();
    gw.wait_for_log("config reloaded");
    let refused = script_get(&gw, "/apps/one/x", &token).await;
    assert_eq!(
        (refused.status, reason(&refused)),
        (401, "token_revoked".into())
    );
    assert!(gw.log_text().contains("API tokens revoked"));
}
