//! What session.js relies on, over real HTTP: the script (ETag, caching, also on an app host),
//! reading the session never counting as activity, "Stay signed in" (touch) only from the script
//! on this site, recent sign-outs kept and capped (memory and Redis), "Sign out that device", and
//! the admin endpoints on any instance.

mod common;
use common::*;

const ADMIN_TOKEN: &str = "session-script-admin-token-0123";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
const SCRIPT: (&str, &str) = ("x-hubgate-script", "1");

async fn setup() -> Setup {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .env("HUBGATE_ADMIN_TOKEN", ADMIN_TOKEN)
}

async fn signed_in(gw: &Gateway, user: &str, user_agent: &str) -> Browser {
    let mut browser = gw.browser();
    browser
        .extra_headers
        .push(("user-agent".into(), user_agent.into()));
    let password = if user == "bob" {
        BOB_PASSWORD
    } else {
        ALICE_PASSWORD
    };
    browser.sign_in_and_open(user, password, "one").await;
    browser.accept = JSON;
    browser
}

async fn admin_get(gw: &Gateway, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new().get(gw.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_script_is_cacheable_by_version_and_served_on_app_hosts_too() {
    let one = upstream("one").await;
    let gw = Setup::default()
        .app(App::new("one", one))
        .app(App::new("two", one).on_host("two.localhost"))
        .start();
    let mut browser = gw.browser();
    let page = browser.get("/hub/static/session.js").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(page
        .header("cache-control")
        .is_some_and(|c| c.starts_with("public")));
    let etag = page.header("etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with(&format!("\"{}-", env!("CARGO_PKG_VERSION"))),
        "{etag}"
    );
    assert!(page.body.contains("Stay signed in"));
    let again = browser
        .get_with("/hub/static/session.js", &[("if-none-match", &etag)])
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let on_host = browser
        .get_with("/.hubgate/static/session.js", &[("host", "two.localhost")])
        .await;
    assert_eq!(on_host.status, 200);
    assert_eq!(on_host.header("etag"), Some(etag.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_the_session_is_never_activity_and_only_the_scripts_touch_is() {
    let gw = setup()
        .await
        .session("idle_timeout = \"1h\"\nwarn_before = \"90s\"\npoll_interval = \"5s\"")
        .start();
    let mut alice = signed_in(&gw, "alice", FIREFOX).await;
    let first = alice.get("/hub/api/session").await.json();
    assert_eq!(first["signed_in"], true);
    assert_eq!(first["warn_before_seconds"], 90);
    assert_eq!(first["poll_seconds"], 5);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let polled = alice.get_with("/hub/api/session", &[SCRIPT]).await;
    assert!(polled.set_cookies().is_empty(), "polling renews no cookie");
    let polled = polled.json();
    assert_eq!(
        polled["last_seen"], first["last_seen"],
        "polling is not activity"
    );
    assert!(polled["idle_seconds_left"].as_u64() < first["idle_seconds_left"].as_u64());

    let touch = "/hub/api/session/touch";
    let without_header = alice.request(reqwest::Method::POST, touch, &[], None).await;
    assert_eq!(without_header.status, 403);
    let cross_site = alice
        .request(
            reqwest::Method::POST,
            touch,
            &[SCRIPT, ("sec-fetch-site", "cross-site")],
            None,
        )
        .await;
    assert_eq!(cross_site.status, 403);
    let other_origin = alice
        .request(
            reqwest::Method::POST,
            touch,
            &[SCRIPT, ("origin", "http://evil.example")],
            None,
        )
        .await;
    assert_eq!(other_origin.status, 403);
    let unchanged = alice.get("/hub/api/session").await.json();
    assert_eq!(unchanged["last_seen"], first["last_seen"]);
    let touched = alice
        .request(
            reqwest::Method::POST,
            touch,
            &[SCRIPT, ("origin", &gw.url(""))],
            None,
        )
        .await;
    assert_eq!(touched.status, 200, "{}", touched.body);
    let after = alice.get("/hub/api/session").await.json();
    assert!(
        after["last_seen"].as_u64() > first["last_seen"].as_u64(),
        "touch is activity"
    );

    // Ended: session.js is told with a 200 (no console error), API clients with a 401.
    let mut other = signed_in(&gw, "alice", PHONE).await;
    other.get("/hub/logout?all=1").await;
    let for_script = alice.get_with("/hub/api/session", &[SCRIPT]).await;
    assert_eq!(for_script.status, 200);
    let ended = for_script.json();
    assert_eq!(ended["signed_in"], false);
    assert_eq!(ended["end_reason"], "logout_all");
    assert_eq!(ended["reason"], "logged_out");
    assert_eq!(ended["message"], "You have signed out of every app.");
    assert!(ended["idle_seconds"].is_u64(), "{ended}");
    assert!(ended["login_url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/hub/login?reason=logged_out")));
    assert_eq!(alice.get("/hub/api/session").await.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_device_is_listed_and_signed_out_with_its_own_reason() {
    let gw = setup().await.start();
    let mut laptop = signed_in(&gw, "alice", FIREFOX).await;
    let mut phone = signed_in(&gw, "alice", PHONE).await;
    let mut bob = signed_in(&gw, "bob", FIREFOX).await;
    let phone_ref = phone.get("/hub/api/session").await.json()["session"]
        .as_str()
        .expect("ref")
        .to_string();
    let seen = laptop.get("/hub/api/session").await.json();
    let devices = seen["other_devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["device"], "Chrome 131 on Android");
    assert_eq!(devices[0]["session"], phone_ref.as_str());
    assert_eq!(seen["device"], "Firefox 128 on Linux");

    laptop.accept = HTML;
    let page = laptop.get("/hub/session").await;
    assert!(
        page.body.contains("Chrome 131 on Android") && page.body.contains("Sign out that device")
    );
    let csrf = hidden_field(&page.body, "csrf");
    let form = "/hub/session/logout-device";
    // Without the form's token, from another site, or by another user: nothing ends.
    assert_eq!(
        laptop
            .post_form(form, &[("session", &phone_ref)])
            .await
            .status,
        403
    );
    let cross = laptop
        .request(
            reqwest::Method::POST,
            form,
            &[("origin", "http://evil.example")],
            Some(format!("session={phone_ref}&csrf={csrf}")),
        )
        .await;
    assert_eq!(cross.status, 403);
    bob.accept = HTML;
    let bobs = bob.get("/hub/session").await;
    assert_eq!(bobs.status, 200);
    // Bob has no other device, so no form: his browser's own anti-CSRF cookie stands in.
    let bob_csrf = bob
        .jar
        .iter()
        .find(|c| c.name.contains("csrf"))
        .map(|c| c.value.clone())
        .expect("bob's anti-CSRF cookie");
    assert_eq!(
        bob.post_form(form, &[("session", &phone_ref), ("csrf", &bob_csrf)])
            .await
            .status,
        303
    );
    assert_eq!(
        phone.get("/apps/one/x").await.status,
        200,
        "bob cannot sign out alice's phone"
    );

    let done = laptop
        .post_form(form, &[("session", &phone_ref), ("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), Some("/hub/session"));
    assert_eq!(phone.get("/apps/one/x").await.status, 401);
    let told = phone.get("/hub/api/session").await.json();
    assert_eq!(told["end_reason"], "logout_device");
    assert_eq!(told["reason"], "logout_device");
    phone.accept = HTML;
    let banner = phone.get("/hub/login?reason=logout_device").await;
    assert!(banner
        .body
        .contains("You signed this device out from another of your devices."));
    laptop.accept = JSON;
    assert_eq!(
        laptop.get("/apps/one/x").await.status,
        200,
        "the laptop stays signed in"
    );
    let ends = laptop.get("/hub/api/session").await.json();
    assert_eq!(ends["recent_sign_outs"][0]["reason"], "logout_device");
    assert_eq!(
        ends["recent_sign_outs"][0]["device"],
        "Chrome 131 on Android"
    );
    assert_eq!(ends["other_devices"].as_array().map(Vec::len), Some(0));
}

/// Sign-ins and sign-outs over and over: the newest 20 ends are kept, newest first, with their
/// facts; the admin API and the session page show them.
async fn sign_outs_are_kept_and_capped(gw: &Gateway, ask: &Gateway) {
    for _ in 0..22 {
        let mut browser = signed_in(gw, "alice", FIREFOX).await;
        browser.accept = HTML;
        browser.get("/apps/one/x").await;
        browser.get("/hub/logout").await;
    }
    let (status, answer) = admin_get(
        ask,
        "/hub/api/admin/ends?user=alice&limit=50",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let ends = answer["ends"].as_array().expect("ends");
    assert_eq!(ends.len(), 20, "capped at 20");
    for end in ends {
        assert_eq!(end["reason"], "logout");
        assert_eq!(end["device"], "Firefox 128 on Linux");
        assert_eq!(end["path"], "/logout");
        assert!(end["session_age_seconds"].is_u64() && end["idle_seconds"].is_u64());
    }
    assert!(
        ends.windows(2)
            .all(|w| w[0]["at"].as_u64() >= w[1]["at"].as_u64()),
        "newest first"
    );
    let (_, five) = admin_get(
        ask,
        "/hub/api/admin/ends?user=alice&limit=5",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(five["ends"].as_array().map(Vec::len), Some(5));
    let mut alice = signed_in(ask, "alice", FIREFOX).await;
    assert_eq!(
        alice.get("/hub/api/session").await.json()["recent_sign_outs"]
            .as_array()
            .map(Vec::len),
        Some(20)
    );
    alice.accept = HTML;
    let page = alice.get("/hub/session").await;
    assert!(page.body.contains("Recent sign-outs") && page.body.contains("signed out"));

    let (status, live) =
        admin_get(ask, "/hub/api/admin/sessions?user=alice", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(live["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(live["sessions"][0]["device"], "Firefox 128 on Linux");
    for path in [
        "/hub/api/admin/sessions?user=nobody",
        "/hub/api/admin/ends?user=nobody",
    ] {
        let (status, answer) = admin_get(ask, path, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{path}");
        let list = if path.contains("ends") {
            &answer["ends"]
        } else {
            &answer["sessions"]
        };
        assert_eq!(list.as_array().map(Vec::len), Some(0), "{path}: {answer}");
    }
    for path in [
        "/hub/api/admin/sessions?user=alice",
        "/hub/api/admin/ends?user=alice",
    ] {
        assert_eq!(admin_get(ask, path, None).await.0, 401, "{path}");
        assert_eq!(admin_get(ask, path, Some("wrong")).await.0, 401, "{path}");
    }
    assert_eq!(
        admin_get(ask, "/hub/api/admin/ends", Some(ADMIN_TOKEN))
            .await
            .0,
        400
    );
    assert_eq!(
        admin_get(
            ask,
            "/hub/api/admin/ends?user=alice&limit=x",
            Some(ADMIN_TOKEN)
        )
        .await
        .0,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_sign_outs_are_kept_and_capped_in_memory() {
    let gw = setup().await.start();
    sign_outs_are_kept_and_capped(&gw, &gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_sign_outs_are_kept_in_redis_in_the_users_slot_and_read_on_any_instance() {
    let redis = Redis::start();
    let setup = setup()
        .await
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 1)]));
    let (a, b) = (setup.clone().start(), setup.start());
    sign_outs_are_kept_and_capped(&a, &b).await;
    let keys = redis
        .command(&["KEYS", "test:*ends:alice"])
        .unwrap_or_default();
    let key = keys
        .lines()
        .find(|k| k.contains("ends:alice"))
        .expect("the list")
        .trim()
        .to_string();
    assert!(
        key.starts_with("test:{") && key.contains("}:ends:alice"),
        "in alice's bucket: {key}"
    );
    let number = |reply: Option<String>| -> u64 {
        reply
            .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
            .expect("an integer reply")
    };
    assert_eq!(number(redis.command(&["LLEN", &key])), 20);
    let ttl = number(redis.command(&["PTTL", &key]));
    assert!(ttl > 29 * 24 * 3600 * 1000, "kept 30 days: {ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn recent_sign_outs_are_kept_on_a_redis_cluster_and_read_on_any_instance() {
    let cluster = RedisCluster::start();
    let setup = setup()
        .await
        .with_redis_cluster(&cluster)
        .tokens(&token_keys(&[("k1", 1)]));
    let (a, b) = (setup.clone().start(), setup.start());
    sign_outs_are_kept_and_capped(&a, &b).await;
}
