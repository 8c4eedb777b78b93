//! OpenID Connect: hubgate as a relying party of the providers in `[[hub.providers]]`.
//!
//! - [`discovery`]: a provider's endpoints and signing keys, learnt in the background and kept.
//! - [`tokens`]: verification of what a provider signs — ID tokens and logout tokens.
//! - [`claims`]: from verified claims to the person a session is for, and who may sign in.
//! - [`flow`]: one sign-in's state (state, nonce, PKCE verifier) carried through the browser.
//!
//! The hub's endpoints under `/oidc/<id>/` (`hub/oidc.rs`) put these together.

pub mod claims;
pub mod discovery;
pub mod flow;
mod recheck;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::ProviderConfig;
pub use discovery::{HttpProblem, Metadata, Provider};
pub use recheck::Recheck;

/// Every configured provider, by id.
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    pub fn new(configs: &[ProviderConfig]) -> Result<Self, String> {
        let http = discovery::http_client()?;
        Ok(Providers {
            list: configs
                .iter()
                .map(|c| Arc::new(Provider::new(c.clone(), http.clone())))
                .collect(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.config.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn discovery_service(self: &Arc<Self>) -> Discovery {
        Discovery {
            providers: self.clone(),
        }
    }
}

/// Discovers every provider at start and, for one that cannot be reached, again and again until
/// it answers: the gateway serves meanwhile, and that provider's button says it is unavailable.
pub struct Discovery {
    providers: Arc<Providers>,
}

#[async_trait]
impl BackgroundService for Discovery {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut backoff = Duration::from_millis(500);
        loop {
            let mut pending = 0;
            for provider in self.providers.iter().filter(|p| p.metadata().is_none()) {
                match provider.discover().await {
                    Ok(()) => {
                        tracing::info!(provider = %provider.config.id, "OpenID provider discovered")
                    }
                    Err(e) => {
                        pending += 1;
                        tracing::warn!(provider = %provider.config.id, error = %e, retry_in = ?backoff, "OpenID provider discovery failed");
                    }
                }
            }
            if pending == 0 {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}
