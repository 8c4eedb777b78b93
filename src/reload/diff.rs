//! What a reload changes: the keys that cannot change while serving (held back, with a warning
//! naming each), and what changed among apps, users and keys (logged; removed users' sessions
//! end).

use crate::config::Config;

/// Puts the running value back into `new` for every key that only a restart can change, and
/// names those keys. Listen sockets, TLS files, the store and its connections, the cache and
/// the provider clients are built once, at start.
pub fn hold_back_restart_only(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut held = Vec::new();
    let mut keep = Keep(&mut held);
    let (o, n) = (&old.server, &mut new.server);
    keep.running("server.listen", &o.listen, &mut n.listen);
    keep.running(
        "server.metrics_listen",
        &o.metrics_listen,
        &mut n.metrics_listen,
    );
    keep.running("server.tls", &o.tls, &mut n.tls);
    keep.running("server.threads", &o.threads, &mut n.threads);
    keep.running(
        "server.shutdown_grace",
        &o.shutdown_grace,
        &mut n.shutdown_grace,
    );
    // Each connection's deadline is set by the listener's wrapper, built once at start.
    keep.running(
        "server.header_read_timeout",
        &o.header_read_timeout,
        &mut n.header_read_timeout,
    );
    let (o, n) = (&old.session, &mut new.session);
    keep.running("session.store", &o.store, &mut n.store);
    let redis = |s: &crate::config::SessionConfig| {
        (
            s.redis_mode,
            s.redis_url.clone(),
            s.redis_urls.clone(),
            s.sentinel_master.clone(),
        )
    };
    let mut connection = redis(n);
    keep.running("session.redis_url", &redis(o), &mut connection);
    (n.redis_mode, n.redis_url, n.redis_urls, n.sentinel_master) = connection;
    keep.running("session.key_prefix", &o.key_prefix, &mut n.key_prefix);
    keep.running("session.cache_ttl", &o.cache_ttl, &mut n.cache_ttl);
    keep.running(
        "session.cache_capacity",
        &o.cache_capacity,
        &mut n.cache_capacity,
    );
    keep.running(
        "session.on_store_error",
        &o.on_store_error,
        &mut n.on_store_error,
    );
    if provider_identities(old) != provider_identities(new) {
        held.push("hub.providers");
        new.hub.providers = old.hub.providers.clone();
    }
    held
}

/// Collects the keys whose running value is put back.
struct Keep<'a>(&'a mut Vec<&'static str>);

impl Keep<'_> {
    fn running<T: PartialEq + Clone>(&mut self, key: &'static str, running: &T, new: &mut T) {
        if running != new {
            *new = running.clone();
            self.0.push(key);
        }
    }
}

/// What tells one provider client from another (its secret included: a rotated secret needs a
/// restart too): id, issuer, client id, secret, scopes.
type ProviderIdentity<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a [String]);

fn provider_identities(config: &Config) -> Vec<ProviderIdentity<'_>> {
    config
        .hub
        .providers
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.issuer.as_str(),
                p.client_id.as_str(),
                p.client_secret.as_deref(),
                p.scopes.as_slice(),
            )
        })
        .collect()
}

/// What a reload changed, for its log line and for ending removed users' sessions.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub apps_added: Vec<String>,
    pub apps_removed: Vec<String>,
    pub users_added: Vec<String>,
    pub users_removed: Vec<String>,
    pub keys_added: Vec<String>,
    pub keys_removed: Vec<String>,
}

pub fn changes(old: &Config, new: &Config) -> Changes {
    let apps = |c: &Config| c.apps.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    let users = |c: &Config| {
        let mut names: Vec<String> = c.users.names().map(str::to_string).collect();
        names.sort_unstable();
        names
    };
    let keys = |c: &Config| {
        c.tokens
            .keys
            .iter()
            .map(|k| k.id.clone())
            .collect::<Vec<_>>()
    };
    let (apps_added, apps_removed) = added_removed(apps(old), apps(new));
    let (users_added, users_removed) = added_removed(users(old), users(new));
    let (keys_added, keys_removed) = added_removed(keys(old), keys(new));
    Changes {
        apps_added,
        apps_removed,
        users_added,
        users_removed,
        keys_added,
        keys_removed,
    }
}

fn added_removed(old: Vec<String>, new: Vec<String>) -> (Vec<String>, Vec<String>) {
    let added = new.iter().filter(|n| !old.contains(n)).cloned().collect();
    let removed = old.into_iter().filter(|o| !new.contains(o)).collect();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str, users: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.toml"), users).unwrap();
        crate::config::from_str(extra, dir.path(), &|_| None).unwrap()
    }

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zf0gDhaKy554UXxOTEGLXA$iHgRyANUxF5FCkjI9YwbbemXA/ENpCJit2PYcTq+ddE";

    fn users(names: &[&str]) -> String {
        names
            .iter()
            .map(|n| format!("[[users]]\nname = \"{n}\"\npassword_hash = \"{HASH}\"\n"))
            .collect()
    }

    fn app(name: &str) -> String {
        format!("[[apps]]\nname = \"{name}\"\nprefix = \"/apps/{name}\"\nupstreams = [\"127.0.0.1:1\"]\n")
    }

    #[test]
    fn restart_only_keys_keep_their_running_value_and_are_named() {
        let old = config(
            &format!(
                "[server]\nlisten = \"127.0.0.1:7000\"\nthreads = 2\n{}",
                app("a")
            ),
            &users(&["alice"]),
        );
        let mut new = config(
            &format!(
                "[server]\nlisten = \"127.0.0.1:7001\"\nthreads = 4\n[session]\ncache_ttl = \"9s\"\n{}",
                app("b")
            ),
            &users(&["alice"]),
        );
        let held = hold_back_restart_only(&old, &mut new);
        assert_eq!(
            held,
            ["server.listen", "server.threads", "session.cache_ttl"]
        );
        assert_eq!(new.server.listen, old.server.listen);
        assert_eq!(new.server.threads, 2);
        assert_eq!(new.session.cache_ttl, old.session.cache_ttl);
        // What may change live is left as the new file says.
        assert_eq!(new.apps[0].name, "b");
    }

    #[test]
    fn changes_name_apps_and_users_added_and_removed() {
        let old = config(
            &format!("{}{}", app("a"), app("b")),
            &users(&["alice", "bob"]),
        );
        let new = config(
            &format!("{}{}", app("b"), app("c")),
            &users(&["bob", "carol"]),
        );
        let changes = changes(&old, &new);
        assert_eq!(changes.apps_added, ["c"]);
        assert_eq!(changes.apps_removed, ["a"]);
        assert_eq!(changes.users_added, ["carol"]);
        assert_eq!(changes.users_removed, ["alice"]);
    }
}
