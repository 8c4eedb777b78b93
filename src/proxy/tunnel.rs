//! WebSocket (HTTP/1 upgrade) tunnels, carried by hubgate instead of Pingora's proxy loop.
//!
//! Pingora 0.9.1 tears an upgraded connection down right after the `101` whenever the upstream's
//! answer is read before the upgrade request's empty body has been passed on: the end of that
//! empty body is taken for the end of the tunnel (cloudflare/pingora#946). Which comes first is
//! a coin toss in its `select!` as soon as both are ready, which a fast app on a busy machine
//! makes likely (30 % of upgrades when the app answers at once: `tests/websocket_many.rs`).
//! Nothing a `ProxyHttp` callback can do reorders that, so an upgrade whose request has no body
//! (every WebSocket handshake) is tunnelled here: the request, prepared by the same rules as any
//! proxied request, is written to the upstream, its answer passed back, and after a `101` bytes
//! are copied both ways until either side closes — with the same session checks as before.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upstream that does not accept within this long is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An upstream that does not answer the handshake within this long is stuck.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// A response head larger than this is not an app's upgrade answer.
const MAX_HEAD: usize = 64 * 1024;

/// Whether a request is carried by [`serve`]: an upgrade with no request body.
pub fn applies(session: &mut Session) -> bool {
    session.is_upgrade_req() && session.is_body_empty()
}

/// Decides, for each chunk, whether the tunnel may carry it (the session is still live).
#[async_trait::async_trait]
pub trait Watch: Send {
    async fn may_carry_client_data(&mut self) -> bool;
    fn may_carry_upstream_data(&mut self) -> bool;
}

/// A connection to the first of `upstreams` that accepts (the pool's round-robin order, so a
/// dead upstream costs one attempt, as for proxied requests).
pub async fn connect(upstreams: &[std::net::SocketAddr]) -> Result<TcpStream> {
    let mut last = upstream_error("no healthy upstream");
    for addr in upstreams {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(conn)) => {
                let _ = conn.set_nodelay(true);
                return Ok(conn);
            }
            Ok(Err(e)) => last = upstream_error(&format!("cannot connect to {addr}: {e}")),
            Err(_) => last = upstream_error(&format!("connecting to {addr} timed out")),
        }
    }
    Err(last)
}

/// Sends `request` on `conn` and carries the exchange until it ends. `Err` only before any
/// answer was written (the caller answers 502). `decorate` adds the gateway's own response
/// headers (a renewed token).
pub async fn serve(
    session: &mut Session,
    mut conn: TcpStream,
    request: &RequestHeader,
    decorate: &(dyn Fn(&mut ResponseHeader) -> Result<()> + Sync),
    watch: &mut dyn Watch,
) -> Result<()> {
    conn.write_all(&request_head(request))
        .await
        .map_err(|e| upstream_error(&format!("cannot send the upgrade request: {e}")))?;
    let (head, rest) = tokio::time::timeout(ANSWER_TIMEOUT, read_head(&mut conn))
        .await
        .map_err(|_| upstream_error("the upstream did not answer the upgrade"))??;
    let mut response = parse_head(&head)?;
    decorate(&mut response)?;
    if response.status.as_u16() != 101 {
        return pass_refusal(session, conn, response, rest).await;
    }
    session
        .write_response_header(Box::new(response), false)
        .await?;
    if !rest.is_empty() && watch.may_carry_upstream_data() {
        session.write_response_body(Some(rest), false).await?;
    }
    // Pingora would end a tunnel whose client has been silent for a minute (its body read
    // timeout); a WebSocket may idle for as long as both ends like.
    session.set_read_timeout(None);
    carry(session, conn, watch).await;
    Ok(())
}

