//! The experiment of issue 17: forwarding on Pingora's lower layers instead of `pingora-proxy`
//! (`h1_forward LISTEN UPSTREAM`). An `HttpServerApp` that takes pingora-core's HTTP/1 server
//! session, keeps one upstream connection (pingora-core's HTTP/1 client session) per downstream
//! connection, and forwards bodiless GET/HEAD requests over it; anything else gets a 501. No pool,
//! no peer, no module context, no retry or cache state machine: what is left is the floor of
//! Pingora's own HTTP/1 parsing, header maps and I/O. `bench/run` measures it as `pingora-h1`
//! beside `pingora-bare` (bench/bare_pingora.rs) and nginx.

#[path = "forwarder.rs"]
mod forwarder;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ReusedHttpStream};
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Forward {
    upstream: SocketAddr,
}

/// Why one exchange ended the connection instead of leaving it open for the next request.
type Closed = Box<pingora::Error>;

impl Forward {
    async fn connect(&self) -> pingora::Result<UpstreamSession> {
        let tcp = tokio::net::TcpStream::connect(self.upstream)
            .await
            .map_err(|e| {
                pingora::Error::because(pingora::ErrorType::ConnectError, "upstream", e)
            })?;
        tcp.set_nodelay(true)
            .map_err(|e| pingora::Error::because(pingora::ErrorType::ConnectError, "nodelay", e))?;
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(tcp));
        Ok(UpstreamSession::new(stream))
    }

    /// One request/response over `upstream`; gives the upstream connection back when it may carry
    /// the next request.
    async fn exchange(
        &self,
        downstream: &mut ServerSession,
        upstream: Option<UpstreamSession>,
    ) -> Result<Option<UpstreamSession>, Closed> {
        let req = downstream.req_header();
        let bodiless = matches!(req.method, http::Method::GET | http::Method::HEAD);
        if !bodiless || !downstream.is_body_empty() {
            downstream.respond_error(501).await?;
            return Ok(None);
        }
        let request: Box<RequestHeader> = Box::new(downstream.req_header().clone());
        let mut upstream = match upstream {
            Some(session) => session,
            None => self.connect().await?,
        };
        upstream.write_request_header(request).await?;
        upstream.read_response().await?;
        let response = upstream
            .resp_header()
            .cloned()
            .map(Box::new)
            .ok_or_else(|| {
                pingora::Error::explain(pingora::ErrorType::InvalidHTTPHeader, "no response header")
            })?;
        downstream.write_response_header(response).await?;
        while let Some(chunk) = upstream.read_body_bytes().await? {
            let end = upstream.is_body_done();
            downstream.write_response_body(chunk, end).await?;
        }
        upstream.respect_keepalive();
        Ok(upstream.reuse().await.map(UpstreamSession::new))
    }
}

#[async_trait]
impl HttpServerApp for Forward {
    /// Serves every request of one downstream connection here (instead of handing the stream back
    /// to Pingora's reuse loop), so the upstream connection simply lives on this task's stack.
    async fn process_new_http(
        self: &Arc<Self>,
        mut downstream: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let mut upstream = None;
        loop {
            match downstream.read_request().await {
                Ok(true) => {}
                _ => return None,
            }
            upstream = match self.exchange(&mut downstream, upstream.take()).await {
                Ok(upstream) => upstream,
                Err(_) => return None,
            };
            let stream = match downstream.finish().await {
                Ok(Some(reusable)) => reusable.into_parts().0,
                _ => return None,
            };
            downstream = ServerSession::new_http1(stream);
            downstream.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        }
    }
}

fn main() {
    let (listen, upstream) = forwarder::args("h1_forward");
    let mut server = forwarder::server();
    let mut service = Service::new("h1 forward".to_string(), Forward { upstream });
    service.add_tcp(&listen);
    server.add_service(service);
    server.run_forever();
}
