//! `server.header_read_timeout`: a request header must be complete within this long of its first
//! byte (of the connection's opening, for a connection's first request), or the connection closes.
//!
//! Pingora times each read of a request header separately (60 s), so a client that trickles a
//! byte every few seconds — slowloris — could hold a connection, and its file descriptor, for ever;
//! five hundred such clients would hold five hundred. No `ProxyHttp` callback runs before the
//! header is complete, so the deadline lives one layer down, on the connection: [`HeaderDeadlines`]
//! wraps the proxy's `ServerApp` and gives every HTTP/1 connection a [`DeadlineStream`], which
//! watches what it reads for the empty line that ends a header, and what is written back for the
//! start of the answer (after which the next bytes read begin the next request's header).
//!
//! The stream never looks inside a body and stops watching for good once a `101 Switching
//! Protocols` has gone out: a WebSocket may be silent as long as it likes. HTTP/2 (chosen by
//! ALPN) frames its own headers and is passed through untouched.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The proxy's `ServerApp`, with a header deadline on every HTTP/1 connection it is handed.
pub struct HeaderDeadlines<A> {
    inner: Arc<A>,
    timeout: Duration,
}

impl<A> HeaderDeadlines<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        HeaderDeadlines {
            inner: Arc::new(inner),
            timeout,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for HeaderDeadlines<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream: Stream = if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            stream
        } else {
            Box::new(DeadlineStream::new(stream, self.timeout))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// Where a connection is in its exchange, as far as header deadlines go.
#[derive(Debug)]
enum Phase {
    /// Reading a request header, which must be complete by `deadline`.
    Header { deadline: Instant, end: HeaderEnd },
    /// The header is complete; what is read now is its body, or nothing until the answer.
    AfterHeader,
    /// The answer has begun; the next byte read begins the next request (Pingora times the idle
    /// keep-alive wait itself).
    Answered,
    /// Upgraded (`101`): a tunnel, never timed here.
    Tunnel,
}

/// Finds the empty line that ends a request header, across reads. Lines may end in CRLF or a bare
/// LF (as httparse accepts); empty lines before the request line do not count (RFC 9112 §2.2).
#[derive(Debug, Clone, Copy)]
pub struct HeaderEnd {
    /// The current line has had nothing but `\r` so far.
    line_blank: bool,
    /// Something other than line ends has been read: the request line has begun.
    started: bool,
}

impl Default for HeaderEnd {
    fn default() -> Self {
        HeaderEnd::new()
    }
}

impl HeaderEnd {
    pub fn new() -> Self {
        HeaderEnd {
            line_blank: true,
            started: false,
        }
    }

    /// Whether `bytes` (the next ones read) complete the header.
    pub fn complete_in(&mut self, bytes: &[u8]) -> bool {
        let mut line_start = 0;
        for newline in memchr::memchr_iter(b'\n', bytes) {
            let line = &bytes[line_start..newline];
            let blank = self.line_blank && line.iter().all(|b| *b == b'\r');
            if blank && self.started {
                return true;
            }
            if !blank {
                self.started = true;
            }
            self.line_blank = true;
            line_start = newline + 1;
        }
        let tail = &bytes[line_start..];
        if tail.iter().any(|b| *b != b'\r') {
            self.line_blank = false;
            self.started = true;
        }
        false
    }
}

/// A downstream connection that closes itself when a request header takes longer than allowed.
#[derive(Debug)]
pub struct DeadlineStream {
    inner: Stream,
    timeout: Duration,
    phase: Phase,
    /// Armed only while a header read waits: a complete header in one read costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineStream {
    pub fn new(inner: Stream, timeout: Duration) -> Self {
        DeadlineStream {
            inner,
            timeout,
            phase: Phase::Header {
                deadline: Instant::now() + timeout,
                end: HeaderEnd::new(),
            },
            timer: None,
        }
    }

    /// Follows the header through bytes just read.
    fn saw_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if matches!(self.phase, Phase::Answered) {
            self.phase = Phase::Header {
                deadline: Instant::now() + self.timeout,
                end: HeaderEnd::new(),
            };
        }
        if let Phase::Header { end, .. } = &mut self.phase {
            if end.complete_in(bytes) {
                self.phase = Phase::AfterHeader;
                self.timer = None;
            }
        }
    }

    /// Follows the answer through the first bytes written after a header.
    fn saw_write(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::AfterHeader | Phase::Header { .. }) || bytes.is_empty() {
            return;
        }
        self.timer = None;
        self.phase = match status_of(bytes) {
            Some(101) => Phase::Tunnel,
            // `100 Continue` and other interim answers: the request (its body) goes on.
            Some(100..=199) => Phase::AfterHeader,
            _ => Phase::Answered,
        };
    }

    /// `Ready(Err)` once a waiting header read has passed its deadline.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Phase::Header { deadline, .. } = self.phase else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request header not complete within server.header_read_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The status code of an HTTP/1 status line at the start of `bytes`, if it is one.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

impl AsyncRead for DeadlineStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if !matches!(this.phase, Phase::Tunnel | Phase::AfterHeader) {
                    this.saw_read(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx),
            other => other,
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.saw_write(&buf[..n]);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                this.saw_write(&first[..n.min(first.len())]);
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(chunks: &[&[u8]]) -> Option<usize> {
        let mut end = HeaderEnd::new();
        chunks.iter().position(|c| end.complete_in(c))
    }

    #[test]
    fn a_header_ends_at_its_first_empty_line_whatever_the_line_endings() {
        assert_eq!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]), Some(0));
        assert_eq!(ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]), Some(0));
        assert_eq!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\n"]), Some(0));
        assert_eq!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n"]), None);
    }

    #[test]
    fn the_empty_line_is_found_when_split_across_reads() {
        assert_eq!(
            ends(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n\r", b"\n"]),
            Some(2)
        );
        assert_eq!(ends(&[b"G", b"ET / HTTP/1.1\r\n", b"\r\n"]), Some(2));
        assert_eq!(
            ends(&[b"GET / HTTP/1.1\r\nX: y", b"\r\n", b"\r", b"\n"]),
            Some(3)
        );
    }

    #[test]
    fn empty_lines_before_the_request_line_do_not_end_it() {
        assert_eq!(ends(&[b"\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"]), Some(1));
        assert_eq!(ends(&[b"\r\n", b"\r\n"]), None);
    }

    #[test]
    fn status_lines_are_read_from_the_first_bytes_of_an_answer() {
        assert_eq!(
            status_of(b"HTTP/1.1 101 Switching Protocols\r\n"),
            Some(101)
        );
        assert_eq!(status_of(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"HTTP/1.1 1"), None);
        assert_eq!(status_of(b"{\"json\": 1}"), None);
    }
}