/// Both directions until either side closes, the session ends, or a write fails.
async fn carry(session: &mut Session, mut conn: TcpStream, watch: &mut dyn Watch) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            from_client = session.read_request_body() => {
                let Ok(Some(data)) = from_client else { return };
                if !watch.may_carry_client_data().await || conn.write_all(&data).await.is_err() {
                    return;
                }
            }
            from_upstream = conn.read(&mut buf) => {
                let n = match from_upstream {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if !watch.may_carry_upstream_data() {
                    return;
                }
                let data = Bytes::copy_from_slice(&buf[..n]);
                if session.write_response_body(Some(data), false).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The upstream answered the upgrade with something else (400, 403, ...): passed on, with a body
/// as long as its `Content-Length` says (an answer without one is passed on without its body).
async fn pass_refusal(
    session: &mut Session,
    mut conn: TcpStream,
    mut response: ResponseHeader,
    rest: Bytes,
) -> Result<()> {
    let length = response
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n <= MAX_HEAD);
    let mut body = rest.to_vec();
    if let Some(length) = length {
        let mut buf = [0u8; 4096];
        while body.len() < length {
            match tokio::time::timeout(ANSWER_TIMEOUT, conn.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    }
    body.truncate(length.unwrap_or(0));
    response.remove_header(&http::header::TRANSFER_ENCODING);
    response.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let empty = body.is_empty();
    session
        .write_response_header(Box::new(response), empty)
        .await?;
    if !empty {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

fn upstream_error(why: &str) -> Box<Error> {
    Error::explain(ErrorType::ConnectError, why.to_string()).into_up()
}

/// `METHOD target HTTP/1.1`, then every header as prepared for the upstream.
fn request_head(req: &RequestHeader) -> Vec<u8> {
    let target = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method).into_bytes();
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The response head (without its blank line) and whatever was read past it.
async fn read_head(conn: &mut TcpStream) -> Result<(Vec<u8>, Bytes)> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn
            .read(&mut buf)
            .await
            .map_err(|e| upstream_error(&format!("reading the upstream's answer: {e}")))?;
        if n == 0 {
            return Err(upstream_error("the upstream closed without answering"));
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = Bytes::copy_from_slice(&seen[end + 4..]);
            seen.truncate(end);
            return Ok((seen, rest));
        }
        if seen.len() > MAX_HEAD {
            return Err(upstream_error("the upstream's answer head is too large"));
        }
    }
}

/// A response head (status line and header lines, without the empty line) as Pingora's
/// `ResponseHeader`; anything that is not strictly HTTP/1.x is an error, never a panic (fuzzed:
/// `fuzz/fuzz_targets/tunnel_head.rs`).
pub fn parse_head(head: &[u8]) -> Result<ResponseHeader> {
    let bad = || upstream_error("the upstream's answer is not HTTP/1.1");
    let text = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().ok_or_else(bad)?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next(), parts.next());
    if !matches!(version, Some("HTTP/1.1" | "HTTP/1.0")) {
        return Err(bad());
    }
    let code: u16 = code.and_then(|c| c.parse().ok()).ok_or_else(bad)?;
    let mut response = ResponseHeader::build(code, None)?;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        response.append_header(name.trim().to_string(), value.trim())?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_are_read_strictly() {
        let ok = parse_head(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade",
        )
        .unwrap();
        assert_eq!(ok.status.as_u16(), 101);
        assert_eq!(ok.headers["upgrade"], "websocket");
        for bad in [
            &b"HTTP/2 101 x"[..],
            b"HTTP/1.1 abc x",
            b"HTTP/1.1 101 x\r\nno colon here",
            b"\xff\xfe",
            b"",
        ] {
            assert!(parse_head(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_request_head_carries_the_prepared_headers() {
        let mut req = RequestHeader::build("GET", b"/ws?x=1", None).unwrap();
        req.insert_header("Upgrade", "websocket").unwrap();
        let head = String::from_utf8(request_head(&req)).unwrap();
        assert_eq!(head, "GET /ws?x=1 HTTP/1.1\r\nupgrade: websocket\r\n\r\n");
    }
}
