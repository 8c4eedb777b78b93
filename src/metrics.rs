//! Every metric, registered once with its label sets. Each family is pre-populated with a zero
//! series for every known label value, so dashboards and alerts work before the first event.
//! Label values come from fixed sets or app names in the config: never paths, users or errors.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::session::recent_ends::ReportType;
use crate::session::EndReason;

pub const OUTCOMES: [&str; 6] = [
    "allowed",
    "public",
    "redirected",
    "unauthorized",
    "forbidden",
    "upstream_error",
];
pub const LOGIN_RESULTS: [&str; 3] = ["success", "failure", "locked_out"];
pub const STORE_OPS: [&str; 14] = [
    "create",
    "lookup",
    "touch",
    "record_token",
    "end",
    "end_user",
    "end_all",
    "stale",
    "ping",
    "user_sessions",
    "put_note",
    "note",
    "first_use",
    "record_provider_check",
];

/// Buckets from 50 µs to 10 s: sub-millisecond gateway overhead and slow upstreams both resolve.
const LATENCY_BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// One app's series, resolved once: the hot path then touches no label map.
#[derive(Clone)]
pub struct AppMetrics {
    outcomes: Vec<IntCounter>,
    pub duration: Histogram,
}

impl AppMetrics {
    /// Counts a request; an outcome outside [`OUTCOMES`] (a request answered before any verdict)
    /// is not counted.
    pub fn request(&self, outcome: &str, seconds: f64) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.outcomes[i].inc();
            self.duration.observe(seconds);
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub cache_hit: IntCounter,
    pub cache_miss: IntCounter,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub cache_lookups: IntCounterVec,
    pub token_renewals: IntCounterVec,
    pub logins: IntCounterVec,
    pub sessions_ended: IntCounterVec,
    pub store_duration: HistogramVec,
    pub store_errors: IntCounterVec,
    pub revocations_received: IntCounter,
    /// `{provider, result}`: sign-ins through an OpenID provider (success, denied, error).
    pub oidc_logins: IntCounterVec,
    /// `{provider, result}`: back-channel logout calls (ended, unknown, invalid).
    pub backchannel_logouts: IntCounterVec,
    /// `{result}`: config reloads (SIGHUP or a watched file), applied or refused.
    pub config_reloads: IntCounterVec,
    /// When the running config was last loaded (start, or the last applied reload).
    pub config_last_reload: Gauge,
    /// `{type}`: sign-outs front ends reported (`POST <hub>/api/logout-event`).
    pub client_logout_events: IntCounterVec,
    /// `{result}`: app requests that carried an API token, admitted (`allowed`) or why not.
    pub api_token_requests: IntCounterVec,
    /// `{path}`: HTTP/1 requests by the path that served them, `fast` (`proxy::fast_path`) or
    /// `general` (pingora-proxy), while the fast path is on.
    pub http1_requests: IntCounterVec,
}

pub const HTTP1_PATHS: [&str; 2] = ["fast", "general"];

pub const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

pub const OIDC_LOGIN_RESULTS: [&str; 3] = ["success", "denied", "error"];
pub const BACKCHANNEL_RESULTS: [&str; 3] = ["ended", "unknown", "invalid"];

