//! Many WebSocket upgrades through the gateway, each proven by an echo. Pingora 0.9.1 tears an
//! upgraded tunnel down right after its `101` when the upstream answers before the proxy has
//! passed on the upgrade request's empty body (cloudflare/pingora#946); this counts how often.
//! `WEBSOCKET_UPGRADES` (default 200) and `WEBSOCKET_PARALLEL` (default 8) set the load;
//! `scripts/websocket-soak` runs 1,000 under CPU load.

mod common;
use common::*;
use futures_util::StreamExt;

fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_upgrade_echoes() {
    let upgrades = from_env("WEBSOCKET_UPGRADES", 200);
    let parallel = from_env("WEBSOCKET_PARALLEL", 8).max(1);
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let cookie = browser.cookie_header("/apps/one/ws").expect("cookies");
    let url = format!("ws://127.0.0.1:{}/apps/one/ws", gw.port);

    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..upgrades)
        .map(|n| {
            let (url, cookie) = (url.clone(), cookie.clone());
            async move { upgrade_and_echo(&url, &cookie, n).await }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    all_echoed(&format!("{parallel} at a time"), upgrades, &failures);
    assert!(!gw.log_text().contains("panicked"));
}

/// The Cookie header for alice's WebSocket to `app`: signed in and authorized at the hub, without
/// loading the app's page (an upgrade-only upstream has none).
async fn websocket_cookies(gw: &Gateway, app: &str) -> String {
    let mut browser = gw.browser();
    let signed_in = browser
        .sign_in_to("alice", ALICE_PASSWORD, false, "/")
        .await;
    assert_eq!(signed_in.status, 303);
    let authorized = browser
        .get(&format!("/hub/authorize?app={app}&next=%2Fhub%2F"))
        .await;
    assert_eq!(authorized.status, 302, "{}", authorized.body);
    browser
        .cookie_header(&format!("/apps/{app}/ws"))
        .expect("cookies")
}

/// An upstream that answers every connection with a `101` at once, before it has read the request
/// — what a fast app on a busy machine amounts to: its answer is waiting when the proxy first
/// looks — then echoes every byte after the request head.
async fn eager_upgrade_upstream() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
                conn.write_all(head.as_bytes()).await?;
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        conn.write_all(&seen[end + 4..]).await?;
                        break;
                    }
                }
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    conn.write_all(&buf[..n]).await?;
                }
            });
        }
    });
    addr
}

/// A raw upgrade through the gateway: `Ok` once bytes sent after the `101` come back.
async fn raw_upgrade_echoes(port: u16, cookie: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /apps/eager/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before an answer".into());
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    if !seen.starts_with(b"HTTP/1.1 101") {
        return Err(String::from_utf8_lossy(&seen[..end]).into_owned());
    }
    conn.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut echoed = seen[end + 4..].to_vec();
    while echoed.len() < 4 {
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf));
        match read.await {
            Ok(Ok(0)) => return Err("torn down after the 101".into()),
            Ok(Ok(n)) => echoed.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return Err(format!("torn down after the 101: {e}")),
            Err(_) => return Err("no echo within 5 s".into()),
        }
    }
    if echoed != b"ping" {
        return Err(format!("echoed {echoed:?}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_upgrade_echoes_even_when_the_upstream_answers_before_reading() {
    let upgrades = from_env("WEBSOCKET_UPGRADES", 200);
    let gw = Setup::default()
        .app(App::new("eager", eager_upgrade_upstream().await))
        .start();
    let cookie = websocket_cookies(&gw, "eager").await;
    let mut failures = Vec::new();
    for _ in 0..upgrades {
        if let Err(why) = raw_upgrade_echoes(gw.port, &cookie).await {
            failures.push(why);
        }
    }
    all_echoed("to an upstream that answers first", upgrades, &failures);
}

/// Prints how many of `upgrades` echoed and fails on any that did not.
fn all_echoed(how: &str, upgrades: usize, failures: &[String]) {
    println!(
        "{upgrades} upgrades {how}: {} echoed, {} did not",
        upgrades - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {upgrades} upgrades did not echo; first: {:?}",
        failures.len(),
        failures.first()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_the_app_refuses_or_cannot_take_gets_an_answer() {
    let closed_port = free_port();
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .app(App::new(
            "down",
            format!("127.0.0.1:{closed_port}").parse().unwrap(),
        ))
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    assert_eq!(
        browser
            .get("/hub/authorize?app=down&next=%2Fhub%2F")
            .await
            .status,
        302
    );
    let upgrade = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {}\r\n\r\n",
            browser.cookie_header(path).unwrap_or_default()
        )
    };
    // The demo app answers an upgrade of a plain page with the page: passed on as it is.
    let refused = raw_response_head(gw.port, upgrade("/apps/one/plain").as_bytes());
    assert!(refused.starts_with("HTTP/1.1 200"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("content-length"),
        "{refused}"
    );
    // Nobody listening: the gateway's 502 page, as for any request.
    let down = raw_response_head(gw.port, upgrade("/apps/down/ws").as_bytes());
    assert!(down.starts_with("HTTP/1.1 502"), "{down}");
    assert_eq!(
        gw.metric_reaches(
            "hubgate_requests_total{app=\"down\",outcome=\"upstream_error\"}",
            1.0
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_moves_on_past_a_dead_upstream_of_the_pool() {
    let mut app = App::new("one", upstream("one").await);
    app.upstreams
        .insert(0, format!("127.0.0.1:{}", free_port()).parse().unwrap());
    let gw = Setup::default().app(app).start();
    let cookie = websocket_cookies(&gw, "one").await;
    let url = format!("ws://127.0.0.1:{}/apps/one/ws", gw.port);
    // Round-robin starts anywhere in the pool: each upgrade must echo all the same.
    for n in 0..4 {
        upgrade_and_echo(&url, &cookie, n)
            .await
            .unwrap_or_else(|why| panic!("upgrade {n}: {why}"));
    }
}
