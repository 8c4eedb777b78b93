//! The fast path for plain requests (issue 17; the measurements are in bench/ANALYSIS.md).
//!
//! Most requests a gateway sees are bodiless GETs and HEADs on HTTP/1.1 keep-alive connections.
//! For those, pingora-proxy's general machinery (a boxed request future of about 13 kB per
//! request, two halves joined by a channel of tasks, the connection pool's lock and idle watch on
//! every release) costs more than the forwarding itself: forwarding on pingora-core's HTTP/1
//! sessions directly ran at 0.97 × nginx where pingora-proxy ran at 0.72 ×.
//!
//! [`FastPath`] is the listener's `ServerApp`. It reads each HTTP/1 request head itself and looks
//! at it ([`plain_request`]):
//! - a plain request is served here. It runs the proxy's own `ProxyHttp` callbacks, so routing,
//!   the gate, identity headers, renewal, error pages and the access log are the same code. It is
//!   forwarded over an upstream connection that the downstream connection holds from one request
//!   to the next;
//! - anything else (a body, an upgrade, HTTP/1.0, hop-by-hop headers, a head too large or
//!   malformed) is handed, with the bytes already read, to pingora-proxy, which answers it exactly
//!   as it would without this module. The connection comes back here for its next request.
//!
//! HTTP/2 connections go to pingora-proxy whole.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use http::{header, Version};
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::connectors::http::v1::Connector;
use pingora::connectors::ConnectorOptions;
use pingora::http::ResponseHeader;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::{HttpProxy, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::upstreams::peer::{HttpPeer, Peer};
use pingora::{Error, ErrorSource, ErrorType, Result};
use prometheus::IntCounter;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// How long a keep-alive connection may wait for its next request (pingora-proxy's figure).
const KEEPALIVE_SECS: u64 = 60;
/// A head still incomplete at this size is left to pingora-proxy, which reads up to its own limit.
const MAX_PLAIN_HEAD: usize = 16 * 1024;
/// Header lines a plain request may have; a request with more goes to pingora-proxy.
const MAX_PLAIN_HEADERS: usize = 64;
/// Headers that make a request not plain: a body, an upgrade, or hop-by-hop fields that
/// pingora-proxy knows how to strip or refuse.
const NOT_PLAIN: [&str; 11] = [
    "content-length",
    "transfer-encoding",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "http2-settings",
];
/// How long a quiet client connection keeps its upstream connection before the pool takes it back:
/// long enough for back-to-back requests and a page's burst of asset requests, short enough that
/// the connections held to an app follow the clients active in the last tenth of a second, not
/// every open one (`bench/connections` opens 2,000 clients one after another: held for a second,
/// hundreds of upstream connections were open at once).
const UPSTREAM_HOLD: Duration = Duration::from_millis(100);
/// Attempts at an upstream for one request (pingora-proxy's default `max_retries`).
const MAX_ATTEMPTS: usize = 16;

/// The listener's app: plain requests served here, everything else by `proxy`.
pub struct FastPath<SV> {
    proxy: Arc<HttpProxy<SV>>,
    /// The same callbacks `proxy` runs.
    callbacks: SV,
    connector: Connector,
    /// Off (`server.fast_path = false`): every connection goes to `proxy` whole.
    enabled: bool,
    counts: PathCounts,
}

/// Requests served on each path (`hubgate_http1_requests_total{path}`).
pub struct PathCounts {
    pub fast: IntCounter,
    pub general: IntCounter,
}

impl<SV: ProxyHttp + Clone> FastPath<SV> {
    pub fn new(conf: &Arc<ServerConf>, callbacks: SV, enabled: bool, counts: PathCounts) -> Self {
        FastPath {
            proxy: Arc::new(pingora::proxy::http_proxy(conf, callbacks.clone())),
            callbacks,
            connector: Connector::new(Some(ConnectorOptions::from_server_conf(conf))),
            enabled,
            counts,
        }
    }
}

/// What [`read_head`] found.
enum Head {
    Plain,
    /// For pingora-proxy: not plain, or not a request it could parse.
    Other,
    /// Closed, quiet past the keep-alive time, or the server is stopping.
    Gone,
}

#[async_trait]
impl<SV> ServerApp for FastPath<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if !self.enabled || matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.proxy.process_new(stream, shutdown).await;
        }
        let mut upstream = HeldUpstream::default();
        let mut head = BytesMut::new();
        loop {
            let read = read_head(
                &mut stream,
                &mut head,
                shutdown,
                &mut upstream,
                &self.connector,
            );
            let next = match read.await {
                Head::Plain => {
                    self.counts.fast.inc();
                    self.serve(stream, head, &mut upstream, shutdown).await
                }
                Head::Other => {
                    self.counts.general.inc();
                    self.hand_off(stream, head, shutdown).await
                }
                Head::Gone => break,
            };
            let Some((next_stream, read_ahead)) = next else {
                break;
            };
            stream = next_stream;
            head = read_ahead;
        }
        upstream.release(&self.connector).await;
        None
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await
    }
}

