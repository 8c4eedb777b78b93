//! Many instances sharing a real three-primary Redis Cluster: sessions valid everywhere, sign-out
//! and admin revoke effective everywhere at once (sharded pub/sub), the sweeper working on every
//! primary, cached requests costing no command, and a flushed script cache recovered from.

mod common;
use common::*;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "cluster-test-admin-token-0123";

/// Users whose buckets live on each primary, `per_node` of them for each of the three.
fn users_on_every_node(cluster: &RedisCluster, per_node: usize) -> Vec<String> {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); 3];
    for i in 0.. {
        let name = format!("user{i}");
        let bucket = hubgate::session::user_bucket(&name);
        let node = cluster.node_of_key(&format!("test:{{{bucket}}}:x"));
        if found[node].len() < per_node {
            found[node].push(name);
        }
        if found.iter().all(|f| f.len() == per_node) {
            break;
        }
    }
    found.concat()
}

struct Deployment {
    cluster: RedisCluster,
    _users: tempfile::TempDir,
    users: Vec<String>,
    setup: Setup,
}

async fn deployment(per_node: usize, extra_session: &str) -> Deployment {
    let cluster = RedisCluster::start();
    let users = users_on_every_node(&cluster, per_node);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names = users.clone();
    names.push("alice".into());
    let path = dir.path().join("users.toml");
    std::fs::write(&path, users_toml(&names)).expect("write users");
    let setup = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis_cluster(&cluster)
        .session(extra_session)
        .hub(&format!("users_file = {:?}", path.to_string_lossy()))
        .tokens(&format!(
            "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"\n",
            fixed_key(1)
        ))
        .env("HUBGATE_ADMIN_TOKEN", ADMIN_TOKEN);
    Deployment {
        cluster,
        _users: dir,
        users,
        setup,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_made_on_a_works_on_b_and_sign_out_on_b_is_refused_on_a_at_once() {
    let d = deployment(1, "cache_ttl = \"5m\"").await;
    let (a, b) = (d.setup.clone().start(), d.setup.start());
    sign_out_on_b_is_refused_on_a_at_once(&a, &b, "cluster").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_websocket_carries_nothing_after_sign_out_on_another_instance() {
    let d = deployment(1, "").await;
    let (a, b) = (d.setup.clone().start(), d.setup.start());
    websocket_closed_by_sign_out_on_b(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_revoke_ends_one_users_sessions_and_everyones_on_every_primary() {
    let d = deployment(2, "cache_ttl = \"5m\"").await;
    let (a, b) = (d.setup.clone().start(), d.setup.start());
    let mut everyone = Vec::new();
    for user in &d.users {
        let mut browser = Browser::signed_in_api(&a, user, ALICE_PASSWORD, "one").await;
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
        everyone.push(browser.on(&b));
    }
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(Browser::signed_in_api(&b, "alice", ALICE_PASSWORD, "one").await);
    }
    for browser in everyone.iter_mut().chain(alices.iter_mut()) {
        assert_eq!(browser.get("/apps/one/x").await.status, 200, "cached on B");
    }
    let keys = d.cluster.keys_per_node();
    println!("keys per primary before revoking: {keys:?}");
    assert!(
        keys.iter().all(|n| *n > 0),
        "sessions on every primary: {keys:?}"
    );

    assert_eq!(
        admin_revoke(&a, ADMIN_TOKEN, r#"{"user":"alice"}"#).await,
        serde_json::json!({"revoked": 3})
    );
    for alice in &mut alices {
        assert!(refused_within(alice, Duration::from_secs(2))
            .await
            .is_some());
        assert_eq!(
            alice.get("/apps/one/x").await.json()["reason"],
            "session_revoked"
        );
    }
    for browser in &mut everyone {
        assert_eq!(
            browser.get("/apps/one/x").await.status,
            200,
            "others untouched"
        );
    }

    assert_eq!(
        admin_revoke(&a, ADMIN_TOKEN, r#"{"all":true}"#).await,
        serde_json::json!({"revoked": d.users.len()})
    );
    for browser in &mut everyone {
        assert!(
            refused_within(browser, Duration::from_secs(2))
                .await
                .is_some(),
            "refused on B, whose cache held it"
        );
    }
    assert_eq!(
        b.metric_reaches("hubgate_revocations_received_total", 9.0)
            .await,
        9.0
    );
    let left: u64 = d.cluster.keys_per_node().iter().sum();
    let ended = d.users.len() as u64 + 3;
    // Per ended session its reason (ended:<id>) and owner (owner:<id>); per user (and alice) the
    // recent sign-outs (ends:<name>).
    let kept = 2 * ended + d.users.len() as u64 + 1;
    assert_eq!(
        left, kept,
        "only the reasons, owners and recent sign-outs are left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_ends_idle_sessions_on_every_primary_with_their_reason() {
    let d = deployment(1, "idle_timeout = \"2s\"").await;
    let gw = d.setup.start();
    for user in &d.users {
        Browser::signed_in_api(&gw, user, ALICE_PASSWORD, "one").await;
    }
    assert!(d.cluster.keys_per_node().iter().all(|n| *n > 0));
    // No request comes back: only the sweeper can notice (2 s idle, swept every second).
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw
        .metric_reaches("hubgate_sessions_ended_total{reason=\"idle_timeout\"}", 3.0)
        .await
        < 3.0
    {
        assert!(
            Instant::now() < deadline,
            "the sweeper ended them: {}",
            gw.log_text()
        );
    }
    let mut swept: Vec<String> = gw
        .log_events("session_ended")
        .iter()
        .filter(|e| e["fields"]["reason"] == "idle_timeout" && e["fields"]["app"] == "-")
        .filter_map(|e| e["fields"]["user"].as_str().map(str::to_string))
        .collect();
    swept.sort();
    let mut expected = d.users.clone();
    expected.sort();
    assert_eq!(
        swept, expected,
        "one end per session, each on its own primary"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_requests_send_no_command_to_any_node_and_a_flushed_script_cache_recovers() {
    let d = deployment(1, "cache_ttl = \"5m\"\nidle_timeout = \"30m\"").await;
    let gw = d.setup.start();
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = d.cluster.command_calls();
    for _ in 0..200 {
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut after = d.cluster.command_calls();
    // INFO is the test's own; the sweeper's ZRANGEBYSCORE and the cluster client's topology
    // checks (CLUSTER SLOTS) are not caused by requests.
    for own in ["info", "zrangebyscore", "cluster|slots", "ping"] {
        after.remove(own);
    }
    let caused: u64 = after
        .iter()
        .map(|(cmd, n)| n - before.get(cmd).copied().unwrap_or(0))
        .sum();
    println!("cluster: commands caused by 200 cached requests, all nodes: {caused}");
    assert_eq!(caused, 0, "before {before:?}, after {after:?}");

    for node in &d.cluster.nodes {
        assert!(node
            .command(&["SCRIPT", "FLUSH"])
            .is_some_and(|r| r.contains("OK")));
    }
    // Scripts are loaded again where needed: sign-in, sign-out and revocation all still work.
    let mut fresh = Browser::signed_in_api(&gw, &d.users[0], ALICE_PASSWORD, "one").await;
    assert_eq!(fresh.get("/apps/one/x").await.status, 200);
    for node in &d.cluster.nodes {
        node.command(&["SCRIPT", "FLUSH"]);
    }
    let mut out = browser.on(&gw);
    out.accept = HTML;
    assert_eq!(out.get("/hub/logout").await.status, 302);
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_cluster_outage_is_survived_and_recovered_from_without_restarts() {
    let mut d = deployment(1, "on_store_error = \"deny\"\ncache_ttl = \"5m\"").await;
    let (a, b) = (d.setup.clone().start(), d.setup.clone().start());
    let mut browser = Browser::signed_in_api(&a, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);

    d.cluster.stop();
    let ready = browser.get("/hub/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    // deny: nothing the cache cannot vouch for, once the instance knows it is deaf.
    let during = answer_once_deaf(&mut browser).await;
    assert_eq!(
        (during.status, during.json()["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    let mut newcomer = a.browser();
    assert_eq!(
        newcomer
            .sign_in_to(&d.users[0], ALICE_PASSWORD, false, "/")
            .await
            .status,
        503
    );

    d.cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    for gw in [&a, &b] {
        let mut probe = gw.browser();
        probe.accept = JSON;
        while probe.get("/hub/ready").await.status != 200 {
            assert!(Instant::now() < deadline, "reconnected to the cluster");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The restarted nodes kept no data: the old session is unknown; signing in works again, and
    // both instances hear revocations again (each resubscribed by itself).
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    revocations_heard_again(&a, &b, &d.users[0], ALICE_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_failures_count_across_instances_on_the_cluster() {
    let d = deployment(1, "").await;
    let setup = d
        .setup
        .clone()
        .hub("login_max_failures = 3\nlogin_failure_window = \"1m\"\nlogin_lockout = \"1m\"");
    let (a, b) = (setup.clone().start(), setup.start());
    // The user's count and each address's count live in one slot ({lockout}), so the one
    // script that checks both runs on the cluster.
    three_failures_lock_out_on_both(&a, &b, &d.users[0], ALICE_PASSWORD).await;
}

/// Commands per request since `before`, leaving out what no request causes (the test's INFO, the
/// sweeper's reads, the cluster client's topology checks).
fn caused_since(
    cluster: &RedisCluster,
    before: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    let mut after = cluster.command_calls();
    for own in [
        "info",
        "zrangebyscore",
        "cluster|slots",
        "ping",
        "memory|usage",
    ] {
        after.remove(own);
    }
    after
        .into_iter()
        .map(|(cmd, n)| (cmd.clone(), n - before.get(&cmd).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The figures docs/SCALING.md is built on: store commands per cached request, per cache miss, per
/// sign-in and per sign-out (all nodes, `INFO commandstats`, which also counts the commands a
/// script runs), and bytes per session (`MEMORY USAGE`).
#[tokio::test(flavor = "multi_thread")]
async fn store_commands_and_bytes_per_session_are_measured() {
    let d = deployment(1, "idle_timeout = \"30m\"").await;
    let cached = d.setup.clone().session("cache_ttl = \"5m\"").start();
    let uncached = d.setup.clone().session("cache_ttl = \"0s\"").start();
    // A first round loads the scripts (a first EVALSHA answers NOSCRIPT, then SCRIPT LOAD runs
    // on every primary): the figures below are the steady state.
    let mut warm_up = Browser::signed_in_api(&cached, &d.users[0], ALICE_PASSWORD, "one").await;
    warm_up.accept = HTML;
    assert_eq!(warm_up.get("/hub/logout").await.status, 302);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = d.cluster.command_calls();
    let mut browser = cached.browser();
    let page = browser
        .sign_in_to("alice", ALICE_PASSWORD, false, "/")
        .await;
    assert_eq!(page.status, 303);
    let sign_in = caused_since(&d.cluster, &before);
    let before = d.cluster.command_calls();
    browser.accept = HTML;
    let (_, page) = browser.follow("/apps/one/").await;
    assert_eq!(page.status, 200);
    let first_open = caused_since(&d.cluster, &before);
    browser.accept = JSON;

    let before = d.cluster.command_calls();
    for _ in 0..100 {
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
    }
    let hits = caused_since(&d.cluster, &before);
    let mut on_uncached = browser.on(&uncached);
    assert_eq!(on_uncached.get("/apps/one/x").await.status, 200);
    let before = d.cluster.command_calls();
    for _ in 0..100 {
        assert_eq!(on_uncached.get("/apps/one/x").await.status, 200);
    }
    let misses = caused_since(&d.cluster, &before);

    let id = browser
        .cookie("hubgate-session-id")
        .expect("session-id cookie")
        .value;
    let bucket = hubgate::session::SessionId::parse(&id)
        .expect("a session id")
        .bucket();
    let node = &d.cluster.nodes[d.cluster.node_of_key(&format!("test:{{{bucket}}}:x"))];
    let bytes = |key: &str| -> u64 {
        node.command(&["MEMORY", "USAGE", key])
            .and_then(|r| r.trim().trim_start_matches(':').parse().ok())
            .unwrap_or(0)
    };
    let session_bytes = bytes(&format!("test:{{{bucket}}}:session:{id}"));
    let user_bytes = bytes(&format!("test:{{{bucket}}}:user:alice"));
    let deadlines_bytes = bytes(&format!("test:{{{bucket}}}:deadlines"));

    let before = d.cluster.command_calls();
    let mut out = browser.on(&cached);
    out.accept = HTML;
    assert_eq!(out.get("/hub/logout").await.status, 302);
    let sign_out = caused_since(&d.cluster, &before);
    let ended_bytes = bytes(&format!("test:{{{bucket}}}:ended:{id}"));

    println!("sign-in (POST /hub/login): {sign_in:?}");
    println!("first open of an app (authorize + first request): {first_open:?}");
    println!("100 cached requests: {hits:?}");
    println!("100 uncached requests (cache_ttl = 0s): {misses:?}");
    println!("sign-out: {sign_out:?}");
    println!(
        "MEMORY USAGE: session hash {session_bytes} B, user set {user_bytes} B, bucket deadlines {deadlines_bytes} B (one entry), tombstone {ended_bytes} B"
    );
    assert!(hits.is_empty(), "cached requests cost nothing: {hits:?}");
    assert_eq!(
        misses.get("hgetall"),
        Some(&100),
        "one lookup per miss: {misses:?}"
    );
    assert_eq!(
        sign_out.get("evalsha"),
        Some(&2),
        "one script ends the session, one keeps it among the recent sign-outs: {sign_out:?}"
    );
    assert_eq!(
        sign_out.get("spublish"),
        Some(&1),
        "one sharded publish: {sign_out:?}"
    );
    assert!(session_bytes > 0 && user_bytes > 0 && ended_bytes > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_cached_keeps_cached_sessions_working_through_a_cluster_outage() {
    let mut d = deployment(1, "on_store_error = \"allow_cached\"\ncache_ttl = \"5m\"").await;
    let gw = d.setup.clone().start();
    allow_cached_through_an_outage(&gw, || d.cluster.stop()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_a_gateway_restart_and_key_rotation_logs_nobody_out_on_the_cluster() {
    let d = deployment(1, "").await;
    let second = d.users[0].clone();
    restart_and_key_rotation_log_nobody_out(d.setup.clone(), (&second, ALICE_PASSWORD)).await;
}
