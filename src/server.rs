//! Wiring: builds every component from the config and runs them as Pingora services — the proxy,
//! the metrics endpoint, upstream health checks and the session sweeper — until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::apps::http_app::ServeHttp;
use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::LoadBalancer;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::ListenerConfig;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::auth::cache::VerifyCache;
use crate::auth::cookies::CookieNames;
use crate::auth::tokens::KeyRing;
use crate::auth::verify::Verifier;
use crate::config::{Config, OnStoreError, StoreKind};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::oidc::{Providers, Recheck};
use crate::proxy::in_flight::InFlight;
use crate::proxy::routes::{AppRoute, Router};
use crate::proxy::Gateway;
use crate::session::{MemoryStore, RedisStore, SessionStore, Sessions};
use crate::time::Timestamp;

/// Runs the gateway until a signal stops it. Returns an error only for problems found while
/// starting (a port in use, an upstream name that does not resolve).
pub fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
    server.bootstrap();

    let app_names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
    let metrics = Arc::new(Metrics::new(&app_names));
    let keys = Arc::new(KeyRing::from_config(&config.tokens));
    let cache = Arc::new(VerifyCache::new(
        config.session.cache_ttl,
        config.session.cache_capacity,
    ));
    let store: Arc<dyn SessionStore> = match config.session.store {
        StoreKind::Memory => Arc::new(MemoryStore::default()),
        StoreKind::Redis => {
            let redis = Arc::new(RedisStore::new(&config.session)?);
            // Until the revocation channel is heard, this instance could miss a sign-out made
            // elsewhere: it uses no cached grant before then.
            cache.set_trusted(false);
            let listener = RevocationListener {
                store: redis.clone(),
                cache: cache.clone(),
                metrics: metrics.clone(),
                keep_cache_when_deaf: config.session.on_store_error == OnStoreError::AllowCached,
            };
            server.add_service(background_service("revocation listener", listener));
            redis
        }
    };
    let providers = Arc::new(Providers::new(&config.hub.providers)?);
    let mut sessions = Sessions::new(
        store.clone(),
        cache.clone(),
        metrics.clone(),
        config.session.idle_timeout,
    );
    if config
        .hub
        .providers
        .iter()
        .any(|p| p.recheck_interval.is_some())
    {
        sessions = sessions.with_provider_check(Arc::new(Recheck::new(providers.clone(), store)));
    }
    let sessions = Arc::new(sessions);

    let mut apps = Vec::new();
    for app in &config.apps {
        let mut pool = LoadBalancer::try_from_iter(app.upstreams.iter().map(String::as_str))
            .map_err(|e| format!("apps[{}].upstreams: {e}", app.name))?;
        pool.set_health_check(TcpHealthCheck::new());
        pool.health_check_frequency = Some(Duration::from_secs(2));
        let health = background_service(&format!("health check {}", app.name), pool);
        let upstreams = health.task();
        server.add_service(health);
        let mut activity_exempt = config.session.activity_exempt_paths.clone();
        activity_exempt.extend(app.activity_exempt_paths.iter().cloned());
        apps.push(Arc::new(AppRoute {
            config: app.clone(),
            upstreams,
            cookie_name: CookieNames::new(&config.cookies.prefix).app(&app.name),
            activity_exempt,
            metrics: metrics.app(&app.name),
            headers: crate::proxy::AppHeaders::new(app),
        }));
    }

    let provider_ids: Vec<&str> = config.hub.providers.iter().map(|p| p.id.as_str()).collect();
    metrics.precreate_providers(&provider_ids);
    if !providers.is_empty() {
        server.add_service(background_service(
            "OpenID provider discovery",
            providers.discovery_service(),
        ));
    }
    let hub = Hub::new(
        config.clone(),
        keys.clone(),
        sessions.clone(),
        metrics.clone(),
        providers,
    );
    let verifier = Verifier::new(&config, keys, cache, sessions.clone(), metrics.clone());
    let gateway = Gateway::new(
        &config,
        Router::new(&config, apps),
        hub,
        verifier,
        metrics.clone(),
    );
    let in_flight = gateway.in_flight.clone();
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "hubgate");
    proxy.add_listener(listener(&config)?);
    server.add_service(proxy);

    if let Some(addr) = config.server.metrics_listen {
        let mut endpoint = Service::new("metrics".to_string(), MetricsEndpoint(metrics.clone()));
        endpoint.add_tcp(&addr.to_string());
        server.add_service(endpoint);
    }
    server.add_service(background_service("session sweeper", Sweeper { sessions }));

    tracing::info!(listen = %config.server.listen, public_url = %config.server.public_url.origin, apps = config.apps.len(), "hubgate serving");
    server.run(RunArgs {
        shutdown_signal: Box::new(StopOnSignal {
            in_flight,
            grace: config.server.shutdown_grace,
        }),
    });
    tracing::info!("hubgate stopped");
    Ok(())
}