impl<SV> FastPath<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    /// Serves the plain request whose head is in `head`; gives the connection back, with any bytes
    /// read past the request, when it may carry another.
    async fn serve(
        &self,
        stream: Stream,
        head: BytesMut,
        upstream: &mut HeldUpstream,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, BytesMut)> {
        let mut session = Session::new_h1(stream);
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
        session.downstream_session.set_pipelined_prefix(head);
        match session.downstream_session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(_) => {
                // httparse took it, Pingora's stricter reading did not: Pingora's answer.
                let _ = session.respond_error(400).await;
                return None;
            }
        }
        let mut ctx = self.callbacks.new_ctx();
        let outcome = self.answer(&mut session, &mut ctx, upstream).await;
        let reusable = match &outcome {
            Ok(()) => true,
            Err(e) => {
                self.callbacks
                    .fail_to_proxy(&mut session, e, &mut ctx)
                    .await
                    .can_reuse_downstream
            }
        };
        self.callbacks
            .logging(&mut session, outcome.as_ref().err().map(|e| &**e), &mut ctx)
            .await;
        if !reusable {
            session.downstream_session.shutdown().await;
            return None;
        }
        let reusable = session.downstream_session.finish().await.ok()??;
        let (stream, read_ahead) = reusable.into_parts();
        Some((stream, read_ahead.unwrap_or_default()))
    }

    /// The request's answer: from the callbacks themselves (the hub, a refusal, a redirect), or
    /// the upstream's, on the held connection or a new one.
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut SV::CTX,
        upstream: &mut HeldUpstream,
    ) -> Result<()> {
        self.callbacks.early_request_filter(session, ctx).await?;
        if self.callbacks.request_filter(session, ctx).await? {
            return Ok(());
        }
        let mut stale_retried = false;
        for _ in 0..MAX_ATTEMPTS {
            let peer = self.callbacks.upstream_peer(session, ctx).await?;
            let (mut connection, reused) = match upstream.take_for(&peer, &self.connector).await {
                Some(connection) => (connection, true),
                None => match self.connector.get_http_session(&*peer).await {
                    Ok(connected) => connected,
                    Err(e) => {
                        let e = self
                            .callbacks
                            .fail_to_connect(session, &peer, ctx, e.into_up());
                        if e.retry() {
                            continue;
                        }
                        return Err(e);
                    }
                },
            };
            match self.forward(session, ctx, &mut connection).await {
                Ok(()) => {
                    upstream.keep(peer, connection);
                    return Ok(());
                }
                // A kept-alive upstream connection may have been closed while it waited: a
                // bodiless GET or HEAD is safe to send once more, on a new connection.
                Err(e)
                    if reused
                        && !stale_retried
                        && e.esource() == &ErrorSource::Upstream
                        && session.response_written().is_none() =>
                {
                    stale_retried = true;
                }
                Err(e) => return Err(e),
            }
        }
        Error::e_explain(ErrorType::HTTPStatus(502), "no upstream took the request")
    }

    /// Sends the request to `upstream` and its response to the client, through the callbacks
    /// that shape each (as pingora-proxy's HTTP/1 path does for a bodiless request).
    async fn forward(
        &self,
        session: &mut Session,
        ctx: &mut SV::CTX,
        upstream: &mut UpstreamSession,
    ) -> Result<()> {
        let mut request = session.req_header().clone();
        // The one hop-by-hop field a plain request may carry (`keep-alive` or `close`).
        request.remove_header(&header::CONNECTION);
        self.callbacks
            .upstream_request_filter(session, &mut request, ctx)
            .await?;
        upstream
            .write_request_header(Box::new(request))
            .await
            .map_err(|e| e.into_up())?;
        let mut response = final_response(upstream).await?;
        self.callbacks
            .upstream_response_filter(session, &mut response, ctx)
            .await?;
        let mut done = upstream.is_body_done();
        if !done && response.headers.get(header::CONTENT_LENGTH).is_none() {
            chunk_close_delimited(&mut response)?;
        }
        self.callbacks
            .response_filter(session, &mut response, ctx)
            .await?;
        session.write_response_header(response, done).await?;
        while !done {
            let mut body = upstream.read_body_bytes().await.map_err(|e| e.into_up())?;
            done = body.is_none() || upstream.is_body_done();
            self.callbacks
                .response_body_filter(session, &mut body, done, ctx)?;
            session.write_response_body(body, done).await?;
        }
        Ok(())
    }

    /// Gives one request, its head already read into `head`, to pingora-proxy; and the connection
    /// back when it may carry another.
    async fn hand_off(
        &self,
        stream: Stream,
        head: BytesMut,
        shutdown: &ShutdownWatch,
    ) -> Option<(Stream, BytesMut)> {
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE_SECS));
        session.set_pipelined_prefix(head);
        let (stream, _settings) = self
            .proxy
            .process_new_http(session, shutdown)
            .await?
            .consume();
        // The settings carry nothing hubgate sets: pipelining is off (Pingora's default), so no
        // bytes read past the request come back, and there is no limit on requests per connection.
        Some((stream, BytesMut::new()))
    }
}

