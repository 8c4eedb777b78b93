//! Wiring: builds every component from the config and runs them as Pingora services — the proxy,
//! the metrics endpoint, upstream health checks, the session sweeper and config reload — until
//! SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::apps::http_app::ServeHttp;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::ListenerConfig;
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::api_tokens::{ApiTokens, MemoryTokens, TokenStore};
use crate::auth::cache::VerifyCache;
use crate::auth::cookies::CookieNames;
use crate::auth::tokens::KeyRing;
use crate::auth::verify::Verifier;
use crate::config::{Config, OnStoreError, StoreKind};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::oidc::{Providers, Recheck};
use crate::proxy::fast_path::{FastPath, PathCounts};
use crate::proxy::header_deadline::HeaderDeadlines;
use crate::proxy::in_flight::InFlight;
use crate::proxy::routes::{AppRoute, Router};
use crate::proxy::Gateway;
use crate::reload::{Live, LiveProxy, Pools, Reloader, Running};
use crate::session::recent_ends::MemoryHistory;
use crate::session::{EndHistory, MemoryStore, RedisStore, SessionStore, Sessions};
use crate::time::Timestamp;

/// Runs the gateway until a signal stops it. Returns an error only for problems found while
/// starting (a port in use, an upstream name that does not resolve). `config_path` is read again
/// on SIGHUP ([`crate::reload`]).
pub fn run(config: Config, config_path: PathBuf) -> Result<(), String> {
    // Until the reload service listens, a SIGHUP must not end the process (its default action).
    // SAFETY: setting a signal's disposition to "ignore" touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let config = Arc::new(config);
    raise_open_files_limit();
    let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
    server.bootstrap();

    let foundation = Arc::new(Foundation::new(&config, &mut server)?);
    let running = build_running(config.clone(), &foundation)?;
    let live = Arc::new(Live::new(running));

    let proxy = FastPath::new(
        &server.configuration,
        LiveProxy::new(live.clone()),
        config.server.fast_path,
        PathCounts {
            fast: foundation
                .metrics
                .http1_requests
                .with_label_values(&["fast"]),
            general: foundation
                .metrics
                .http1_requests
                .with_label_values(&["general"]),
        },
    );
    let mut proxy = Service::new(
        "hubgate".to_string(),
        HeaderDeadlines::new(proxy, config.server.header_read_timeout),
    );
    proxy.add_listener(listener(&config)?);
    server.add_service(proxy);

    if let Some(addr) = config.server.metrics_listen {
        let mut endpoint = Service::new(
            "metrics".to_string(),
            MetricsEndpoint(foundation.metrics.clone()),
        );
        endpoint.add_tcp(&addr.to_string());
        server.add_service(endpoint);
    }
    server.add_service(background_service(
        "session sweeper",
        Sweeper { live: live.clone() },
    ));
    let in_flight = foundation.in_flight.clone();
    server.add_service(background_service(
        "config reload",
        Reloader::new(config_path, live, foundation),
    ));

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

/// Every connection is a file descriptor, and the usual soft limit (1,024) is far below what an
/// auth gateway in front of busy apps holds open; the hard limit (systemd's `LimitNOFILE`, 512 Ki
/// by default) is the operator's real ceiling. Raised as Go programs do at start.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// What lives as long as the process, whatever reloads happen: the session store and its
/// revocation listener, the verify cache (and the revocations it remembers), the metrics, the
/// OpenID provider clients, the upstream pools and the in-flight count.
pub struct Foundation {
    pub metrics: Arc<Metrics>,
    pub cache: Arc<VerifyCache>,
    pub pools: Pools,
    pub in_flight: InFlight,
    store: Arc<dyn SessionStore>,
    /// Recent sign-outs, kept in the same place as the sessions.
    history: Arc<dyn EndHistory>,
    /// API tokens, kept in the same place as the sessions.
    api_tokens: Arc<dyn TokenStore>,
    providers: Arc<Providers>,
    recheck: Option<Arc<Recheck>>,
}

impl Foundation {
    fn new(config: &Config, server: &mut Server) -> Result<Self, String> {
        let app_names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
        let metrics = Arc::new(Metrics::new(&app_names));
        let cache = Arc::new(VerifyCache::new(
            config.session.cache_ttl,
            config.session.cache_capacity,
        ));
        type Stores = (
            Arc<dyn SessionStore>,
            Arc<dyn EndHistory>,
            Arc<dyn TokenStore>,
        );
        let (store, history, api_tokens): Stores = match config.session.store {
            StoreKind::Memory => (
                Arc::new(MemoryStore::default()),
                Arc::new(MemoryHistory::default()),
                Arc::new(MemoryTokens::default()),
            ),
            StoreKind::Redis => {
                let redis = Arc::new(RedisStore::new(&config.session)?);
                // Until the revocation channel is heard, this instance could miss a sign-out made
                // elsewhere: it uses no cached grant before then.
                cache.set_trusted(false);
                let listener = RevocationListener {
                    store: redis.clone(),
                    cache: cache.clone(),
                    metrics: metrics.clone(),
                    keep_cache_when_deaf: config.session.on_store_error
                        == OnStoreError::AllowCached,
                };
                server.add_service(background_service("revocation listener", listener));
                (redis.clone(), redis.clone(), redis)
            }
        };
        let providers = Arc::new(Providers::new(&config.hub.providers)?);
        let provider_ids: Vec<&str> = config.hub.providers.iter().map(|p| p.id.as_str()).collect();
        metrics.precreate_providers(&provider_ids);
        if !providers.is_empty() {
            server.add_service(background_service(
                "OpenID provider discovery",
                providers.discovery_service(),
            ));
        }
        let recheck = config
            .hub
            .providers
            .iter()
            .any(|p| p.recheck_interval.is_some())
            .then(|| Arc::new(Recheck::new(providers.clone(), store.clone())));
        Ok(Foundation {
            metrics,
            cache,
            pools: Pools::default(),
            in_flight: InFlight::default(),
            store,
            history,
            api_tokens,
            providers,
            recheck,
        })
    }
}

/// Builds everything one version of the config decides — routes, upstream pools, users, keys,
/// session and token policy — on the [`Foundation`] that outlives it. At start and on reload.
pub fn build_running(config: Arc<Config>, foundation: &Foundation) -> Result<Running, String> {
    let f = foundation;
    let keys = Arc::new(KeyRing::from_config(&config.tokens));
    let mut sessions = Sessions::new(
        f.store.clone(),
        f.cache.clone(),
        f.metrics.clone(),
        config.session.idle_timeout,
    )
    .with_history(f.history.clone());
    if let Some(recheck) = &f.recheck {
        sessions = sessions.with_provider_check(recheck.clone());
    }
    if config.hub.users_file.is_some() {
        sessions = sessions.with_users_file(config.users.clone());
    }
    let sessions = Arc::new(sessions);

    let cookie_names = CookieNames::new(&config.cookies.prefix);
    let mut apps = Vec::new();
    for app in &config.apps {
        let mut activity_exempt = config.session.activity_exempt_paths.clone();
        activity_exempt.extend(app.activity_exempt_paths.iter().cloned());
        apps.push(Arc::new(AppRoute {
            config: app.clone(),
            upstreams: f.pools.pool(&app.name, &app.upstreams)?,
            cookie_name: cookie_names.app(&app.name),
            activity_exempt,
            metrics: f.metrics.app(&app.name),
            headers: crate::proxy::AppHeaders::new(app),
        }));
    }

    let api_tokens = Arc::new(ApiTokens::new(
        f.api_tokens.clone(),
        &config,
        f.metrics.clone(),
    ));
    let hub = Hub::new(
        config.clone(),
        keys.clone(),
        sessions.clone(),
        api_tokens.clone(),
        f.metrics.clone(),
        f.providers.clone(),
    );
    let verifier = Verifier::new(
        &config,
        keys,
        f.cache.clone(),
        sessions.clone(),
        f.metrics.clone(),
    );
    let mut gateway = Gateway::new(
        &config,
        Router::new(&config, apps),
        hub,
        verifier,
        api_tokens,
        f.metrics.clone(),
    );
    // One count for every version, so a stop waits for requests on old versions too.
    gateway.in_flight = f.in_flight.clone();
    Ok(Running {
        config,
        gateway: Arc::new(gateway),
        sessions,
    })
}

/// The gateway's listening endpoint: plain TCP, or TLS offering HTTP/2 and HTTP/1.1 by ALPN
/// (browsers then send a page's requests over one multiplexed connection; Pingora's default for a
/// TLS listener offers no ALPN, so every client fell back to HTTP/1.1).
///
/// Reads are unbuffered at the socket: Pingora's default gives every connection a 64 KiB read
/// buffer, zero-filled when the connection is accepted, although the HTTP session (or rustls)
/// above it reads into a buffer of its own. Measured with `bench/connections`, an idle keep-alive
/// connection held 98.5 KiB of memory that way and holds 38.1 KiB without (TLS: 113.1 → 48.4 KiB),
/// and requests per second did not drop (one copy of each request fewer).
fn listener(config: &Config) -> Result<ListenerConfig, String> {
    let endpoint = ListenerConfig::tcp(config.server.listen.to_string())
        .l4_buffer(L4BufferSettings::default().read(0));
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

/// Ends sessions whose users never came back, so their end is logged and counted too (with the
/// idle timeout of the config running at each sweep).
struct Sweeper {
    live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = self
            .live
            .current()
            .sessions
            .idle_timeout()
            .map_or(Duration::from_secs(30), |idle| {
                (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
            });
        let mut ticker = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let sessions = self.live.current().sessions.clone();
                    if let Err(e) = sessions.sweep(Timestamp::now()).await {
                        tracing::warn!(error = %e, "session sweep failed");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
