//! A Redis primary killed under traffic — a Sentinel primary, and a cluster primary — while revoked
//! cookies are replayed without pause: none is ever admitted, nothing crashes, and requests recover
//! by themselves once a replica has taken over (errors and seconds to recover are printed).

mod common;
use common::*;
use std::time::{Duration, Instant};

fn keys() -> String {
    format!(
        "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"\n",
        fixed_key(1)
    )
}

/// What clients saw from the kill until a signed-in session and a new sign-in both work again.
struct Failover {
    revoked_admitted: usize,
    revoked_replays: usize,
    live_errors: usize,
    recovered_after: Duration,
}

/// Kills the primary with `kill`, then replays `revoked` and uses `live` until `live` is admitted
/// again and a fresh sign-in succeeds.
async fn through_failover(
    gw: &Gateway,
    revoked: &mut Browser,
    live: &mut Browser,
    kill: impl FnOnce(),
) -> Failover {
    let mut seen = Failover {
        revoked_admitted: 0,
        revoked_replays: 0,
        live_errors: 0,
        recovered_after: Duration::ZERO,
    };
    kill();
    let killed = Instant::now();
    loop {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "requests did not recover within 30 s: {}",
            gw.log_text()
        );
        for _ in 0..5 {
            seen.revoked_replays += 1;
            if revoked.get("/apps/one/x").await.status == 200 {
                seen.revoked_admitted += 1;
            }
        }
        let page = live.get("/apps/one/x").await;
        if page.status != 200 {
            seen.live_errors += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mut newcomer = gw.browser();
        if newcomer
            .sign_in_to("bob", BOB_PASSWORD, false, "/")
            .await
            .status
            == 303
        {
            seen.recovered_after = killed.elapsed();
            return seen;
        }
        seen.live_errors += 1;
    }
}

fn report(kind: &str, seen: &Failover) {
    println!(
        "{kind} failover: revoked cookies admitted {} of {} replays; live-session errors {}; recovered after {:.1} s",
        seen.revoked_admitted,
        seen.revoked_replays,
        seen.live_errors,
        seen.recovered_after.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sentinel_failover_is_followed_and_never_admits_a_revoked_session() {
    let mut set_up = RedisSentinel::start();
    let setup = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis_sentinel(&set_up)
        .session("cache_ttl = \"5m\"\non_store_error = \"deny\"")
        .tokens(&keys());
    let (gw, other) = (setup.clone().start(), setup.start());
    let mut live = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut revoked = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    assert_eq!(revoked.get("/apps/one/x").await.status, 200);
    let mut out = revoked.on(&gw);
    assert_eq!(out.get("/hub/logout").await.status, 302);
    assert_eq!(revoked.get("/apps/one/x").await.status, 401);
    // Replication is asynchronous: the test waits until the replica has the sign-out (a sign-out
    // acknowledged in the last milliseconds before a primary dies can be lost with it).
    assert!(set_up
        .primary
        .command(&["WAIT", "1", "2000"])
        .is_some_and(|r| r.trim() == ":1"));
    let old_primary = set_up.primary.port;

    let seen = through_failover(&gw, &mut revoked, &mut live, || set_up.primary.stop()).await;
    report("Sentinel", &seen);
    assert_eq!(set_up.primary_port(), Some(set_up.replica.port));
    assert_ne!(set_up.primary_port(), Some(old_primary));
    assert_eq!(seen.revoked_admitted, 0);
    assert_eq!(
        revoked.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    // The revocation listener followed too: it hears sign-outs made on another instance.
    revocations_heard_again(&gw, &other, "alice", ALICE_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_primary_failover_never_admits_a_revoked_session() {
    let cluster = RedisCluster::start_with_replicas(1);
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis_cluster(&cluster)
        .session("cache_ttl = \"5m\"\non_store_error = \"deny\"")
        .tokens(&keys())
        .start();
    let mut live = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut revoked = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    let mut out = revoked.on(&gw);
    assert_eq!(out.get("/hub/logout").await.status, 302);
    assert_eq!(revoked.get("/apps/one/x").await.status, 401);
    // Kill the primary holding bob's (revoked) session, once its replica has the sign-out.
    let bucket = hubgate::session::user_bucket("bob");
    let victim = cluster.node_of_key(&format!("test:{{{bucket}}}:x"));
    assert!(cluster.nodes[victim]
        .command(&["WAIT", "1", "2000"])
        .is_some_and(|r| r.trim() == ":1"));

    let mut nodes = cluster.nodes;
    let seen = through_failover(&gw, &mut revoked, &mut live, || nodes[victim].stop()).await;
    report("cluster", &seen);
    assert_eq!(seen.revoked_admitted, 0);
    assert_eq!(
        revoked.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
}