/// Reads until `buf` holds a complete request head, and says whose it is. A client quiet for
/// [`UPSTREAM_HOLD`] gives its upstream connection back to the pool: only busy connections hold
/// one, so idle browsers do not each keep a connection to the app open.
async fn read_head(
    stream: &mut Stream,
    buf: &mut BytesMut,
    shutdown: &ShutdownWatch,
    upstream: &mut HeldUpstream,
    pool: &Connector,
) -> Head {
    let mut shutdown = shutdown.clone();
    let started = Instant::now();
    let keepalive = Duration::from_secs(KEEPALIVE_SECS);
    let quiet = tokio::time::sleep(if upstream.is_held() {
        UPSTREAM_HOLD
    } else {
        keepalive
    });
    tokio::pin!(quiet);
    loop {
        if !buf.is_empty() {
            match classify(buf) {
                Some(true) => return Head::Plain,
                Some(false) => return Head::Other,
                None if buf.len() >= MAX_PLAIN_HEAD => return Head::Other,
                None => {}
            }
        } else if *shutdown.borrow() {
            return Head::Gone;
        }
        buf.reserve(4096);
        let waiting = buf.is_empty();
        tokio::select! {
            biased;
            read = stream.read_buf(buf) => match read {
                Ok(n) if n > 0 => {}
                _ => return Head::Gone,
            },
            () = &mut quiet => {
                if !upstream.is_held() {
                    return Head::Gone;
                }
                upstream.release(pool).await;
                quiet.as_mut().reset(started + keepalive);
            }
            // Between requests a stop closes the connection; within one, the head is read first.
            _ = shutdown.changed(), if waiting => return Head::Gone,
        }
    }
}

/// `Some(plain)` for a complete head, `None` while it is incomplete. A head httparse refuses is
/// not plain: pingora-proxy gives the answer it always gives.
fn classify(buf: &[u8]) -> Option<bool> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_PLAIN_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => Some(plain_request(&request)),
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(false),
    }
}

