//! The proxy Pingora runs: each request takes the gateway that is current when it arrives and
//! keeps it to the end. A reload swaps in a new gateway for the requests after it; a request in
//! flight, or a WebSocket open for hours, finishes on the one it started with.
//!
//! Every callback [`Gateway`] overrides is handed on here; one it adds must be added here too.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::modules::http::HttpModules;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, Result};

use super::Live;
use crate::proxy::{Gateway, RequestCtx};

/// Cloned once: the fast path runs the same callbacks as the proxy it hands other requests to.
#[derive(Clone)]
pub struct LiveProxy {
    live: Arc<Live>,
}

impl LiveProxy {
    pub fn new(live: Arc<Live>) -> Self {
        LiveProxy { live }
    }
}

/// A request's gateway and the gateway's own per-request state.
pub struct LiveCtx {
    gateway: Arc<Gateway>,
    inner: RequestCtx,
}

#[async_trait]
impl ProxyHttp for LiveProxy {
    type CTX = LiveCtx;

    /// Modules are set up once, when Pingora builds the proxy: the gateway of the day has none
    /// (see `Gateway::init_downstream_modules`), so neither has this.
    fn init_downstream_modules(&self, _modules: &mut HttpModules) {}

    fn new_ctx(&self) -> LiveCtx {
        let gateway = self.live.current().gateway.clone();
        let inner = gateway.new_ctx();
        LiveCtx { gateway, inner }
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut LiveCtx) -> Result<()> {
        ctx.gateway
            .early_request_filter(session, &mut ctx.inner)
            .await
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut LiveCtx) -> Result<bool> {
        ctx.gateway.request_filter(session, &mut ctx.inner).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut LiveCtx,
    ) -> Result<Box<HttpPeer>> {
        ctx.gateway.upstream_peer(session, &mut ctx.inner).await
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut LiveCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        ctx.gateway
            .fail_to_connect(session, peer, &mut ctx.inner, e)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &mut LiveCtx,
    ) -> Result<()> {
        ctx.gateway
            .upstream_request_filter(session, upstream, &mut ctx.inner)
            .await
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut LiveCtx,
    ) -> Result<()> {
        ctx.gateway
            .request_body_filter(session, body, end, &mut ctx.inner)
            .await
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut LiveCtx,
    ) -> Result<Option<std::time::Duration>> {
        ctx.gateway
            .response_body_filter(session, body, end, &mut ctx.inner)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut LiveCtx,
    ) -> Result<()> {
        ctx.gateway
            .response_filter(session, response, &mut ctx.inner)
            .await
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut LiveCtx,
    ) -> FailToProxy {
        ctx.gateway.fail_to_proxy(session, e, &mut ctx.inner).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut LiveCtx) {
        ctx.gateway.logging(session, e, &mut ctx.inner).await
    }
}
