//! Many instances sharing one Redis: sessions valid everywhere, sign-out and admin revoke
//! effective everywhere at once, surviving a Redis outage and a gateway restart.

mod common;
use common::*;
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "redis-test-admin-token-0123";

async fn shared_setup(redis: &Redis, extra_session: &str) -> Setup {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis(redis)
        .session(extra_session)
        .tokens(&token_keys(&[("k1", 1)]))
        .env("HUBGATE_ADMIN_TOKEN", ADMIN_TOKEN)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_made_on_one_instance_works_on_another_and_sign_out_reaches_both_at_once() {
    let redis = Redis::start();
    let setup = shared_setup(&redis, "cache_ttl = \"5m\"").await;
    let (a, b) = (setup.clone().start(), setup.start());
    sign_out_on_b_is_refused_on_a_at_once(&a, &b, "standalone").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_revoke_on_one_instance_ends_the_session_on_the_other() {
    let redis = Redis::start();
    let setup = shared_setup(&redis, "").await;
    let (a, b) = (setup.clone().start(), setup.start());
    let mut on_b = b.browser();
    on_b.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    on_b.accept = JSON;
    assert_eq!(on_b.get("/apps/one/x").await.status, 200);
    let revoked = admin_revoke(&a, ADMIN_TOKEN, r#"{"user":"alice"}"#).await;
    assert_eq!(revoked, serde_json::json!({"revoked": 1}));
    assert!(refused_within(&mut on_b, Duration::from_secs(2))
        .await
        .is_some());
    assert_eq!(
        on_b.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_is_survived_and_recovered_from_without_restarts() {
    let mut redis = Redis::start();
    let gw = shared_setup(&redis, "on_store_error = \"deny\"")
        .await
        .start();
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);

    redis.stop();
    let ready = browser.get("/hub/ready").await;
    assert_eq!(ready.status, 503);
    assert!(
        ready.json()["reason"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{}",
        ready.body
    );
    // deny: nothing the cache cannot vouch for, once the instance knows it is deaf.
    let during = answer_once_deaf(&mut browser).await;
    assert_eq!(
        (during.status, during.json()["error"].as_str()),
        (503, Some("store_unavailable"))
    );
    let mut newcomer = gw.browser();
    let sign_in = newcomer.sign_in_to("bob", BOB_PASSWORD, false, "/").await;
    assert_eq!(sign_in.status, 503);
    assert!(sign_in.body.contains("Sign-in is temporarily unavailable"));
    assert!(gw.metric("hubgate_store_errors_total{op=\"lookup\"}").await >= 1.0);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.get("/hub/ready").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "the gateway did not reconnect to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restarted Redis kept nothing, so the old session is unknown; signing in works again.
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    let mut again = gw.browser();
    again.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_cached_keeps_cached_sessions_working_through_an_outage() {
    let mut redis = Redis::start();
    let gw = shared_setup(
        &redis,
        "on_store_error = \"allow_cached\"\ncache_ttl = \"5m\"",
    )
    .await
    .start();
    allow_cached_through_an_outage(&gw, || redis.stop()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_a_gateway_restart_and_key_rotation_logs_nobody_out() {
    let redis = Redis::start();
    let base = shared_setup(&redis, "").await;
    restart_and_key_rotation_log_nobody_out(base, ("bob", BOB_PASSWORD)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_websocket_carries_nothing_after_sign_out_on_another_instance() {
    let redis = Redis::start();
    let setup = shared_setup(&redis, "").await;
    let (a, b) = (setup.clone().start(), setup.start());
    websocket_closed_by_sign_out_on_b(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_requests_send_no_command_to_redis() {
    let redis = Redis::start();
    let gw = shared_setup(&redis, "cache_ttl = \"5m\"\nidle_timeout = \"30m\"")
        .await
        .start();
    let mut browser = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = redis.command_calls();
    for _ in 0..200 {
        assert_eq!(browser.get("/apps/one/x").await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut after = redis.command_calls();
    // The INFO call that took `before` is the only new command; the sweeper's periodic ZRANGEBYSCORE
    // is not caused by requests, so it is left out too.
    after.remove("info");
    after.remove("zrangebyscore");
    let caused: u64 = after
        .iter()
        .map(|(cmd, n)| n - before.get(cmd).copied().unwrap_or(0))
        .sum();
    println!("Redis commands caused by 200 cached requests: {caused} (before {before:?}, after {after:?})");
    assert_eq!(caused, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_of_the_layout_before_buckets_end_with_a_recorded_reason_on_upgrade() {
    let redis = Redis::start();
    let id = hubgate::session::SessionId::generate();
    let now = hubgate::time::Timestamp::now().0.to_string();
    let later = (hubgate::time::Timestamp::now().0 + 3_600_000).to_string();
    let old_session = format!("test:session:{}", id.as_str());
    for command in [
        vec![
            "HSET",
            &old_session,
            "user",
            "alice",
            "groups",
            "[]",
            "email",
            "",
        ],
        vec![
            "HSET",
            &old_session,
            "created_at",
            &now,
            "expires_at",
            &later,
        ],
        vec!["HSET", &old_session, "last_seen", &now, "remember_me", "0"],
        vec!["ZADD", "test:deadlines", &later, id.as_str()],
        vec!["SADD", "test:user:alice", id.as_str()],
    ] {
        assert!(redis.command(&command).is_some_and(|r| !r.starts_with('-')));
    }
    let gw = shared_setup(&redis, "").await.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw
        .metric_reaches("hubgate_sessions_ended_total{reason=\"revoked\"}", 1.0)
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "{}", gw.log_text());
    }
    let ended = format!("test:{{{}}}:ended:{}", id.bucket(), id.as_str());
    assert!(redis.command(&["GET", &ended]).unwrap().contains("revoked"));
    for gone in [old_session.as_str(), "test:deadlines", "test:user:alice"] {
        assert_eq!(
            redis.command(&["EXISTS", gone]).unwrap().trim(),
            ":0",
            "{gone}"
        );
    }
    let ends = gw.log_events("session_ended");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["fields"]["user"], "alice");
}

/// Two instances sharing `redis` that lock a user or address out after three failures.
async fn two_instances_locking_after_three(redis: &Redis) -> (Gateway, Gateway) {
    let setup = shared_setup(redis, "")
        .await
        .hub("login_max_failures = 3\nlogin_failure_window = \"1m\"\nlogin_lockout = \"1m\"");
    (setup.clone().start(), setup.start())
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_failures_count_across_instances() {
    let redis = Redis::start();
    let (a, b) = two_instances_locking_after_three(&redis).await;
    three_failures_lock_out_on_both(&a, &b, "bob", BOB_PASSWORD).await;
    // The counts live in expiring keys: nothing is kept without a time limit.
    let keys = redis
        .command(&["KEYS", "test:{lockout}:*"])
        .unwrap_or_default();
    assert!(keys.contains("bob"), "{keys}");
    for key in keys.lines().filter(|l| l.starts_with("test:{lockout}:")) {
        let ttl = redis.command(&["PTTL", key]).unwrap_or_default();
        let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap_or(-1);
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parallel_burst_over_two_instances_gets_no_more_guesses_than_the_limit() {
    let redis = Redis::start();
    let (a, b) = two_instances_locking_after_three(&redis).await;
    // Ten guesses for bob at once, alternating instances, each from its own address.
    let guesses = (0..10).map(|i| {
        let gw = if i % 2 == 0 { &a } else { &b };
        let mut guesser = gw.browser_from(&format!("127.0.0.{}", 10 + i));
        async move { guesser.sign_in_to("bob", "wrong", false, "/").await.status }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    println!("ten parallel guesses over two instances: {checked} checked, {refused} refused");
    assert_eq!(checked + refused, 10, "{statuses:?}");
    assert!(checked <= 3, "{checked} guesses were checked: {statuses:?}");
}
