//! Which part of hubgate a request belongs to: by Host first (an app's own host, or the hub's),
//! then by path — a hub endpoint, an app, hubgate's own `/.hubgate/` on an app host, or nothing.

use std::sync::Arc;

use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;

use crate::config::{path_is_under, AppConfig, Config, HostName};
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

/// A host that apps own (`grafana.example.com`), with its apps, longest prefix first.
pub struct AppHost {
    pub host: HostName,
    pub apps: Vec<Arc<AppRoute>>,
}

impl AppHost {
    pub fn app(&self, name: &str) -> Option<&Arc<AppRoute>> {
        self.apps.iter().find(|a| a.config.name == name)
    }
}

/// Where hubgate answers for itself on an app host: sign-in callback, sign-out, session page.
pub const HOST_ENDPOINTS: &str = "/.hubgate";

pub enum Route<'a> {
    /// A hub endpoint: the path below the hub prefix (`/login`).
    Hub(&'a str),
    App(Arc<AppRoute>),
    /// `/.hubgate/<endpoint>` on an app host: the path below `/.hubgate` (`/callback`).
    HostEndpoint(Arc<AppHost>, &'a str),
    /// `<hub>/forward-auth` or `<hub>/auth-request`: a proxy in front asks about a request.
    ForwardAuth(super::forward_auth::Asker),
    /// Add the trailing slash, so path-scoped cookies reach the request (`/apps/x` → `/apps/x/`).
    AddSlash(String),
    /// A path with `.` or `..` segments (also percent-encoded): it could escape an app's prefix.
    BadPath,
    NotFound,
    /// A Host that neither the hub nor any app claims.
    UnknownHost,
}

pub struct Router {
    hub_prefix: String,
    /// The host of `server.public_url`; checked only once some app has a host of its own, so a
    /// hub reached by another name (`localhost` for `127.0.0.1`) keeps working without them.
    hub_host: Option<HostName>,
    /// The hub host's apps, longest prefix first (prefixes never overlap, but this keeps the
    /// rule obvious).
    apps: Vec<Arc<AppRoute>>,
    hosts: Vec<Arc<AppHost>>,
}

impl Router {
    pub fn new(config: &Config, apps: Vec<Arc<AppRoute>>) -> Self {
        let mut apps = apps;
        apps.sort_by_key(|a| std::cmp::Reverse(a.config.prefix.len()));
        let mut hosts: Vec<AppHost> = Vec::new();
        for app in apps.iter().filter(|a| a.config.host.is_some()) {
            let Some(host) = app.config.host.as_deref().and_then(HostName::parse) else {
                continue;
            };
            match hosts.iter_mut().find(|h| h.host == host) {
                Some(h) => h.apps.push(app.clone()),
                None => hosts.push(AppHost {
                    host,
                    apps: vec![app.clone()],
                }),
            }
        }
        let hub_host = config
            .server
            .public_url
            .origin
            .split_once("://")
            .and_then(|(_, h)| HostName::parse(h));
        Router {
            hub_prefix: config.hub.prefix.clone(),
            hub_host,
            apps: apps
                .into_iter()
                .filter(|a| a.config.host.is_none())
                .collect(),
            hosts: hosts.into_iter().map(Arc::new).collect(),
        }
    }

    /// The app host a request's `Host` names, if any.
    pub fn app_host(&self, host: Option<&str>) -> Option<&Arc<AppHost>> {
        if self.hosts.is_empty() {
            return None;
        }
        let host = HostName::parse(host?)?;
        self.hosts.iter().find(|h| h.host.accepts(&host))
    }

    /// The app that owns `path` on `host`: an app host's, or the hub host's prefix apps.
    pub fn app_for(&self, host: &str, path: &str) -> Option<Arc<AppRoute>> {
        let apps = match self.app_host(Some(host)) {
            Some(h) => &h.apps,
            None if self.is_hub_host(Some(host)) => &self.apps,
            None => return None,
        };
        apps.iter().find(|a| a.config.owns_path(path)).cloned()
    }

    fn is_hub_host(&self, host: Option<&str>) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        match (host.map(HostName::parse), &self.hub_host) {
            // HTTP/1.0 without a Host: the hub, as before hosts existed.
            (None, _) | (_, None) => true,
            (Some(Some(host)), Some(hub)) => hub.accepts(&host),
            (Some(None), Some(_)) => false,
        }
    }

    pub fn resolve<'p>(&self, host: Option<&str>, path: &'p str) -> Route<'p> {
        if has_dot_segment(path) {
            return Route::BadPath;
        }
        // On any host: Caddy and others keep the app's Host on the request they send to ask.
        if let Some(endpoint) = path.strip_prefix(self.hub_prefix.as_str()) {
            if let Some(asker) = super::forward_auth::Asker::at(endpoint) {
                return Route::ForwardAuth(asker);
            }
        }
        if let Some(app_host) = self.app_host(host) {
            return resolve_on_host(app_host, path);
        }
        if !self.is_hub_host(host) {
            return Route::UnknownHost;
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

fn resolve_on_host<'p>(app_host: &Arc<AppHost>, path: &'p str) -> Route<'p> {
    if path_is_under(path, HOST_ENDPOINTS) {
        return Route::HostEndpoint(app_host.clone(), &path[HOST_ENDPOINTS.len()..]);
    }
    match app_host.apps.iter().find(|a| a.config.owns_path(path)) {
        Some(app) if path == app.config.prefix => Route::AddSlash(format!("{path}/")),
        Some(app) => Route::App(app.clone()),
        None => Route::NotFound,
    }
}

