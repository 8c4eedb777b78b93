//! Which part of hubgate a request path belongs to: a hub endpoint, an app, or nothing.

use std::sync::Arc;

use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;

use crate::config::{path_is_under, AppConfig, Config};
use crate::metrics::AppMetrics;

/// An app as the proxy uses it: its config, its upstream pool, and its precomputed paths.
pub struct AppRoute {
    pub config: AppConfig,
    pub upstreams: Arc<LoadBalancer<RoundRobin>>,
    pub cookie_name: String,
    /// Global and per-app prefixes that neither renew tokens nor count as activity.
    pub activity_exempt: Vec<String>,
    pub metrics: AppMetrics,
    /// Identity header names and the headers no client may send, prepared once.
    pub headers: super::AppHeaders,
}

impl AppRoute {
    pub fn is_activity_exempt(&self, path: &str) -> bool {
        self.activity_exempt
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }
}

pub enum Route<'a> {
    /// A hub endpoint: the path below the hub prefix (`/login`).
    Hub(&'a str),
    App(Arc<AppRoute>),
    /// Add the trailing slash, so path-scoped cookies reach the request (`/apps/x` → `/apps/x/`).
    AddSlash(String),
    /// A path with `.` or `..` segments (also percent-encoded): it could escape an app's prefix.
    BadPath,
    NotFound,
}

pub struct Router {
    hub_prefix: String,
    /// Longest prefix first (prefixes never overlap, but this keeps the rule obvious).
    apps: Vec<Arc<AppRoute>>,
}

impl Router {
    pub fn new(config: &Config, apps: Vec<Arc<AppRoute>>) -> Self {
        let mut apps = apps;
        apps.sort_by_key(|a| std::cmp::Reverse(a.config.prefix.len()));
        Router {
            hub_prefix: config.hub.prefix.clone(),
            apps,
        }
    }

    pub fn apps(&self) -> &[Arc<AppRoute>] {
        &self.apps
    }

    pub fn resolve<'p>(&self, path: &'p str) -> Route<'p> {
        if has_dot_segment(path) {
            return Route::BadPath;
        }
        if path == "/" || path == self.hub_prefix {
            return Route::AddSlash(format!("{}/", self.hub_prefix));
        }
        if path == "/logout" {
            return Route::Hub("/logout");
        }
        if path_is_under(path, &self.hub_prefix) {
            return Route::Hub(&path[self.hub_prefix.len()..]);
        }
        match self.apps.iter().find(|a| a.config.owns_path(path)) {
            Some(app) if path == app.config.prefix => Route::AddSlash(format!("{path}/")),
            Some(app) => Route::App(app.clone()),
            None => Route::NotFound,
        }
    }
}

/// Whether a path has a `.` or `..` segment as any upstream might see it: segments split at `/`,
/// and also at `\` and percent-encoded `/` or `\` (which some servers decode or treat as
/// separators), with `%2e` read as `.` and anything after `;` ignored (Tomcat and others read
/// `..;x` as `..`). Otherwise `/apps/a/..%2Fb/` passes the gateway as app `a` and reaches app `b`
/// on an upstream that serves both.
fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let separated = lower
        .replace("%2f", "/")
        .replace("%5c", "/")
        .replace('\\', "/");
    separated.split('/').any(|segment| {
        let segment = segment.split(';').next().unwrap_or_default();
        let decoded = segment.replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_even_when_encoded() {
        for bad in [
            "/apps/a/../hub/x",
            "/apps/a/./x",
            "/apps/a/%2e%2e/x",
            "/apps/a/%2E./x",
            "/..",
            "/apps/a/..%2Fb/",
            "/apps/a/..%2fb/",
            "/apps/a/%2e%2e%5Cb/",
            "/apps/a/..\\b/",
            "/apps/a/..;/b/",
            "/apps/a/..;jsessionid=1/b",
            "/apps/a/x%2F..%2Fb",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "/apps/a/x.y",
            "/apps/a/...",
            "/apps/a/.hidden",
            "/",
            "/apps/a/group%2Fproject",
            "/apps/a/x;v=1",
            "/apps/a/..x",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }
}
