//! Upstream pools and their health checks, kept across reloads: an app whose upstreams did not
//! change keeps its pool (and what its health check has learnt), a pool no app uses any more has
//! its health check stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pingora::lb::health_check::TcpHealthCheck;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::services::background::BackgroundService;
use tokio::sync::watch;

pub type Pool = Arc<LoadBalancer<RoundRobin>>;

const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Every pool in use, by its upstream list.
#[derive(Default)]
pub struct Pools {
    by_upstreams: Mutex<HashMap<Vec<String>, Entry>>,
}

struct Entry {
    pool: Pool,
    /// Set once its health check runs; dropping it stops the check.
    running: Option<StopOnDrop>,
}

struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        // Pingora's loop ends on `true`; a closed channel alone would not stop it.
        let _ = self.0.send(true);
    }
}

impl Pools {
    /// The pool for `upstreams`: the existing one, or a new one (health-checked from the next
    /// [`Pools::start_health_checks`]).
    pub fn pool(&self, app: &str, upstreams: &[String]) -> Result<Pool, String> {
        let mut pools = self.lock();
        if let Some(entry) = pools.get(upstreams) {
            return Ok(entry.pool.clone());
        }
        let mut pool = LoadBalancer::try_from_iter(upstreams.iter().map(String::as_str))
            .map_err(|e| format!("apps[{app}].upstreams: {e}"))?;
        pool.set_health_check(TcpHealthCheck::new());
        pool.health_check_frequency = Some(HEALTH_CHECK_EVERY);
        let pool = Arc::new(pool);
        pools.insert(
            upstreams.to_vec(),
            Entry {
                pool: pool.clone(),
                running: None,
            },
        );
        Ok(pool)
    }

    /// Starts the health check of every pool not yet checked. Needs a Tokio runtime: called from
    /// the reload service, which runs from the start to the end of the process.
    pub fn start_health_checks(&self) {
        for entry in self.lock().values_mut().filter(|e| e.running.is_none()) {
            let (stop, watch) = watch::channel(false);
            let pool = entry.pool.clone();
            tokio::spawn(async move { pool.start(watch).await });
            entry.running = Some(StopOnDrop(stop));
        }
    }

    /// Forgets (and stops checking) every pool whose upstream list is not in `in_use`. Requests
    /// in flight keep the pool they hold.
    pub fn keep_only<'a>(&self, in_use: impl Iterator<Item = &'a [String]>) {
        let in_use: Vec<&[String]> = in_use.collect();
        self.lock()
            .retain(|upstreams, _| in_use.contains(&upstreams.as_slice()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<String>, Entry>> {
        // A panic while holding this lock leaves the map whole: no invariant spans two entries.
        self.by_upstreams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
