//! The floor under hubgate: a Pingora 0.9 proxy that does nothing but forward
//! (`bare_pingora LISTEN UPSTREAM`), built with the same dependencies, allocator and server settings
//! as hubgate. `bench/run` measures it as `pingora-bare`, so the table separates what Pingora itself
//! costs from what hubgate adds on top.

#[path = "forwarder.rs"]
mod forwarder;

use async_trait::async_trait;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Forward {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Forward {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let (listen, upstream) = forwarder::args("bare_pingora");
    let mut server = forwarder::server();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Forward { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
