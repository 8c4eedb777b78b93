//! Reloading while serving: SIGHUP — or, with `server.watch_config = true`, a change to the
//! config or users file — reads both again. The new config is checked in full first: with any
//! problem nothing changes, every problem is logged with its key, and the running config keeps
//! serving. Otherwise a new gateway (routes, upstream pools, users, keys, policies) is swapped
//! in for the requests that arrive from then on, while sessions, the store, the verify cache's
//! revocations and open connections carry on. Keys only a restart can change keep their running
//! value, with a warning naming each.

mod diff;
mod pools;
mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

pub use pools::{Pool, Pools};
pub use proxy::LiveProxy;

use crate::api_tokens::ApiTokens;
use crate::config::Config;
use crate::proxy::Gateway;
use crate::server::Foundation;
use crate::session::{EndReason, Sessions};
use crate::time::Timestamp;

/// How often `watch_config` looks at the files' modification times: cheap, and soon enough for
/// an operator who just saved a file.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Everything built from one version of the config.
pub struct Running {
    pub config: Arc<Config>,
    pub gateway: Arc<Gateway>,
    pub sessions: Arc<Sessions>,
}

/// The running version, swapped whole by a reload; readers take one snapshot per request.
pub struct Live {
    current: ArcSwap<Running>,
}

impl Live {
    pub fn new(running: Running) -> Self {
        Live {
            current: ArcSwap::from_pointee(running),
        }
    }

    pub fn current(&self) -> Arc<Running> {
        self.current.load_full()
    }
}

/// Listens for SIGHUP (and watches the files when asked to) and reloads.
pub struct Reloader {
    config_path: PathBuf,
    live: Arc<Live>,
    foundation: Arc<Foundation>,
}

impl Reloader {
    pub fn new(config_path: PathBuf, live: Arc<Live>, foundation: Arc<Foundation>) -> Self {
        Reloader {
            config_path,
            live,
            foundation,
        }
    }

    /// Reads and applies the config files; `true` when the new config was applied.
    pub async fn reload(&self) -> bool {
        let path = self.config_path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path)).await;
        let applied = match loaded {
            Ok(Ok(config)) => self.apply(config).await,
            Ok(Err(errors)) => {
                for e in &errors.0 {
                    tracing::error!(key = %e.key, "reload: {e}");
                }
                tracing::error!(
                    problems = errors.0.len(),
                    "reload refused: the running config keeps serving"
                );
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused: reading the config failed");
                false
            }
        };
        let result = if applied { "success" } else { "failure" };
        let metrics = &self.foundation.metrics;
        metrics.config_reloads.with_label_values(&[result]).inc();
        if applied {
            metrics.config_last_reload.set(unix_now());
        }
        applied
    }

    async fn apply(&self, mut config: Config) -> bool {
        let old = self.live.current();
        for key in diff::hold_back_restart_only(&old.config, &mut config) {
            tracing::warn!(
                key,
                "reload: {key} changed, but only a restart applies it; the running value stays"
            );
        }
        if config.tokens.keys_generated && old.config.tokens.keys_generated {
            // A key made at random at start: a new random one would sign everyone out.
            config.tokens.keys = old.config.tokens.keys.clone();
        }
        let changes = diff::changes(&old.config, &config);
        let config = Arc::new(config);
        let running = match crate::server::build_running(config.clone(), &self.foundation) {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: the running config keeps serving");
                // Pools made for the refused config are dropped before anything checks them.
                let running = old.config.apps.iter();
                self.foundation
                    .pools
                    .keep_only(running.map(|a| a.upstreams.as_slice()));
                return false;
            }
        };
        let sessions = running.sessions.clone();
        let api_tokens = running.gateway.api_tokens.clone();
        let pools = &self.foundation.pools;
        pools.keep_only(config.apps.iter().map(|a| a.upstreams.as_slice()));
        pools.start_health_checks();
        let new_apps: Vec<&str> = changes.apps_added.iter().map(String::as_str).collect();
        self.foundation.metrics.precreate_apps(&new_apps);
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        self.live.current.store(Arc::new(running));
        // Grants cached under the old config (groups, policies) are verified afresh.
        self.foundation.cache.clear();
        self.end_removed_users(&sessions, &api_tokens, &changes.users_removed)
            .await;
        tracing::info!(
            apps = config.apps.len(),
            users = config.users.len(),
            apps_added = ?changes.apps_added,
            apps_removed = ?changes.apps_removed,
            users_added = ?changes.users_added,
            users_removed = ?changes.users_removed,
            keys_added = ?changes.keys_added,
            keys_removed = ?changes.keys_removed,
            "config reloaded"
        );
        true
    }

    /// Ends every session of each removed user, on every instance (the store's revocation
    /// broadcast), with reason `user_removed`, and revokes their API tokens.
    async fn end_removed_users(&self, sessions: &Sessions, tokens: &ApiTokens, removed: &[String]) {
        for user in removed {
            // Even if this fails, a token of a user gone from the file is refused at each use.
            if let Err(e) = tokens.revoke_user(user, "reload: user removed").await {
                tracing::warn!(user, error = %e, "reload: cannot revoke the removed user's API tokens now");
            }
            match sessions
                .end_user(user, EndReason::UserRemoved, Timestamp::now())
                .await
            {
                Ok(ended) => tracing::info!(user, ended, "reload: user removed, sessions ended"),
                // Their next request still finds them gone from the users file and is refused.
                Err(e) => {
                    tracing::warn!(user, error = %e, "reload: cannot end the removed user's sessions now")
                }
            }
        }
    }

    /// The files a reload reads, with their modification times.
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        let current = self.live.current();
        let mut files: Vec<&Path> = vec![&self.config_path];
        if let Some(users) = &current.config.hub.users_file {
            files.push(users);
        }
        files
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        self.foundation.pools.start_health_checks();
        self.foundation.metrics.config_last_reload.set(unix_now());
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::error!("cannot listen for SIGHUP: reload needs a restart");
            return;
        };
        tracing::info!(config = %self.config_path.display(), "reload: listening for SIGHUP");
        let mut seen = self.stamps();
        let mut ticker = tokio::time::interval(WATCH_EVERY);
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP received: reloading the config");
                    // Stamped before reading: a change made while reading is seen next time.
                    seen = self.stamps();
                    self.reload().await;
                }
                _ = ticker.tick() => {
                    if !self.live.current().config.server.watch_config {
                        continue;
                    }
                    let now = self.stamps();
                    if now != seen {
                        tracing::info!("a config file changed: reloading");
                        seen = now;
                        self.reload().await;
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
