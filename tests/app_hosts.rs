//! Apps on their own host names: one sign-in at the hub opens every host through a one-time code,
//! each host holds only its own cookies, and one sign-out refuses every host at once — also on
//! two instances sharing Redis. Hosts are named by the Host header on loopback.

mod common;
use common::sites::{code_of, Sites};
use common::*;

async fn three_apps() -> Setup {
    Setup::default()
        .app(App::new("one", upstream("one").await).on_host("one.localhost"))
        .app(App::new("two", upstream("two").await).on_host("TWO.localhost"))
        .app(App::new("three", upstream("three").await))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sign_in_opens_two_app_hosts_and_a_prefix_app_each_with_only_its_own_cookies() {
    let gw = three_apps().await.start();
    let mut sites = Sites::new(&gw);

    // Not signed in: the app host sends the browser to the hub with its full URL.
    let page = sites.get(&sites.url("one.localhost", "/dash?x=1")).await;
    assert_eq!(page.status, 302);
    let expected = format!(
        "{}/hub/authorize?app=one&next={}",
        gw.url(""),
        form_urlencoded::byte_serialize(sites.url("one.localhost", "/dash?x=1").as_bytes())
            .collect::<String>()
    );
    assert_eq!(page.location(), Some(expected.as_str()));

    // Chromium applies the sign-in form's `form-action` to the redirects after its POST, which
    // end on an app host's callback: those hosts are allowed there (found by the e2e suite).
    let form = sites.get("/hub/login").await;
    let csp = form.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("form-action 'self' http://one.localhost:* http://two.localhost:*;"),
        "{csp}"
    );

    sites.sign_in().await;
    let visited = sites
        .open_through_callback(&sites.url("one.localhost", "/dash?x=1"))
        .await;
    assert_eq!(
        visited.last(),
        Some(&sites.url("one.localhost", "/dash?x=1"))
    );
    let seen = sites
        .get_as(&sites.url("one.localhost", "/dash?x=1"), JSON)
        .await
        .json();
    assert_eq!(seen["app"], "one");
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");
    assert!(!seen["headers"]["cookie"]
        .as_str()
        .unwrap_or("")
        .contains("hubgate-"));

    // The host is matched case-insensitively (configured as "TWO.localhost").
    let (_, page) = sites.follow(&sites.url("Two.LocalHost", "/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = sites.get_as(&sites.url("two.localhost", "/x"), JSON).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["app"], "two");
    let (_, page) = sites.follow("/apps/three/").await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Each host holds its own cookies only, host-only, at `/`.
    let one = sites.host("one.localhost");
    assert_eq!(
        sites.cookie_names(&one),
        ["hubgate-app-one", "hubgate-session-id"]
    );
    for cookie in &sites.jar(&one).jar {
        assert_eq!(cookie.path, "/");
        assert!(!cookie.raw.contains("Domain"), "{}", cookie.raw);
    }
    let two = sites.host("two.localhost");
    assert_eq!(
        sites.cookie_names(&two),
        ["hubgate-app-two", "hubgate-session-id"]
    );
    let hub = sites.hub.clone();
    let hub_cookies = sites.cookie_names(&hub);
    assert!(hub_cookies.contains(&"hubgate-app-three".to_string()));
    assert!(!hub_cookies
        .iter()
        .any(|c| c == "hubgate-app-one" || c == "hubgate-app-two"));

    // A cookie of one host is no use on the other.
    let one_cookies = sites.jar(&one).jar.clone();
    sites.jar(&two).jar = one_cookies;
    let page = sites.get_as(&sites.url("two.localhost", "/x"), JSON).await;
    assert_eq!(page.status, 401);

    // A host nobody claims: a 404 page, never the hub or an app.
    let page = sites.get(&sites.url("stranger.localhost", "/")).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Site not found"), "{}", page.body);
    // The session page link on an app host leads to the hub.
    let page = sites
        .get(&sites.url("one.localhost", "/.hubgate/session"))
        .await;
    assert_eq!(
        page.location(),
        Some(format!("{}/hub/session", gw.url("")).as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_works_once_on_its_own_host_and_never_sends_the_browser_elsewhere() {
    let gw = three_apps().await.start();
    let mut sites = Sites::new(&gw);
    sites.sign_in().await;

    // Taken to another host, or a code for another app brought to this one's: refused, and spent.
    for (app, own, other) in [
        ("one", "one.localhost", "two.localhost"),
        ("two", "two.localhost", "one.localhost"),
    ] {
        let callback = sites.code_for(app, &sites.url(own, "/x")).await;
        let page = sites.redeem(other, &code_of(&callback), "/").await;
        assert_eq!(page.status, 400, "{app} on {other}");
        assert!(page.set_cookies().is_empty());
        let page = sites.get(&callback).await;
        assert_eq!(page.status, 400, "a code refused once is spent");
    }

    // Redeemed once on its host; a second redemption is refused.
    let callback = sites
        .code_for("one", &sites.url("one.localhost", "/x"))
        .await;
    let page = sites.get(&callback).await;
    assert_eq!(page.status, 302);
    assert_eq!(page.location(), Some("/x"));
    let page = sites.get(&callback).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("expired or was already used"),
        "{}",
        page.body
    );
    // A made-up code, or none.
    for query in ["code=AAAA&next=/", "next=/", "code=%00&next=/"] {
        let page = sites
            .get(&sites.url("one.localhost", &format!("/.hubgate/callback?{query}")))
            .await;
        assert_eq!(page.status, 400, "{query}");
    }

    // Hostile `next` on the callback goes to `/` on this host.
    for hostile in [
        "//evil.example/",
        "http://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let callback = sites
            .code_for("one", &sites.url("one.localhost", "/"))
            .await;
        let next: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
        let page = sites
            .redeem("one.localhost", &code_of(&callback), &next)
            .await;
        assert_eq!(page.location(), Some("/"), "{hostile}");
    }
    // Authorize's `next` on another host, or on another port of the app's host name (where
    // anyone may listen), never moves the callback off the app's host.
    for elsewhere in [
        "http://evil.example/steal",
        "http://one.localhost:6666/steal",
    ] {
        let callback = sites.code_for("one", elsewhere).await;
        assert!(
            callback.starts_with("http://one.localhost/.hubgate/callback?"),
            "{callback}"
        );
        assert!(callback.ends_with("&next=%2F"), "{callback}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_on_one_host_refuses_every_other_host_at_once_and_clears_cookies_on_the_next_visit(
) {
    let gw = three_apps().await.start();
    let mut sites = Sites::new(&gw);
    sites.sign_in().await;
    for url in [
        sites.url("one.localhost", "/"),
        sites.url("two.localhost", "/"),
        "/apps/three/".to_string(),
    ] {
        let (_, page) = sites.follow(&url).await;
        assert_eq!(page.status, 200, "{url}: {}", page.body);
    }

    let (visited, page) = sites
        .follow(&sites.url("one.localhost", "/.hubgate/logout"))
        .await;
    assert_eq!(page.status, 200, "{visited:?}");
    assert!(
        visited
            .last()
            .is_some_and(|u| u.ends_with("/hub/login?reason=logged_out")),
        "{visited:?}"
    );
    assert!(page.body.contains("You have signed out"), "{}", page.body);
    let one = sites.host("one.localhost");
    assert!(sites.cookie_names(&one).is_empty());

    let page = sites.get_as(&sites.url("two.localhost", "/x"), JSON).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "session_revoked");
    let page = sites.get_as("/apps/three/x", JSON).await;
    assert_eq!(page.status, 401);

    // The next visit on the other host clears its cookies and goes to sign in.
    let page = sites.get(&sites.url("two.localhost", "/")).await;
    assert_eq!(page.status, 302);
    let two = sites.host("two.localhost");
    assert!(
        sites.cookie_names(&two).is_empty(),
        "{:?}",
        page.set_cookies()
    );
    let (visited, page) = sites.follow(&sites.url("two.localhost", "/")).await;
    assert!(
        visited.last().is_some_and(|u| u.contains("/hub/login?")),
        "{visited:?}"
    );
    assert!(page.body.contains("<form"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn websockets_renewal_and_exempt_paths_work_on_an_app_host() {
    let gw = Setup::default()
        .app(
            App::new("one", upstream("one").await)
                .on_host("one.localhost")
                .with("activity_exempt_paths = [\"/health\"]"),
        )
        .tokens("ttl = \"1h\"\nrenew_threshold = 1.0\nrenew_min_interval = \"0s\"")
        .start();
    let mut sites = Sites::new(&gw);
    sites.sign_in().await;
    let (_, page) = sites.follow(&sites.url("one.localhost", "/")).await;
    assert_eq!(page.status, 200);

    // Renewal: a fresh token at `/` on this host; none on an exempt path.
    let page = sites.get_as(&sites.url("one.localhost", "/x"), JSON).await;
    assert_eq!(page.status, 200);
    let renewed: Vec<&str> = page
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with("hubgate-app-one="))
        .collect();
    assert_eq!(renewed.len(), 1, "{:?}", page.set_cookies());
    assert!(renewed[0].contains("Path=/;"), "{}", renewed[0]);
    let page = sites
        .get_as(&sites.url("one.localhost", "/health"), JSON)
        .await;
    assert_eq!(page.status, 200);
    assert!(page.set_cookies().is_empty(), "{:?}", page.set_cookies());

    let one = sites.host("one.localhost");
    let cookie = sites.jar(&one).cookie_header("/ws").expect("cookies");
    let url = format!("ws://127.0.0.1:{}/ws", gw.port);
    let _socket = open_echoing_websocket_on(&url, Some(&cookie), Some(&one)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_two_instances_sharing_redis_a_code_redeems_anywhere_once_and_sign_out_ends_every_host()
{
    let redis = Redis::start();
    let setup = three_apps().await.with_redis(&redis);
    codes_and_sign_out_across_two_instances(setup, |args| redis.command(args)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_redis_cluster_a_code_redeems_anywhere_once_and_sign_out_ends_every_host() {
    let cluster = RedisCluster::start();
    let setup = three_apps().await.with_redis_cluster(&cluster);
    codes_and_sign_out_across_two_instances(setup, |args| {
        cluster.nodes[cluster.node_of_key(args[1])].command(args)
    })
    .await;
}

/// Two instances sharing the store of `setup`; `raw` sends one command about the key in its
/// second argument to wherever that key lives.
async fn codes_and_sign_out_across_two_instances(
    setup: Setup,
    raw: impl Fn(&[&str]) -> Option<String>,
) {
    let setup = setup.tokens(&format!(
        "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"",
        fixed_key(7)
    ));
    let (a, b) = (setup.clone().start(), setup.start());
    let mut on_a = Sites::new(&a);
    on_a.sign_in().await;

    // A code handed out by instance A is redeemed on instance B, once.
    let callback = on_a.code_for("one", &on_a.url("one.localhost", "/x")).await;
    let mut on_b = on_a.on(&b);
    let callback_on_b = callback.replace(&format!(":{}/", a.port), &format!(":{}/", b.port));
    let page = on_b.get(&callback_on_b).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let page = on_a.get(&callback).await;
    assert_eq!(page.status, 400, "redeemed on B, so spent on A");

    // An expired code is refused even while the store still holds it.
    let callback = on_a.code_for("two", &on_a.url("two.localhost", "/x")).await;
    let code = code_of(&callback);
    let key = format!("test:note:host-code:{code}");
    let grant = raw(&["GET", &key]).expect("code in redis");
    let json = grant.lines().nth(1).expect("bulk reply");
    let mut grant: serde_json::Value = serde_json::from_str(json).expect("grant JSON");
    grant["expires_at"] = serde_json::json!(1);
    raw(&["SET", &key, &grant.to_string(), "EX", "30"]);
    let page = on_a.redeem("two.localhost", &code, "/").await;
    assert_eq!(page.status, 400);

    // Both hosts open on A; sign-out on one host via B; the other host is refused on A and B.
    for host in ["one.localhost", "two.localhost"] {
        let (_, page) = on_a.follow(&on_a.url(host, "/")).await;
        assert_eq!(page.status, 200, "{host}");
        assert_eq!(
            on_a.get_as(&on_a.url(host, "/x"), JSON).await.status,
            200,
            "{host} cached on A"
        );
    }
    let mut on_b = on_a.on(&b);
    assert_eq!(
        on_b.get_as(&on_b.url("two.localhost", "/x"), JSON)
            .await
            .status,
        200
    );
    let page = on_b
        .get(&on_b.url("one.localhost", "/.hubgate/logout"))
        .await;
    assert_eq!(page.status, 302);
    // A hears of it through Redis (pub/sub); nothing waits for a cache entry to age out.
    assert_eq!(
        a.metric_reaches("hubgate_revocations_received_total", 1.0)
            .await,
        1.0
    );
    for sites in [&mut on_a, &mut on_b] {
        let page = sites.get_as(&sites.url("two.localhost", "/x"), JSON).await;
        assert_eq!(page.status, 401, "refused at once");
        assert_eq!(page.json()["reason"], "session_revoked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_app_host_is_refused_and_the_sign_in_page_says_why() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await).on_host("one.localhost"))
        .session("idle_timeout = \"2s\"\ncache_ttl = \"5m\"")
        .start();
    let mut sites = Sites::new(&gw);
    sites.sign_in().await;
    sites
        .open_through_callback(&sites.url("one.localhost", "/"))
        .await;
    // The same short wait the prefix-app idle test uses: the limit itself is what is tested.
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let page = sites.get_as(&sites.url("one.localhost", "/x"), JSON).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "idle_timeout");
    let (visited, page) = sites.follow(&sites.url("one.localhost", "/x")).await;
    assert!(
        visited
            .last()
            .is_some_and(|u| u.contains("reason=idle_timeout")),
        "{visited:?}"
    );
    assert!(
        page.body
            .contains("You were signed out after 2 seconds without activity."),
        "{}",
        page.body
    );
    let one = sites.host("one.localhost");
    assert!(sites.cookie_names(&one).is_empty());
}