/// A request this module serves: HTTP/1.1, GET or HEAD, an origin-form target, one plain `Host`,
/// and nothing that would give it a body, upgrade the connection or need hop-by-hop handling.
pub fn plain_request(request: &httparse::Request) -> bool {
    if request.version != Some(1)
        || !matches!(request.method, Some("GET" | "HEAD"))
        || !request.path.is_some_and(|p| p.starts_with('/'))
    {
        return false;
    }
    let mut hosts = 0;
    for field in request.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !plain_host(field.value) {
                return false;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let value = field.value;
            if !value.eq_ignore_ascii_case(b"keep-alive") && !value.eq_ignore_ascii_case(b"close") {
                return false;
            }
        } else if NOT_PLAIN.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            return false;
        }
    }
    hosts == 1
}

/// A host name or address with an optional port, and nothing pingora-proxy would refuse or
/// rewrite (user info, spaces, percent signs).
fn plain_host(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(b))
}

/// The response after any informational (1xx) ones, which are not passed on. A `101` to a request
/// that asked for no upgrade is the upstream's error.
async fn final_response(upstream: &mut UpstreamSession) -> Result<Box<ResponseHeader>> {
    loop {
        upstream.read_response().await.map_err(|e| e.into_up())?;
        let response = upstream
            .resp_header()
            .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "no response header"))
            .map_err(|e| e.into_up())?;
        match response.status.as_u16() {
            101 => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "101 to a request without an upgrade",
                )
                .into_up())
            }
            100..=199 => continue,
            _ => return Ok(Box::new(response.clone())),
        }
    }
}

/// A response that ends when the upstream closes goes on as chunked, so the client's connection
/// can stay open (as pingora-proxy does).
fn chunk_close_delimited(response: &mut ResponseHeader) -> Result<()> {
    if response.headers.get(header::TRANSFER_ENCODING).is_none() {
        response.set_version(Version::HTTP_11);
        response.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}

/// The upstream connection a downstream connection keeps between its requests, with the peer it
/// was made for.
#[derive(Default)]
struct HeldUpstream {
    held: Option<(Box<HttpPeer>, UpstreamSession)>,
}

impl HeldUpstream {
    /// The held connection, ready for a new request, if it goes to `peer`; one to another peer
    /// goes to the pool.
    async fn take_for(&mut self, peer: &HttpPeer, pool: &Connector) -> Option<UpstreamSession> {
        let (held_peer, session) = self.held.take()?;
        if held_peer.reuse_hash() != peer.reuse_hash() {
            pool.release_http_session(session, &*held_peer, held_peer.idle_timeout())
                .await;
            return None;
        }
        let stream = session.reuse().await?;
        Some(UpstreamSession::new_with_options(stream, peer))
    }

    /// Keeps `session`, its response complete, for the connection's next request.
    fn keep(&mut self, peer: Box<HttpPeer>, mut session: UpstreamSession) {
        session.respect_keepalive();
        if session.will_keepalive() {
            self.held = Some((peer, session));
        }
    }

    fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// When the downstream connection goes quiet or ends, the held one goes to the pool.
    async fn release(&mut self, pool: &Connector) {
        if let Some((peer, session)) = self.held.take() {
            pool.release_http_session(session, &*peer, peer.idle_timeout())
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(head: &str) -> Option<bool> {
        classify(head.as_bytes())
    }

    #[test]
    fn plain_gets_and_heads_only() {
        assert_eq!(plain("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), Some(true));
        assert_eq!(
            plain("HEAD /a HTTP/1.1\r\nHost: x:8000\r\nConnection: close\r\n\r\n"),
            Some(true)
        );
        assert_eq!(plain("GET /a HTTP/1.1\r\nHost: x\r\n"), None);
        for other in [
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "GET /a HTTP/1.0\r\nHost: x\r\n\r\n",
            "GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /a HTTP/1.1\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: u@x\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nConnection: x-secret\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n",
            "GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET /a HTTP/1.1\r\nHo st: x\r\n\r\n",
        ] {
            assert_eq!(plain(other), Some(false), "{other:?}");
        }
    }
}
