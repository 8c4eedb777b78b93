//! The fast path (`proxy::fast_path`): plain GET/HEAD requests served on it and everything else
//! on pingora-proxy's general path, on one keep-alive connection, with the same answers; kept
//! upstream connections that the app closed; responses that end at the upstream's close.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 response read off a raw connection.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Reads one response (`Content-Length`, chunked, or none for a HEAD) so the connection can
/// carry the next request.
fn read_answer(reader: &mut BufReader<TcpStream>, to_head: bool) -> Answer {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read head") > 0,
            "closed: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    if to_head {
        return answer;
    }
    if let Some(length) = answer.header("content-length") {
        let mut body = vec![0; length.parse().expect("a length")];
        reader.read_exact(&mut body).expect("read body");
        answer.body = body;
    } else if answer.header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            if size == 0 {
                break;
            }
            answer.body.extend_from_slice(&chunk[..size]);
        }
    }
    answer
}

fn send(connection: &mut TcpStream, request: String) {
    connection.write_all(request.as_bytes()).expect("send");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_requests_and_the_rest_share_one_connection_with_the_same_answers() {
    let one = upstream("one").await;
    let gw = Setup::default().app(App::new("one", one)).start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let cookie = browser.cookie_header("/apps/one/").expect("signed in");
    let fast = "hubgate_http1_requests_total{path=\"fast\"}";
    let general = "hubgate_http1_requests_total{path=\"general\"}";
    let (fast_before, general_before) = (gw.metric(fast).await, gw.metric(general).await);

    let mut connection = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let mut reader = BufReader::new(connection.try_clone().expect("clone"));
    let host = format!("127.0.0.1:{}", gw.port);
    let get = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n\r\n")
    };

    // Plain: the fast path, with the gate's identity headers and the app's cookies only.
    send(&mut connection, get("/apps/one/first"));
    let first = read_answer(&mut reader, false);
    assert_eq!(first.status, 200, "{}", first.head);
    let seen = first.json();
    assert_eq!(seen["path"], "/apps/one/first");
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");
    assert_eq!(seen["headers"]["x-forwarded-groups"], "ops");
    assert!(seen["headers"].get("connection").is_none(), "{seen}");
    assert!(
        seen["cookie"].is_null(),
        "a gateway cookie reached the app: {seen}"
    );

    // A body: the general path, on the same connection.
    send(
        &mut connection,
        format!("POST /apps/one/second HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: application/json\r\nContent-Length: 5\r\n\r\nhello"),
    );
    let second = read_answer(&mut reader, false);
    assert_eq!(second.status, 200, "{}", second.head);
    assert_eq!(second.json()["method"], "POST");
    assert_eq!(second.json()["headers"]["x-forwarded-user"], "alice");

    // HEAD: no body, and the connection goes on.
    send(
        &mut connection,
        format!("HEAD /apps/one/third HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n"),
    );
    assert_eq!(read_answer(&mut reader, true).status, 200);

    // Without the cookie: the gate's own answer, from the fast path too.
    send(
        &mut connection,
        format!("GET /apps/one/fourth HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\r\n"),
    );
    let refused = read_answer(&mut reader, false);
    assert_eq!(refused.status, 302, "{}", refused.head);
    assert!(
        refused
            .header("location")
            .is_some_and(|l| l.starts_with("/hub/authorize?app=one")),
        "{}",
        refused.head
    );

    send(&mut connection, get("/apps/one/fifth"));
    assert_eq!(
        read_answer(&mut reader, false).json()["path"],
        "/apps/one/fifth"
    );

    // HTTP/1.0 is not plain: the general path answers, and closes.
    send(
        &mut connection,
        format!("GET /apps/one/sixth HTTP/1.0\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: application/json\r\n\r\n"),
    );
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("read to close");
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.starts_with("HTTP/1.") && rest.contains("/apps/one/sixth"),
        "{rest}"
    );

    assert_eq!(gw.metric(fast).await - fast_before, 4.0);
    assert_eq!(gw.metric(general).await - general_before, 2.0);
}

/// An upstream that answers every request with `response`, closing the connection after the
/// first when `close` (as an app with a short keep-alive time, or one restarting, does). Counts
/// the connections that carried a request (health checks connect and send nothing).
async fn counting_upstream(
    response: &'static str,
    close: bool,
) -> (SocketAddr, tokio::sync::watch::Receiver<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (count, seen) = tokio::sync::watch::channel(0);
    let count = std::sync::Arc::new(count);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut first = true;
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match socket.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    if std::mem::take(&mut first) {
                        count.send_modify(|n| *n += 1);
                    }
                    let _ = socket.write_all(response.as_bytes()).await;
                    if close {
                        let _ = socket.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn public_app(upstream: SocketAddr) -> App {
    App::new("one", upstream).with("public_paths = [\"/apps/one/\"]")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_connection_the_app_closed_while_kept_is_replaced_not_an_error() {
    // The response says nothing of closing: the gateway keeps the connection for the next
    // request, and finds it closed only when it uses it.
    let (app, connections) = counting_upstream(OK, true).await;
    let gw = Setup::default().app(public_app(app)).start();
    let mut connection = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let mut reader = BufReader::new(connection.try_clone().expect("clone"));
    for n in 1..=3 {
        send(
            &mut connection,
            format!("GET /apps/one/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        let answer = read_answer(&mut reader, false);
        assert_eq!(
            (answer.status, answer.body.as_slice()),
            (200, &b"ok"[..]),
            "request {n}: {}",
            answer.head
        );
    }
    assert_eq!(
        *connections.borrow(),
        3,
        "each request needed a connection of its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_that_ends_at_the_upstreams_close_reaches_the_client_chunked() {
    let (app, _) = counting_upstream(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
        true,
    )
    .await;
    let gw = Setup::default().app(public_app(app)).start();
    let mut connection = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let mut reader = BufReader::new(connection.try_clone().expect("clone"));
    for n in 1..=2 {
        send(
            &mut connection,
            format!("GET /apps/one/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        let answer = read_answer(&mut reader, false);
        assert_eq!(answer.status, 200, "{}", answer.head);
        assert_eq!(
            answer.header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{}",
            answer.head
        );
        assert_eq!(answer.body, b"until the end");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_fast_path_off_every_request_takes_the_general_path() {
    let one = upstream("one").await;
    let gw = Setup::default()
        .server("fast_path = false")
        .app(App::new("one", one).with("public_paths = [\"/apps/one/\"]"))
        .start();
    let mut api = gw.browser().api();
    for _ in 0..3 {
        assert_eq!(api.get("/apps/one/x").await.json()["path"], "/apps/one/x");
    }
    assert_eq!(
        gw.metric("hubgate_http1_requests_total{path=\"fast\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_client_connection_gives_its_upstream_connection_back() {
    let (app, connections) = counting_upstream(OK, false).await;
    let gw = Setup::default().app(public_app(app)).start();
    let request = "GET /apps/one/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string();
    let mut quiet = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let mut quiet_reader = BufReader::new(quiet.try_clone().expect("clone"));
    send(&mut quiet, request.clone());
    assert_eq!(read_answer(&mut quiet_reader, false).body, b"ok");
    // Quiet for longer than a connection holds its upstream: the next client is served over the
    // same upstream connection, from the pool, while the first stays open.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut next = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let mut next_reader = BufReader::new(next.try_clone().expect("clone"));
    send(&mut next, request.clone());
    assert_eq!(read_answer(&mut next_reader, false).body, b"ok");
    assert_eq!(*connections.borrow(), 1);
    send(&mut quiet, request);
    assert_eq!(read_answer(&mut quiet_reader, false).body, b"ok");
}
