//! 8. Hostile input at volume: the fuzzers' inputs and the security tests' kinds of hostile request
//!    sent without pause for a minute, while a signed-in user keeps working: no crash, no 5xx, and
//!    nothing the hostile side sends ends or changes the user's session.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::load::{self, Stop};
use crate::report::{seconds, Report};

const SENDERS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_for_a_minute_beside_a_signed_in_user() {
    let duration = seconds(60);
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await).with("websocket = true"))
        .env("HUBGATE_ADMIN_TOKEN", "an-admin-token-for-the-soak")
        .start();
    let cookie = load::signed_in_cookie(&gw).await;
    let session_id = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("hubgate-session-id="))
        .expect("session id")
        .to_string();
    let hostile = Arc::new(hostile_requests(&session_id));

    let stop = Stop::default();
    let user = load::steady(
        gw.port,
        4,
        load::signed_in_request(&cookie),
        Duration::from_secs(10),
        stop.clone(),
    );
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| {
            let (hostile, stop, statuses) = (hostile.clone(), stop.clone(), statuses.clone());
            let port = gw.port;
            tokio::spawn(async move {
                let mut i = n;
                while !stop.requested() {
                    let status =
                        send_once(port, &hostile.requests[i % hostile.requests.len()]).await;
                    i += SENDERS;
                    if let Ok(mut s) = statuses.lock() {
                        *s.entry(status).or_default() += 1;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.now();
    for sender in senders {
        let _ = sender.await;
    }
    let user = user.await.expect("user load");
    let statuses = statuses.lock().map(|s| s.clone()).unwrap_or_default();
    let sent: u64 = statuses.values().sum();
    let server_errors: u64 = statuses.range(500..).map(|(_, n)| n).sum();
    let still_signed_in =
        load::signed_in_status(gw.port, &cookie).await == load::Outcome::Status(200);
    let log = gw.log_text();

    let mut report = Report::new(
        "8-hostile-input",
        "8. Hostile input at volume",
        &format!(
            "{} different hostile requests — every input in the fuzzers' seed sets and corpora \
             (cookie headers, `next` parameters, app tokens sent with the user's real session id, \
             OpenID tokens and state cookies) placed where the gateway reads them, and the kinds \
             of request the security tests send (oversized, malformed, smuggling, spoofed \
             identity, path escapes, bad upgrades) — sent by {SENDERS} connections, each on a \
             fresh connection, for {} s, while one signed-in user sends requests back to back on 4.",
            hostile.requests.len(),
            duration.as_secs()
        ),
    );
    let codes: Vec<String> = statuses
        .iter()
        .map(|(code, n)| {
            if *code == 0 {
                format!("closed without answer: {n}")
            } else {
                format!("{code}: {n}")
            }
        })
        .collect();
    report.figure("hostile requests sent", sent);
    report.figure(
        "hostile requests per second",
        format!("{:.0}", sent as f64 / duration.as_secs_f64()),
    );
    report.figure("their answers", codes.join(", "));
    report.figure(
        "signed-in user's requests / outcomes",
        format!("{} / {}", user.total(), user.outcomes_text()),
    );
    report.bound("0 errors for the signed-in user", user.errors(200) == 0);
    report.bound(
        "the user's session survives everything sent with its id",
        still_signed_in,
    );
    report.bound("0 answers of 500 or above", server_errors == 0);
    report.bound(
        "0 crashes: the gateway is still running, nothing panicked",
        load::alive(gw.pid()) && !log.contains("panicked"),
    );
    report.finish();
}

struct Hostile {
    requests: Vec<Vec<u8>>,
}

/// One request on a fresh connection; the status answered, 0 if the connection closed without one.
async fn send_once(port: u16, request: &[u8]) -> u16 {
    let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    if conn.write_all(request).await.is_err() {
        return 0;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match conn.read(&mut buf).await {
                Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    })
    .await;
    if read.is_err() {
        return 0;
    }
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Every input of a fuzz target: its committed seeds and, where a fuzzer has run here, its corpus.
fn fuzz_inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for dir in [
        root.join("seeds").join(target),
        root.join("corpus").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten().take(2_000) {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                inputs.push(bytes);
            }
        }
    }
    inputs
}

/// Header-safe: a fuzzer's bytes with line breaks taken out, so they stay one header's value.
fn one_line(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|b| if *b == b'\r' || *b == b'\n' { b' ' } else { *b })
        .collect()
}

fn percent_encoded(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn request(head: impl AsRef<[u8]>, headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = head.as_ref().to_vec();
    out.extend_from_slice(b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for header in headers {
        out.extend_from_slice(header);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn hostile_requests(session_id: &str) -> Hostile {
    let mut requests = Vec::new();
    for input in fuzz_inputs("cookie_header") {
        let header = [b"Cookie: ".as_slice(), &one_line(&input)].concat();
        requests.push(request("GET /apps/one/x HTTP/1.1", &[&header], b""));
        requests.push(request("GET /hub/session HTTP/1.1", &[&header], b""));
    }
    for input in fuzz_inputs("next_param") {
        let next = percent_encoded(&input);
        requests.push(request(
            format!("GET /hub/login?next={next} HTTP/1.1"),
            &[],
            b"",
        ));
        requests.push(request(
            format!("GET /hub/authorize?app=one&next={next} HTTP/1.1"),
            &[],
            b"",
        ));
    }
    for input in fuzz_inputs("app_token") {
        // Defect 1 of issue 18: a token nobody can verify, sent with the user's real session id.
        let header = [
            b"Cookie: hubgate-app-one=".as_slice(),
            &one_line(&input),
            format!("; hubgate-session-id={session_id}").as_bytes(),
        ]
        .concat();
        requests.push(request(
            "GET /apps/one/x HTTP/1.1",
            &[&header, b"Accept: application/json"],
            b"",
        ));
        let bearer = [b"Authorization: Bearer ".as_slice(), &one_line(&input)].concat();
        requests.push(request("GET /apps/one/x HTTP/1.1", &[&bearer], b""));
    }
    for input in fuzz_inputs("oidc_tokens") {
        let body = format!("logout_token={}", percent_encoded(&input));
        requests.push(request(
            "POST /hub/oidc/corp/backchannel-logout HTTP/1.1",
            &[
                b"Content-Type: application/x-www-form-urlencoded",
                format!("Content-Length: {}", body.len()).as_bytes(),
            ],
            body.as_bytes(),
        ));
    }
    for input in fuzz_inputs("oidc_pending_sign_in") {
        let header = [b"Cookie: hubgate-oidc=".as_slice(), &one_line(&input)].concat();
        requests.push(request(
            "GET /hub/oidc/corp/callback?code=x&state=y HTTP/1.1",
            &[&header],
            b"",
        ));
    }
    let big = "a".repeat(70_000);
    let many: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("X-Many-{i}: v").into_bytes())
        .collect();
    let many: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
    let spoofed = format!("Cookie: hubgate-session-id={session_id}");
    let raw: Vec<Vec<u8>> = vec![
        request(format!("GET /apps/one/{big} HTTP/1.1"), &[], b""),
        request(
            "GET /apps/one/x HTTP/1.1",
            &[format!("X-Big: {big}").as_bytes()],
            b"",
        ),
        request("GET /apps/one/x HTTP/1.1", &many, b""),
        request(
            "GET /apps/one/x HTTP/1.1",
            &[format!("Cookie: {}", "c=v; ".repeat(3000)).as_bytes()],
            b"",
        ),
        request(
            "GET /apps/one/../../hub/api/admin/sessions HTTP/1.1",
            &[],
            b"",
        ),
        request("GET /apps/one/%2e%2e/%2e%2e/etc/passwd HTTP/1.1", &[], b""),
        request(b"GET /apps/one/\xff\xfe HTTP/1.1", &[], b""),
        request(b"GET /apps/one/a\0b HTTP/1.1", &[], b""),
        request("GET http://evil.example/apps/one/x HTTP/1.1", &[], b""),
        request("GET * HTTP/1.1", &[], b""),
        request("OPTIONS * HTTP/1.1", &[], b""),
        request("CONNECT 127.0.0.1:22 HTTP/1.1", &[], b""),
        request("BREW /apps/one/x HTTP/1.1", &[], b""),
        request("GET /apps/one/x HTTP/9.9", &[], b""),
        b"GET /apps/one/x\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        b"GET /apps/one/x HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /apps/one/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        request(
            "POST /apps/one/x HTTP/1.1",
            &[b"Content-Length: 5", b"Transfer-Encoding: chunked"],
            b"0\r\n\r\nGET /hub/api/admin/sessions HTTP/1.1\r\n\r\n",
        ),
        request(
            "POST /apps/one/x HTTP/1.1",
            &[b"Transfer-Encoding: chunked"],
            b"zz\r\nbad\r\n0\r\n\r\n",
        ),
        request(
            "POST /apps/one/x HTTP/1.1",
            &[b"Transfer-Encoding: chunked"],
            b"ffffffffffffffff\r\n",
        ),
        request("POST /apps/one/x HTTP/1.1", &[b"Content-Length: -1"], b""),
        request(
            "POST /apps/one/x HTTP/1.1",
            &[b"Content-Length: 1", b"Content-Length: 2"],
            b"ab",
        ),
        request(
            "POST /hub/login HTTP/1.1",
            &[
                b"Content-Type: application/x-www-form-urlencoded",
                b"Content-Length: 20",
            ],
            b"username=%ff%fe&pass",
        ),
        request(
            "POST /hub/login HTTP/1.1",
            &[b"Content-Length: 200000"],
            &vec![b'x'; 200_000],
        ),
        request(
            "POST /hub/login HTTP/1.1",
            &[b"Expect: 100-continue", b"Content-Length: 10"],
            b"",
        ),
        request(
            "GET /apps/one/x HTTP/1.1",
            &[
                b"X-Forwarded-User: admin",
                b"X_Forwarded_User: admin",
                b"X-Original-URL: /hub/api/admin/sessions",
                spoofed.as_bytes(),
            ],
            b"",
        ),
        request(
            "GET /apps/one/ws HTTP/1.1",
            &[
                b"Connection: Upgrade",
                b"Upgrade: websocket",
                b"Sec-WebSocket-Version: 13",
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ],
            b"",
        ),
        request(
            "GET /apps/one/ws HTTP/1.1",
            &[b"Connection: Upgrade", b"Upgrade: h2c", spoofed.as_bytes()],
            b"",
        ),
        request(
            "GET /hub/api/admin/sessions?user=alice HTTP/1.1",
            &[b"Authorization: Bearer wrong"],
            b"",
        ),
        request(
            "GET /hub/api/admin/sessions?user=%00 HTTP/1.1",
            &[b"Authorization: Bearer an-admin-token-for-the-soak"],
            b"",
        ),
        request(
            "GET /hub/forward-auth HTTP/1.1",
            &[
                b"X-Forwarded-Host: \xff",
                b"X-Forwarded-Uri: /../..",
                b"X-Forwarded-Proto: gopher",
            ],
            b"",
        ),
        request(
            "GET /hub/auth-request HTTP/1.1",
            &[b"X-Original-URI: //evil.example", b"X-Hubgate-App: ../one"],
            b"",
        ),
        request(
            "GET /hub/logout?next=javascript:alert(1) HTTP/1.1",
            &[],
            b"",
        ),
        request("GET / HTTP/1.1", &[b"Host: \xff\xfe.example"], b""),
    ];
    requests.extend(raw);
    Hostile { requests }
}
