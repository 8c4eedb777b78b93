//! Reloading while serving: SIGHUP (or a watched file) changes apps, users and keys for the
//! requests after it, while sessions, open WebSockets and requests in flight carry on; a broken
//! config changes nothing.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// An upstream that answers at once, except a request for a path containing `hold`: that one it
/// announces (`received`) and answers only once `release` is notified.
async fn holding_upstream() -> (SocketAddr, Arc<Notify>, Arc<Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (received, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (r, l) = (received.clone(), release.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (received, release) = (r.clone(), l.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let first_line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let body = if first_line.contains("hold") {
                    received.notify_one();
                    release.notified().await;
                    "held and answered"
                } else {
                    "at once"
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, received, release)
}

/// Until `hubgate_config_reloads_total{result}` reaches `count` (a reload takes milliseconds;
/// the bound only stops a broken build from hanging the suite).
async fn reloads_reach(gw: &Gateway, result: &str, count: f64) {
    let series = format!("hubgate_config_reloads_total{{result=\"{result}\"}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.metric(&series).await < count {
        assert!(
            Instant::now() < deadline,
            "no {result} reload:\n{}",
            gw.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rewrite(gw: &Gateway, file: &str, edit: impl FnOnce(String) -> String) {
    let path = gw.dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

/// alice (groups ops, dba now) and carol; bob is gone.
fn users_after() -> String {
    let hash = users_toml(&["x".to_string()])
        .lines()
        .find_map(|l| l.strip_prefix("password_hash = ").map(str::to_string))
        .unwrap();
    format!(
        "[[users]]\nname = \"alice\"\npassword_hash = {hash}\ngroups = [\"ops\", \"dba\"]\nemail = \"alice@example.com\"\n\n\
         [[users]]\nname = \"carol\"\npassword_hash = {hash}\ngroups = [\"ops\"]\n"
    )
}

fn assert_user_removed(page: &Page) {
    assert_eq!(
        (page.status, page.json()["reason"].as_str()),
        (401, Some("user_removed")),
        "{}",
        page.body
    );
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&json).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_changes_apps_users_and_keys_while_everyone_stays_connected() {
    let (one, two, three) = (
        upstream("one").await,
        upstream("two").await,
        upstream("three").await,
    );
    let (held, received, release) = holding_upstream().await;
    let gw = Setup::default()
        .tokens(&token_keys(&[("k1", 1)]))
        .app(App::new("one", one))
        .app(App::new("two", two))
        .app(App::new("held", held))
        .app(App::new("dba", one).with("allowed_groups = [\"dba\"]"))
        .start();
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    let mut bob = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    let seen = alice.get("/apps/one/x").await.json();
    assert_eq!(seen["headers"]["x-forwarded-groups"], "ops");
    let mut alice_browsing = alice.on(&gw);
    alice_browsing.accept = HTML;
    let (_, page) = alice_browsing.follow("/apps/dba/").await;
    assert_eq!(page.status, 403, "not in dba yet");

    let mut socket = open_echoing_websocket(
        &format!("ws://127.0.0.1:{}/apps/one/ws", gw.port),
        alice.cookie_header("/apps/one/ws").as_deref(),
    )
    .await;
    let mut waiting = alice.on(&gw);
    waiting.accept = HTML;
    waiting.follow("/apps/held/").await;
    let in_flight = tokio::spawn(async move { waiting.get("/apps/held/hold").await });
    received.notified().await;

    rewrite(&gw, "gateway.toml", |text| {
        text.replace(
            &format!("name = \"two\"\nprefix = \"/apps/two\"\nupstreams = [\"{two}\"]"),
            &format!("name = \"three\"\nprefix = \"/apps/three\"\nupstreams = [\"{three}\"]"),
        )
        .replace(
            "[[tokens.keys]]\nid = \"k1\"",
            &format!("{}[[tokens.keys]]\nid = \"k1\"", token_keys(&[("k2", 2)])),
        )
    });
    std::fs::write(gw.dir.path().join("users.toml"), users_after()).unwrap();
    gw.hang_up();
    reloads_reach(&gw, "success", 1.0).await;

    // The request that was waiting on its upstream during the reload completes.
    release.notify_one();
    let page = in_flight.await.unwrap();
    assert_eq!(
        (page.status, page.body.as_str()),
        (200, "held and answered")
    );

    // The WebSocket opened before the reload still echoes.
    socket
        .send(Message::text("after the reload"))
        .await
        .unwrap();
    match socket.next().await {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "after the reload"),
        other => panic!("the WebSocket stopped echoing: {other:?}"),
    }

    // alice's session (memory store) survived, her k1 token still verifies, and her new groups
    // apply at once rather than after the cache period.
    let page = alice.get("/apps/one/x").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["headers"]["x-forwarded-groups"], "ops,dba");
    // The hub sees the new groups too: it now issues her a token for the dba-only app.
    let (_, page) = alice_browsing.follow("/apps/dba/").await;
    assert_eq!(page.status, 200, "{}", page.body);

    // App two is gone, app three is served.
    assert_eq!(alice.get("/apps/two/x").await.status, 404);
    alice.accept = HTML;
    let (_, page) = alice.follow("/apps/three/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("three"), "{}", page.body);

    // bob was removed: refused with user_removed, and his session ended with that reason.
    assert_user_removed(&bob.get("/apps/one/x").await);
    assert_eq!(
        gw.metric("hubgate_sessions_ended_total{reason=\"user_removed\"}")
            .await,
        1.0
    );
    bob.accept = HTML;
    let (_, page) = bob.follow("/apps/one/").await;
    assert!(
        page.body.contains("Your account was removed"),
        "{}",
        page.body
    );
    let mut bob_again = gw.browser();
    let refused = bob_again.sign_in_to("bob", BOB_PASSWORD, false, "/").await;
    assert_ne!(refused.status, 303, "bob can no longer sign in");

    // carol was added; her tokens are signed with the new first key.
    let mut carol = gw.browser();
    carol.sign_in_and_open("carol", ALICE_PASSWORD, "one").await;
    let token = carol
        .jar
        .iter()
        .find(|c| c.path == "/apps/one/")
        .map(|c| c.value.clone())
        .expect("carol's app cookie");
    assert_eq!(kid_of(&token), "k2");

    assert!(
        gw.metric("hubgate_config_last_reload_timestamp_seconds")
            .await
            > 1.0e9
    );
    assert_eq!(
        gw.metric("hubgate_config_reloads_total{result=\"failure\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_on_sighup_changes_nothing_and_names_every_key() {
    let one = upstream("one").await;
    let gw = Setup::default().app(App::new("one", one)).start();
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;

    rewrite(&gw, "gateway.toml", |text| {
        text.replace("[session]\n", "[session]\nidle_timeout = \"soon\"\n")
            .replace(
                &format!("upstreams = [\"{one}\"]"),
                &format!(
                    "upstreams = [\"{one}\"]\nallowed_groups = [\"nobody\"]\ncolour = \"blue\""
                ),
            )
    });
    std::fs::write(
        gw.dir.path().join("users.toml"),
        "[[users]]\nname = \"eve\"\n",
    )
    .unwrap();
    gw.hang_up();
    reloads_reach(&gw, "failure", 1.0).await;

    let keys: Vec<String> = gw
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "ERROR")
        .filter_map(|v| v["fields"]["key"].as_str().map(str::to_string))
        .collect();
    for key in ["session.idle_timeout", "apps[0].colour", "password_hash"] {
        assert!(
            keys.iter().any(|k| k.contains(key)),
            "{key} not named: {keys:?}\n{}",
            gw.log_text()
        );
    }
    assert!(gw.log_text().contains("the running config keeps serving"));

    // Nothing changed: alice's session, the old (unrestricted) app one, the old users.
    assert_eq!(alice.get("/apps/one/x").await.status, 200);
    let mut bob = gw.browser();
    bob.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    assert_eq!(
        gw.metric("hubgate_config_reloads_total{result=\"success\"}")
            .await,
        0.0
    );
}

fn users_cli(gw: &Gateway, args: &[&str], password: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .arg("-c")
        .arg(gw.dir.path().join("gateway.toml"))
        .arg("users")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_cli_change_is_picked_up_on_sighup_and_restart_only_keys_are_named() {
    let one = upstream("one").await;
    let gw = Setup::default().app(App::new("one", one)).start();
    users_cli(&gw, &["add", "carol", "--group", "ops"], "carol-password");
    rewrite(&gw, "gateway.toml", |text| {
        text.replace("threads = 2", "threads = 3")
    });
    let mut carol = gw.browser();
    let refused = carol
        .sign_in_to("carol", "carol-password", false, "/")
        .await;
    assert_ne!(refused.status, 303, "not before the reload");

    gw.hang_up();
    reloads_reach(&gw, "success", 1.0).await;
    let page = carol
        .sign_in_and_open("carol", "carol-password", "one")
        .await;
    assert!(page.body.contains("carol"), "{}", page.body);
    let warned = gw
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|v| v["level"] == "WARN" && v["fields"]["key"] == "server.threads");
    assert!(warned, "server.threads not named:\n{}", gw.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_config_a_removed_user_is_signed_out_without_a_signal() {
    let one = upstream("one").await;
    let gw = Setup::default()
        .server("watch_config = true")
        .app(App::new("one", one))
        .start();
    gw.wait_for_log("reload: listening for SIGHUP");
    let mut bob = Browser::signed_in_api(&gw, "bob", BOB_PASSWORD, "one").await;
    assert_eq!(bob.get("/apps/one/x").await.status, 200);

    users_cli(&gw, &["remove", "bob"], "");
    reloads_reach(&gw, "success", 1.0).await;
    assert_user_removed(&bob.get("/apps/one/x").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_removed_by_one_instances_reload_is_refused_on_every_instance() {
    let redis = Redis::start();
    let one = upstream("one").await;
    let setup = Setup::default()
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 1)]))
        .app(App::new("one", one));
    let (a, b) = (setup.clone().start(), setup.start());
    let bob_on_a = Browser::signed_in_api(&a, "bob", BOB_PASSWORD, "one").await;
    let mut bob_on_b = bob_on_a.on(&b);
    assert_eq!(bob_on_b.get("/apps/one/x").await.status, 200, "cached on B");

    // Only A's users file loses bob, and only A reloads.
    rewrite(&a, "users.toml", |text| {
        let bob = text.find("[[users]]\nname = \"bob\"").unwrap();
        text[..bob].to_string()
    });
    a.hang_up();
    reloads_reach(&a, "success", 1.0).await;
    // B hears the end over the store's revocation channel, as it hears a sign-out.
    assert!(refused_within(&mut bob_on_b, Duration::from_secs(2))
        .await
        .is_some());
    assert_user_removed(&bob_on_b.get("/apps/one/x").await);
}
