//! `server.trusted_proxies`: `X-Forwarded-For` is believed only from the listed peers (its
//! rightmost untrusted address is the client); from anyone else the peer's own address is the
//! client and what it sent is replaced, for the upstream's header and for the sign-in lockout.

mod common;
use common::*;

/// 127.0.0.1 plays the load balancer; 127.0.0.2 and up are clients reaching the gateway directly.
async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .server("trusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\"]")
        .hub("login_max_failures = 2\nlogin_failure_window = \"1m\"\nlogin_lockout = \"1m\"")
        .start()
}

fn forwarded_for(browser: &mut Browser, value: &str) {
    browser.extra_headers = vec![("x-forwarded-for".into(), value.into())];
}

/// What the upstream saw in X-Forwarded-For for a request with `sent` (None: no header).
async fn upstream_sees(browser: &mut Browser, sent: Option<&str>) -> String {
    browser.extra_headers.clear();
    if let Some(sent) = sent {
        forwarded_for(browser, sent);
    }
    let page = browser.get("/apps/one/x").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()["headers"]["x-forwarded-for"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_client_cannot_choose_its_forwarded_address() {
    // No trusted proxies (the default): every peer is a client, whatever it claims.
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut direct = gw.browser_from("127.0.0.2");
    direct
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    direct.accept = JSON;
    for sent in [
        None,
        Some("6.6.6.6"),
        Some("6.6.6.6, 10.1.2.3"),
        Some("not an address"),
    ] {
        assert_eq!(
            upstream_sees(&mut direct, sent).await,
            "127.0.0.2",
            "{sent:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
    let gw = gateway().await;
    let mut behind = gw.browser_from("127.0.0.1");
    behind
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    behind.accept = JSON;
    for (sent, seen) in [
        (None, "127.0.0.1"),
        (Some("203.0.113.7"), "203.0.113.7, 127.0.0.1"),
        // What the client wrote itself (left of the address our proxy saw) is dropped; trusted
        // hops between are kept.
        (
            Some("6.6.6.6, 203.0.113.7, 10.1.2.3"),
            "203.0.113.7, 10.1.2.3, 127.0.0.1",
        ),
        (Some("10.9.9.9, 10.1.2.3"), "10.9.9.9, 10.1.2.3, 127.0.0.1"),
        (Some("junk, 203.0.113.9"), "203.0.113.9, 127.0.0.1"),
        (Some("2001:db8::1"), "2001:db8::1, 127.0.0.1"),
    ] {
        assert_eq!(upstream_sees(&mut behind, sent).await, seen, "{sent:?}");
    }
}

/// The status of a sign-in as `user` from `peer`, claiming `forwarded` as X-Forwarded-For.
async fn sign_in_from(
    gw: &Gateway,
    peer: &str,
    forwarded: &str,
    user: &str,
    password: &str,
) -> u16 {
    let mut browser = gw.browser_from(peer);
    forwarded_for(&mut browser, forwarded);
    browser.sign_in_to(user, password, false, "/").await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lockout_counts_the_real_client_behind_a_proxy_and_the_peer_otherwise() {
    let gw = gateway().await;
    // Behind the load balancer: 203.0.113.7 guesses twice and is locked out ...
    for user in ["mallory", "root"] {
        assert_eq!(
            sign_in_from(&gw, "127.0.0.1", "203.0.113.7", user, "x").await,
            401
        );
    }
    let alice = |forwarded| sign_in_from(&gw, "127.0.0.1", forwarded, "alice", ALICE_PASSWORD);
    assert_eq!(alice("203.0.113.7").await, 429);
    // ... while another client behind the same load balancer signs in.
    assert_eq!(alice("203.0.113.8").await, 303);

    // A direct client changing its X-Forwarded-For at every guess is still one address.
    for (user, claimed) in [("admin", "1.1.1.1"), ("guest", "1.1.1.2")] {
        assert_eq!(
            sign_in_from(&gw, "127.0.0.3", claimed, user, "x").await,
            401
        );
    }
    assert_eq!(
        sign_in_from(&gw, "127.0.0.3", "1.1.1.3", "bob", BOB_PASSWORD).await,
        429
    );
    let locked: Vec<_> = gw
        .log_events("login_failed")
        .iter()
        .map(|e| {
            e["fields"]["client"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        locked,
        ["203.0.113.7", "203.0.113.7", "127.0.0.3", "127.0.0.3"]
    );
}
