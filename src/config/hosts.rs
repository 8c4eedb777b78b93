//! Apps on their own host names: the `host` key of `[[apps]]`, and how a request's `Host` header
//! is matched against it (case-insensitive; the port must match when the configured host names one).

use super::parse::check_path_prefix;
use super::reader::Section;
use super::{AppConfig, ServerConfig};

/// A host name as configured or as a request names it: lowercase name, optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    pub name: String,
    pub port: Option<u16>,
}

impl HostName {
    /// `example.com`, `Example.COM:8443`, `[::1]:8000`; `None` for anything else (a path, a
    /// user-info part, a bad port), so a hostile `Host` header matches nothing.
    pub fn parse(text: &str) -> Option<HostName> {
        let text = text.trim();
        let (name, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{inside}]"), port)
        } else {
            match text.rsplit_once(':') {
                Some((name, port)) => (name.to_string(), Some(port)),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
            None => None,
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
            });
        valid.then(|| HostName {
            name: name.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a request for `request` reaches this configured host. A configured host without a
    /// port accepts any port (the gateway may listen on 8000 behind a load balancer on 443); one
    /// with a port accepts that port only, or no port when it is the scheme's default.
    pub fn accepts(&self, request: &HostName) -> bool {
        if self.name != request.name {
            return false;
        }
        match (self.port, request.port) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(want), None) => want == 80 || want == 443,
        }
    }
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The `host` key: `None` when absent (the app lives under a prefix on the hub's host).
pub(super) fn read_app_host(a: &mut Section, server: &ServerConfig) -> Option<String> {
    let text = a.opt_string("host")?;
    let Some(host) = HostName::parse(&text).filter(|_| !text.contains(['/', '@', ' '])) else {
        a.report(
            "host",
            format!("{text:?} is not a host name (like \"grafana.example.com\" or \"grafana.localhost:8000\")"),
        );
        return None;
    };
    let hub = server
        .public_url
        .origin
        .split_once("://")
        .and_then(|(_, h)| HostName::parse(h));
    if hub.as_ref() == Some(&host) {
        a.report(
            "host",
            format!("{text:?} is the hub's host (server.public_url); give the app a prefix there instead"),
        );
        return None;
    }
    Some(host.to_string())
}

/// `prefix` of an app with a host: the whole host by default (`""`, also for `"/"`).
pub(super) fn read_host_prefix(a: &mut Section) -> String {
    match a.opt_string("prefix") {
        None => String::new(),
        Some(p) if p == "/" => String::new(),
        Some(p) => {
            if let Err(why) = check_path_prefix(&p) {
                a.report("prefix", why);
            } else if p == "/.hubgate" || p.starts_with("/.hubgate/") {
                a.report(
                    "prefix",
                    format!("{p:?} is where hubgate signs in on app hosts"),
                );
            }
            p
        }
    }
}

/// Two apps may share a host under different prefixes (the longest prefix wins), never the same
/// host and prefix: one of them could never be reached.
pub(super) fn check_host_claim(a: &Section, host: Option<&str>, prefix: &str, apps: &[AppConfig]) {
    let Some(host) = host else { return };
    if let Some(other) = apps
        .iter()
        .find(|o| o.host.as_deref() == Some(host) && o.prefix == prefix)
    {
        let shown = if prefix.is_empty() { "/" } else { prefix };
        a.report(
            "host",
            format!(
                "{host:?} with prefix {shown:?} is already claimed by app {:?}",
                other.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_case_insensitively_and_by_port_when_named() {
        let any_port = HostName::parse("Grafana.Example.com").unwrap();
        let port = HostName::parse("grafana.example.com:8443").unwrap();
        let req = |t: &str| HostName::parse(t).unwrap();
        assert!(any_port.accepts(&req("GRAFANA.example.COM")));
        assert!(any_port.accepts(&req("grafana.example.com:8000")));
        assert!(port.accepts(&req("grafana.example.com:8443")));
        assert!(!port.accepts(&req("grafana.example.com:8000")));
        assert!(!port.accepts(&req("grafana.example.com")));
        assert!(!any_port.accepts(&req("notebook.example.com")));
        assert!(HostName::parse("[::1]:8000").is_some());
        for bad in ["", "a b", "x@y", "host:port", "host:0", "host:99999", "a/b"] {
            assert_eq!(HostName::parse(bad), None, "{bad}");
        }
    }
}