/// Whether a path has a `.` or `..` segment as any upstream might see it: segments split at `/`,
/// and also at `\` and percent-encoded `/` or `\` (which some servers decode or treat as
/// separators), with `%2e` read as `.` and anything after `;` ignored (Tomcat and others read
/// `..;x` as `..`). Otherwise `/apps/a/..%2Fb/` passes the gateway as app `a` and reaches app `b`
/// on an upstream that serves both.
pub fn has_dot_segment(path: &str) -> bool {
    // A dot segment needs a `.`, literal or as `%2e`: most paths have neither, and are answered
    // without the copies below.
    if !path.bytes().any(|b| b == b'.' || b == b'%') {
        return false;
    }
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
    use std::path::Path;

    /// A router over `apps` (TOML), with routes built as the server builds them.
    fn router(apps: &str) -> Router {
        let text = format!(
            "[server]\npublic_url = \"http://hub.example.com:8000\"\n[hub]\nusers_file = \"users.toml\"\n{apps}"
        );
        let config =
            crate::config::from_str(&text, Path::new(env!("CARGO_MANIFEST_DIR")), &|_| None)
                .expect("config");
        let names: Vec<&str> = config.apps.iter().map(|a| a.name.as_str()).collect();
        let metrics = crate::metrics::Metrics::new(&names);
        let routes = config
            .apps
            .iter()
            .map(|app| {
                Arc::new(AppRoute {
                    config: app.clone(),
                    upstreams: Arc::new(
                        LoadBalancer::try_from_iter(Vec::<&str>::new()).expect("pool"),
                    ),
                    cookie_name: format!("hubgate-app-{}", app.name),
                    activity_exempt: Vec::new(),
                    metrics: metrics.app(&app.name),
                    headers: super::super::AppHeaders::new(app),
                })
            })
            .collect();
        Router::new(&config, routes)
    }

    fn describe(route: Route<'_>) -> String {
        match route {
            Route::Hub(e) => format!("hub {e}"),
            Route::App(a) => format!("app {}", a.config.name),
            Route::HostEndpoint(h, e) => format!("{} {e}", h.host),
            Route::ForwardAuth(a) => format!("{a:?}"),
            Route::AddSlash(l) => format!("slash {l}"),
            Route::BadPath => "bad".into(),
            Route::NotFound => "404".into(),
            Route::UnknownHost => "unknown host".into(),
        }
    }

    #[test]
    fn requests_route_by_host_then_by_prefix() {
        let r = router(
            "[[apps]]\nname = \"g\"\nhost = \"Grafana.example.com\"\nupstreams = []\n\
             [[apps]]\nname = \"g-api\"\nhost = \"grafana.example.com\"\nprefix = \"/api\"\nupstreams = []\n\
             [[apps]]\nname = \"n\"\nhost = \"notebook.example.com:8443\"\nupstreams = []\n\
             [[apps]]\nname = \"p\"\nprefix = \"/apps/p\"\nupstreams = []\n",
        );
        for (host, path, expected) in [
            ("grafana.example.com", "/d/x", "app g"),
            ("GRAFANA.example.com:8000", "/api/v1", "app g-api"),
            ("grafana.example.com", "/apix", "app g"),
            ("grafana.example.com", "/api", "slash /api/"),
            (
                "grafana.example.com",
                "/.hubgate/callback",
                "grafana.example.com /callback",
            ),
            ("grafana.example.com", "/hub/login", "app g"),
            ("grafana.example.com", "/hub/forward-auth", "ForwardAuth"),
            ("notebook.example.com:8443", "/", "app n"),
            ("notebook.example.com:9000", "/", "unknown host"),
            ("hub.example.com:8000", "/hub/login", "hub /login"),
            ("hub.example.com:8000", "/apps/p/x", "app p"),
            ("hub.example.com:8000", "/d/x", "404"),
            ("hub.example.com:9999", "/hub/login", "unknown host"),
            ("stranger.example.com", "/apps/p/x", "unknown host"),
            ("stranger.example.com", "/hub/auth-request", "AuthRequest"),
            ("bad host", "/", "unknown host"),
            ("grafana.example.com", "/a/../b", "bad"),
        ] {
            assert_eq!(
                describe(r.resolve(Some(host), path)),
                expected,
                "{host} {path}"
            );
        }
        assert_eq!(describe(r.resolve(None, "/hub/login")), "hub /login");
        assert_eq!(
            r.app_for("grafana.example.com", "/api/x")
                .map(|a| a.config.name.clone()),
            Some("g-api".into())
        );
        assert!(r.app_for("stranger.example.com", "/apps/p/x").is_none());
    }

    #[test]
    fn without_app_hosts_the_hub_answers_under_any_name() {
        let r = router("[[apps]]\nname = \"p\"\nprefix = \"/apps/p\"\nupstreams = []\n");
        assert_eq!(
            describe(r.resolve(Some("localhost:1234"), "/apps/p/x")),
            "app p"
        );
        assert_eq!(
            describe(r.resolve(Some("localhost:1234"), "/hub/login")),
            "hub /login"
        );
    }

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