impl Metrics {
    pub fn new(app_names: &[&str]) -> Self {
        let registry = Registry::new_custom(Some("hubgate".into()), None)
            .expect("the prefix is a valid metric name");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("each metric is registered once");
            c
        };
        let histogram = |name: &str, help: &str, label: &str| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                &[label],
            )
            .expect("static metric definition");
            registry
                .register(Box::new(h.clone()))
                .expect("each metric is registered once");
            h
        };
        let cache_lookups = counter(
            "auth_cache_lookups_total",
            "Verification cache lookups.",
            &["result"],
        );
        let metrics = Metrics {
            cache_hit: cache_lookups.with_label_values(&["hit"]),
            cache_miss: cache_lookups.with_label_values(&["miss"]),
            cache_lookups,
            requests: counter(
                "requests_total",
                "App requests by outcome.",
                &["app", "outcome"],
            ),
            request_duration: histogram(
                "request_duration_seconds",
                "Time from request to response, per app.",
                "app",
            ),
            token_renewals: counter(
                "token_renewals_total",
                "App tokens renewed by sliding renewal.",
                &["app"],
            ),
            logins: counter("logins_total", "Sign-in attempts by result.", &["result"]),
            sessions_ended: counter(
                "sessions_ended_total",
                "Sessions ended, by reason.",
                &["reason"],
            ),
            store_duration: histogram(
                "store_operation_duration_seconds",
                "Session store operations.",
                "op",
            ),
            store_errors: counter(
                "store_errors_total",
                "Failed session store operations.",
                &["op"],
            ),
            oidc_logins: counter(
                "oidc_logins_total",
                "Sign-ins through an OpenID provider, by provider and result.",
                &["provider", "result"],
            ),
            backchannel_logouts: counter(
                "backchannel_logouts_total",
                "Back-channel logout calls from OpenID providers, by provider and result.",
                &["provider", "result"],
            ),
            config_reloads: counter(
                "config_reloads_total",
                "Config reloads by result: success (applied) or failure (refused, old config kept).",
                &["result"],
            ),
            config_last_reload: Gauge::new(
                "config_last_reload_timestamp_seconds",
                "Unix time the running config was loaded: at start, or the last applied reload.",
            )
            .expect("static metric definition"),
            client_logout_events: counter(
                "client_logout_events_total",
                "Sign-outs reported by front ends, by type.",
                &["type"],
            ),
            api_token_requests: counter(
                "api_token_requests_total",
                "App requests carrying an API token, by result.",
                &["result"],
            ),
            http1_requests: counter(
                "http1_requests_total",
                "HTTP/1 requests by the path that served them (fast or general).",
                &["path"],
            ),
            revocations_received: IntCounter::new(
                "revocations_received_total",
                "Revocations received from other instances.",
            )
            .expect("static metric definition"),
            registry,
        };
        metrics
            .registry
            .register(Box::new(metrics.revocations_received.clone()))
            .expect("each metric is registered once");
        metrics
            .registry
            .register(Box::new(metrics.config_last_reload.clone()))
            .expect("each metric is registered once");
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "The running version."),
            &["version"],
        )
        .expect("static metric definition");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        metrics
            .registry
            .register(Box::new(build_info))
            .expect("each metric is registered once");
        metrics.precreate_apps(app_names);
        metrics.precreate();
        metrics
    }

    /// Zero series for each app (at start, and for apps a reload adds).
    pub fn precreate_apps(&self, apps: &[&str]) {
        for app in apps {
            for outcome in OUTCOMES {
                self.requests.with_label_values(&[app, outcome]);
            }
            self.request_duration.with_label_values(&[app]);
            self.token_renewals.with_label_values(&[app]);
        }
    }

    fn precreate(&self) {
        for result in RELOAD_RESULTS {
            self.config_reloads.with_label_values(&[result]);
        }
        for result in ["hit", "miss"] {
            self.cache_lookups.with_label_values(&[result]);
        }
        for result in LOGIN_RESULTS {
            self.logins.with_label_values(&[result]);
        }
        for reason in EndReason::ALL {
            self.sessions_ended.with_label_values(&[reason.as_str()]);
        }
        for op in STORE_OPS {
            self.store_duration.with_label_values(&[op]);
            self.store_errors.with_label_values(&[op]);
        }
        self.api_token_requests.with_label_values(&["allowed"]);
        for refusal in crate::api_tokens::Refusal::ALL {
            self.api_token_requests
                .with_label_values(&[refusal.as_str()]);
        }
        for path in HTTP1_PATHS {
            self.http1_requests.with_label_values(&[path]);
        }
        for kind in ReportType::ALL {
            self.client_logout_events
                .with_label_values(&[kind.as_str()]);
        }
    }

    /// Zero series for each configured provider, so its families show from the first scrape.
    pub fn precreate_providers(&self, providers: &[&str]) {
        for provider in providers {
            for result in OIDC_LOGIN_RESULTS {
                self.oidc_logins.with_label_values(&[provider, result]);
            }
            for result in BACKCHANNEL_RESULTS {
                self.backchannel_logouts
                    .with_label_values(&[provider, result]);
            }
        }
    }

    pub fn app(&self, app: &str) -> AppMetrics {
        AppMetrics {
            outcomes: OUTCOMES
                .iter()
                .map(|o| self.requests.with_label_values(&[app, o]))
                .collect(),
            duration: self.request_duration.with_label_values(&[app]),
        }
    }

    pub fn store_timer(&self, op: &str) -> Histogram {
        self.store_duration.with_label_values(&[op])
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_present_before_any_event() {
        let text = String::from_utf8(Metrics::new(&["grafana"]).render()).unwrap();
        for family in [
            "hubgate_requests_total{app=\"grafana\",outcome=\"upstream_error\"} 0",
            "hubgate_request_duration_seconds_count{app=\"grafana\"} 0",
            "hubgate_auth_cache_lookups_total{result=\"hit\"} 0",
            "hubgate_token_renewals_total{app=\"grafana\"} 0",
            "hubgate_logins_total{result=\"locked_out\"} 0",
            "hubgate_sessions_ended_total{reason=\"key_removed\"} 0",
            "hubgate_store_operation_duration_seconds_count{op=\"lookup\"} 0",
            "hubgate_store_errors_total{op=\"touch\"} 0",
            "hubgate_revocations_received_total 0",
            "hubgate_config_reloads_total{result=\"failure\"} 0",
            "hubgate_config_last_reload_timestamp_seconds 0",
            "hubgate_client_logout_events_total{type=\"refresh_failed\"} 0",
            "hubgate_api_token_requests_total{result=\"token_revoked\"} 0",
            "hubgate_http1_requests_total{path=\"general\"} 0",
            "hubgate_build_info{version=",
        ] {
            assert!(text.contains(family), "missing {family}");
        }
    }
}
