//! Slow clients: `server.header_read_timeout` closes a connection whose request header trickles in
//! (slowloris) or never comes, `server.body_read_timeout` ends a request whose body trickles in —
//! and neither touches what is merely quiet: a keep-alive connection between requests, an open
//! WebSocket, a slow app, a slow but steady upload.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One second for each: the tests below trickle for several.
async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await).with("public_paths = [\"/apps/one/open\"]"))
        .server("header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"")
        .start()
}

fn connect(gw: &Gateway) -> TcpStream {
    let conn = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    conn
}

/// Sends `bytes` one at a time, `gap` apart, until the gateway closes the connection; returns how
/// many it took, and what it answered (possibly nothing).
fn trickle(conn: &mut TcpStream, bytes: &[u8], gap: Duration) -> (usize, String) {
    for (sent, byte) in bytes.iter().enumerate() {
        if conn.write_all(&[*byte]).is_err() {
            return (sent, read_rest(conn));
        }
        std::thread::sleep(gap);
        if closed(conn) {
            return (sent + 1, read_rest(conn));
        }
    }
    (bytes.len(), read_rest(conn))
}

/// Whether the gateway has closed its side (an answer, if any, is left unread).
fn closed(conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).expect("nonblocking");
    let mut probe = [0u8; 1];
    let closed = match conn.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => true, // it answered: the request is over
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).expect("blocking");
    closed
}

fn read_rest(conn: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
}

/// One request on `conn`, its whole answer read (Content-Length bodies only).
fn exchange(conn: &mut TcpStream, request: &str) -> String {
    if !request.is_empty() {
        conn.write_all(request.as_bytes()).expect("send");
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "closed mid-answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_header_is_cut_off_and_others_are_served_meanwhile() {
    let gw = gateway().await;
    let request = format!(
        "GET /apps/one/open HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(60)
    );
    let mut slow = connect(&gw);
    let started = Instant::now();
    let (sent, answer) = trickle(&mut slow, request.as_bytes(), Duration::from_millis(100));
    assert!(
        sent < request.len(),
        "the whole trickled header ({} bytes over {:?}) was accepted: {answer}",
        request.len(),
        started.elapsed()
    );
    assert!(!answer.contains("200 OK"), "{answer}");
    // While it trickled, and after, a normal client is served.
    let mut normal = connect(&gw);
    assert!(exchange(&mut normal, &get("/apps/one/open")).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_sends_is_closed() {
    let gw = gateway().await;
    let mut silent = connect(&gw);
    // The gateway closes it (read returns 0 or an error) long before this test's 10 s read limit.
    let mut buf = [0u8; 64];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "{}", String::from_utf8_lossy(&buf[..n]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keep_alive_connection_may_rest_between_requests_longer_than_the_header_timeout() {
    let gw = gateway().await;
    let mut conn = connect(&gw);
    assert!(exchange(&mut conn, &get("/apps/one/open")).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(1800));
    assert!(exchange(&mut conn, &get("/apps/one/open")).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_body_is_ended_with_408() {
    // The app reads the whole body before it answers, as an upload handler does.
    let gw = Setup::default()
        .app(App::new("count", counting_app().await).with("public_paths = [\"/apps/count/\"]"))
        .server("header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"")
        .start();
    for path in ["/apps/count/up", "/hub/login"] {
        let mut slow = connect(&gw);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        );
        slow.write_all(head.as_bytes()).expect("head");
        let (sent, answer) = trickle(&mut slow, &[b'a'; 100], Duration::from_millis(150));
        assert!(
            sent < 100,
            "{path}: the whole trickled body was taken: {answer}"
        );
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{path}: {answer}"
        );
    }
}

/// An app that reads a whole `Content-Length` body and answers how many bytes it got.
async fn counting_app() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while seen.len() < head_end + length {
                    match conn.read(&mut buf).await {
                        Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let reply = format!("got {}", seen.len() - head_end);
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
                            reply.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_but_steady_upload_arrives() {
    let gw = Setup::default()
        .app(App::new("count", counting_app().await).with("public_paths = [\"/apps/count/\"]"))
        .server("header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"")
        .start();
    let mut conn = connect(&gw);
    let body = vec![b'x'; 24 * 1024];
    conn.write_all(
        format!(
            "POST /apps/count/up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .expect("head");
    // 2 KiB every 200 ms (10 KiB/s) for 2.4 s: past the 1 s allowance, but well above 1 KiB/s.
    for chunk in body.chunks(2048) {
        conn.write_all(chunk).expect("chunk");
        std::thread::sleep(Duration::from_millis(200));
    }
    let answer = exchange(&mut conn, "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("got 24576"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_slower_than_both_timeouts_still_answers() {
    let gw = gateway().await;
    let mut conn = connect(&gw);
    let answer = exchange(&mut conn, &get("/apps/one/open?delay_ms=2500"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_websocket_may_be_quiet_longer_than_both_timeouts() {
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await).with("websocket = true"))
        .server("header_read_timeout = \"1s\"\nbody_read_timeout = \"1s\"")
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let cookie = browser.cookie_header("/apps/one/ws").expect("cookies");
    let url = gw.url("/apps/one/ws").replace("http://", "ws://");
    let mut socket = open_echoing_websocket(&url, Some(&cookie)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        socket
            .send(Message::text("still here"))
            .await
            .expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        assert!(
            matches!(&echoed, Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "still here"),
            "{echoed:?}"
        );
    }
}