/// The gateway's listening endpoint: plain TCP, or TLS offering HTTP/2 and HTTP/1.1 by ALPN
/// (browsers then send a page's requests over one multiplexed connection; Pingora's default for a
/// TLS listener offers no ALPN, so every client fell back to HTTP/1.1).
fn listener(config: &Config) -> Result<ListenerConfig, String> {
    let endpoint = ListenerConfig::tcp(config.server.listen.to_string());
    let Some(tls) = &config.server.tls else {
        return Ok(endpoint);
    };
    let mut settings =
        TlsSettings::intermediate(&tls.cert.to_string_lossy(), &tls.key.to_string_lossy())
            .map_err(|e| format!("server.tls: {e}"))?;
    settings.enable_h2();
    Ok(endpoint.tls(settings))
}

/// Each of a service's `threads` runs its own single-threaded runtime and keeps the connections it
/// was handed (nginx's worker model) instead of Pingora's default work-stealing pool: no
/// cross-thread wake-ups per request. Measured side by side with `bench/run`'s setup, a bare Pingora
/// proxy and hubgate's public path both did 15–30 % more requests per second per core this way.
pub const WORK_STEALING: bool = false;

fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        work_stealing: WORK_STEALING,
        // Pingora would sleep its whole grace period (default 300 s) after a stop signal; the
        // signal watch below waits for in-flight requests instead, at most `shutdown_grace`.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: std::env::temp_dir()
            .join(format!("hubgate-upgrade-{}.sock", std::process::id()))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    }
}

/// SIGTERM and SIGINT both stop gracefully: in-flight requests may finish, for at most
/// `shutdown_grace`, then the listeners close and the process exits 0.
struct StopOnSignal {
    in_flight: InFlight,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for StopOnSignal {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for signals; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, stopping gracefully"),
            _ = int.recv() => tracing::info!("SIGINT received, stopping gracefully"),
        }
        let waiting = self.in_flight.count();
        if !self.in_flight.drained(self.grace).await {
            tracing::warn!(
                unfinished = self.in_flight.count(),
                "shutdown_grace ran out; stopping with requests in flight"
            );
        } else if waiting > 0 {
            tracing::info!(finished = waiting, "in-flight requests finished");
        }
        ShutdownSignal::GracefulTerminate
    }
}

/// Prometheus text format at `/metrics` on `server.metrics_listen`.
struct MetricsEndpoint(Arc<Metrics>);

#[async_trait]
impl ServeHttp for MetricsEndpoint {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let (status, content_type, body) = if session.req_header().uri.path() == "/metrics" {
            (200, "text/plain; version=0.0.4", self.0.render())
        } else {
            (404, "text/plain", b"metrics are at /metrics\n".to_vec())
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// Hears every sign-out and revocation from every instance (Redis pub/sub) and purges them from
/// this instance's cache within milliseconds. While deaf (subscription lost) the cache cannot be
/// trusted: it is dropped and unused until the subscription is back — unless the operator chose
/// `on_store_error = "allow_cached"`, trading that guarantee for availability during an outage.
struct RevocationListener {
    store: Arc<RedisStore>,
    cache: Arc<VerifyCache>,
    metrics: Arc<Metrics>,
    keep_cache_when_deaf: bool,
}

impl RevocationListener {
    async fn listen_once(&self) -> Result<(), crate::session::StoreError> {
        let mut revocations = std::pin::pin!(self.store.subscribe().await?);
        // Whatever was cached while deaf may include sessions ended meanwhile.
        self.cache.clear();
        self.cache.set_trusted(true);
        tracing::info!("listening for revocations");
        while let Some(revocation) = revocations.next().await {
            if !self.cache.is_ended(&revocation.id) {
                self.metrics.revocations_received.inc();
            }
            self.cache.end(&revocation.id, revocation.reason);
        }
        Ok(())
    }

    fn went_deaf(&self) {
        if !self.keep_cache_when_deaf {
            self.cache.set_trusted(false);
            self.cache.clear();
        }
    }
}

#[async_trait]
impl BackgroundService for RevocationListener {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = std::time::Instant::now();
            tokio::select! {
                result = self.listen_once() => {
                    self.went_deaf();
                    match result {
                        Ok(()) => tracing::warn!("revocation subscription lost; reconnecting"),
                        Err(e) => tracing::warn!(error = %e, "cannot subscribe to revocations; retrying"),
                    }
                }
                _ = shutdown.changed() => return,
            }
            if started.elapsed() > Duration::from_secs(5) {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// Ends sessions whose users never came back, so their end is logged and counted too.
struct Sweeper {
    sessions: Arc<Sessions>,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = self
            .sessions
            .idle_timeout()
            .map_or(Duration::from_secs(30), |idle| {
                (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
            });
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(e) = self.sessions.sweep(Timestamp::now()).await {
                        tracing::warn!(error = %e, "session sweep failed");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
