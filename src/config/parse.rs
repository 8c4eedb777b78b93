//! From TOML text to [`Config`]: every key read with its default, every rule checked, every
//! problem collected.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use toml::Table;

use super::providers::read_providers;
use super::reader::{Problems, Section};
use super::users::load_users;
use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

pub(crate) fn parse_config(
    label: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigErrors(vec![ConfigError {
            key: label.to_string(),
            message: format!("not valid TOML: {}", e.message().trim()),
        }])
    })?;
    let problems = Problems::default();
    let mut warnings = Vec::new();
    let mut root = Section::root(table, problems.clone());

    let server = read_server(&mut root.table("server"), base_dir);
    let hub = read_hub(&mut root.table("hub"), base_dir, env, &mut warnings);
    let session = read_session(&mut root.table("session"));
    let cookies = read_cookies(&mut root.table("cookies"), &server);
    let tokens = read_tokens(&mut root.table("tokens"), env, &session, &mut warnings);
    let api_tokens = read_api_tokens(&mut root.table("api_tokens"));
    let apps = read_apps(&mut root, &hub, &server);
    root.finish();
    let users = match &hub.users_file {
        Some(path) => load_users(path, &problems),
        None => Users::default(),
    };
    if hub.users_file.is_none() && hub.providers.is_empty() {
        problems.report(
            "hub.users_file",
            "\"\" turns the password form off, and no [[hub.providers]] is configured: nobody could sign in",
        );
    }
    if hub.auto_redirect && !(hub.providers.len() == 1 && hub.users_file.is_none()) {
        warnings.push("hub.auto_redirect needs exactly one [[hub.providers]] and users_file = \"\": the sign-in page is shown instead".into());
    }

    if session.store == StoreKind::Redis && tokens.keys_generated {
        problems.report(
            "tokens.keys",
            "store = \"redis\" needs [[tokens.keys]]: every instance must share the same keys",
        );
    }
    if session.remember_me_lifetime < session.lifetime {
        warnings.push("session.remember_me_lifetime is shorter than session.lifetime: \"remember me\" would shorten sessions".into());
    }

    let errors = problems.take();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Config {
        server,
        hub,
        session,
        tokens,
        api_tokens,
        cookies,
        apps,
        users,
        warnings,
    })
}

fn read_server(s: &mut Section, base_dir: &Path) -> ServerConfig {
    let listen =
        socket_addr(s, "listen", "127.0.0.1:8000").unwrap_or_else(|| ([127, 0, 0, 1], 8000).into());
    let metrics_text = s.string("metrics_listen", "127.0.0.1:9100");
    let metrics_listen = if metrics_text.is_empty() {
        None
    } else {
        parse_socket_addr(s, "metrics_listen", &metrics_text)
    };
    let public_url_text = s.string("public_url", "http://127.0.0.1:8000");
    let public_url = parse_public_url(&public_url_text).unwrap_or_else(|why| {
        s.report("public_url", why);
        PublicUrl {
            https: false,
            origin: "http://127.0.0.1:8000".into(),
        }
    });
    let threads = s.integer("threads", 2, 1, 1024) as usize;
    let shutdown_grace = s.duration("shutdown_grace", Duration::from_secs(10));
    let watch_config = s.bool("watch_config", false);
    let tls = s.opt_table("tls").map(|mut t| {
        let cert = existing_file(&mut t, "cert", base_dir);
        let key = existing_file(&mut t, "key", base_dir);
        t.finish();
        TlsConfig { cert, key }
    });
    let trusted_proxies = s
        .string_list("trusted_proxies")
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            Cidr::parse(text)
                .map_err(|why| s.report(&format!("trusted_proxies[{i}]"), why))
                .ok()
        })
        .collect();
    let header_read_timeout = at_least_a_second(s, "header_read_timeout", 20);
    let body_read_timeout = at_least_a_second(s, "body_read_timeout", 30);
    let fast_path = s.bool("fast_path", true);
    s.take_finish();
    ServerConfig {
        listen,
        metrics_listen,
        public_url,
        threads,
        shutdown_grace,
        watch_config,
        tls,
        trusted_proxies,
        header_read_timeout,
        body_read_timeout,
        fast_path,
    }
}

/// A client timeout: zero would refuse every request, so it is at least a second.
fn at_least_a_second(s: &mut Section, key: &str, default_secs: u64) -> Duration {
    let default = Duration::from_secs(default_secs);
    let value = s.duration(key, default);
    if value < Duration::from_secs(1) {
        s.report(key, "must be at least \"1s\"".to_string());
        return default;
    }
    value
}

fn read_hub(
    s: &mut Section,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> HubConfig {
    let prefix = s.string("prefix", "/hub");
    if let Err(why) = check_path_prefix(&prefix) {
        s.report("prefix", why);
    }
    let users_file = Some(s.string("users_file", super::users::DEFAULT_USERS_FILE))
        .filter(|name| !name.is_empty())
        .map(|name| base_dir.join(name));
    let admin_token_env = s.string("admin_token_env", "HUBGATE_ADMIN_TOKEN");
    let admin_token = env(&admin_token_env).filter(|t| !t.is_empty());
    if let Some(token) = &admin_token {
        if token.len() < 16 {
            s.report(
                "admin_token_env",
                format!("the token in ${admin_token_env} is shorter than 16 characters"),
            );
        }
    } else {
        warnings.push(format!(
            "hub.admin_token_env: ${admin_token_env} is not set, so the admin API is off"
        ));
    }
    let hub = HubConfig {
        prefix,
        users_file,
        admin_token_env,
        admin_token,
        login_max_failures: s.integer("login_max_failures", 5, 1, 1_000_000) as u32,
        login_failure_window: s.duration("login_failure_window", 5 * MINUTE),
        login_lockout: s.duration("login_lockout", 5 * MINUTE),
        auto_redirect: s.bool("auto_redirect", false),
        providers: read_providers(s, env),
    };
    s.take_finish();
    hub
}

fn read_session(s: &mut Section) -> SessionConfig {
    let store = match s.string("store", "memory").as_str() {
        "memory" => StoreKind::Memory,
        "redis" => StoreKind::Redis,
        other => {
            s.report(
                "store",
                format!("{other:?} is not a store (use \"memory\" or \"redis\")"),
            );
            StoreKind::Memory
        }
    };
    let redis_mode = match s.string("redis_mode", "standalone").as_str() {
        "standalone" => RedisMode::Standalone,
        "cluster" => RedisMode::Cluster,
        "sentinel" => RedisMode::Sentinel,
        other => {
            s.report(
                "redis_mode",
                format!(
                    "{other:?} is not a mode (use \"standalone\", \"cluster\" or \"sentinel\")"
                ),
            );
            RedisMode::Standalone
        }
    };
    let redis_url = s.string("redis_url", "redis://127.0.0.1:6379/0");
    if !is_redis_url(&redis_url) {
        s.report("redis_url", format!("{redis_url:?} is not a redis:// URL"));
    }
    let redis_urls = s.string_list("redis_urls");
    for (i, url) in redis_urls.iter().enumerate() {
        if !is_redis_url(url) || url.starts_with("redis+unix://") {
            s.report(
                &format!("redis_urls[{i}]"),
                format!("{url:?} is not a redis:// or rediss:// URL"),
            );
        }
    }
    let sentinel_master = s.string("sentinel_master", "");
    if store == StoreKind::Redis {
        match redis_mode {
            RedisMode::Standalone if !redis_urls.is_empty() => s.report(
                "redis_urls",
                "is for redis_mode = \"cluster\" or \"sentinel\"; a standalone server is redis_url",
            ),
            RedisMode::Cluster | RedisMode::Sentinel if redis_urls.is_empty() => s.report(
                "redis_urls",
                "must name at least one node (cluster seed nodes, or the Sentinels)",
            ),
            _ => {}
        }
        match redis_mode {
            RedisMode::Sentinel if sentinel_master.is_empty() => s.report(
                "sentinel_master",
                "redis_mode = \"sentinel\" needs the name Sentinel knows the primary by (e.g. \"mymaster\")",
            ),
            RedisMode::Standalone | RedisMode::Cluster if !sentinel_master.is_empty() => {
                s.report("sentinel_master", "is only for redis_mode = \"sentinel\"")
            }
            _ => {}
        }
    }
    let key_prefix = s.string("key_prefix", "hubgate:");
    if key_prefix.contains(['{', '}']) {
        // hubgate writes its own hash tag ({bucket}) after the prefix; a brace in the prefix
        // would become the tag and put every key in one slot.
        s.report(
            "key_prefix",
            format!("{key_prefix:?} contains {{ or }}: hubgate adds its own Redis hash tags"),
        );
    }
    let lifetime = positive(s, "lifetime", 12 * HOUR);
    let remember_me_lifetime = positive(s, "remember_me_lifetime", 20 * 24 * HOUR);
    let idle = s.duration("idle_timeout", 30 * MINUTE);
    let cache_ttl = s.duration("cache_ttl", 5 * MINUTE);
    let cache_capacity = s.integer("cache_capacity", 100_000, 1, i64::MAX) as u64;
    let activity_exempt_paths = path_list(s, "activity_exempt_paths", None);
    let warn_before = s.duration("warn_before", 2 * MINUTE);
    let poll_interval = positive(s, "poll_interval", SCRIPT_POLL_MAX);
    if poll_interval > SCRIPT_POLL_MAX {
        s.report(
            "poll_interval",
            "must be at most \"30s\": session.js polls at most every 30 seconds",
        );
    }
    let on_store_error = match s.string("on_store_error", "deny").as_str() {
        "deny" => OnStoreError::Deny,
        "allow_cached" => OnStoreError::AllowCached,
        other => {
            s.report(
                "on_store_error",
                format!("{other:?} is not a choice (use \"deny\" or \"allow_cached\")"),
            );
            OnStoreError::Deny
        }
    };
    s.take_finish();
    SessionConfig {
        store,
        redis_mode,
        redis_url,
        redis_urls,
        sentinel_master,
        key_prefix,
        lifetime,
        remember_me_lifetime,
        idle_timeout: (!idle.is_zero()).then_some(idle),
        cache_ttl,
        cache_capacity,
        activity_exempt_paths,
        on_store_error,
        warn_before,
        poll_interval: poll_interval.min(SCRIPT_POLL_MAX),
    }
}

fn is_redis_url(url: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

fn read_api_tokens(s: &mut Section) -> ApiTokenConfig {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let enabled = s.bool("enabled", true);
    let max_lifetime = s.duration("max_lifetime", 365 * DAY);
    let default_lifetime = s.duration("default_lifetime", 30 * DAY);
    if max_lifetime < Duration::from_secs(1) {
        s.report("max_lifetime", "must be at least \"1s\"".to_string());
    }
    if default_lifetime > max_lifetime {
        s.report(
            "default_lifetime",
            "must not be longer than api_tokens.max_lifetime".to_string(),
        );
    }
    let max_per_user = s.integer("max_per_user", 50, 1, 10_000) as usize;
    s.take_finish();
    ApiTokenConfig {
        enabled,
        default_lifetime,
        max_lifetime,
        max_per_user,
    }
}

fn read_tokens(
    s: &mut Section,
    env: &dyn Fn(&str) -> Option<String>,
    session: &SessionConfig,
    warnings: &mut Vec<String>,
) -> TokenConfig {
    let ttl = positive(s, "ttl", HOUR);
    let renew_threshold = s.float("renew_threshold", 0.5);
    if !(renew_threshold > 0.0 && renew_threshold <= 1.0) {
        s.report(
            "renew_threshold",
            format!("{renew_threshold} is out of range (a fraction above 0 and at most 1)"),
        );
    }
    let renew_min_interval = s.duration("renew_min_interval", MINUTE);
    let expose_new_token_header = s.bool("expose_new_token_header", false);
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut retired_keys: Vec<SigningKey> = Vec::new();
    let entries = s.array_of_tables("keys");
    // Keys were configured (even if some are wrong, which is reported on its own): none is made up.
    let keys_generated = entries.is_empty();
    for (i, mut k) in entries.into_iter().enumerate() {
        let id = k.string("id", "");
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            k.report(
                "id",
                format!("{id:?} is not a key id (letters, digits, '-', '_', '.')"),
            );
        } else if keys
            .iter()
            .chain(&retired_keys)
            .any(|existing| existing.id == id)
        {
            k.report("id", format!("key id {id:?} appears twice"));
        }
        let secret = read_key_secret(&mut k, env);
        let retired = k.bool("retired", false);
        if retired && i == 0 {
            k.report(
                "retired",
                "the first key signs, so it cannot be retired: put the new key first",
            );
        }
        k.finish();
        if let Some(secret) = secret {
            let key = SigningKey { id, secret };
            if retired {
                retired_keys.push(key);
            } else {
                keys.push(key);
            }
        }
    }
    if keys_generated {
        warnings.push("tokens.keys: no keys configured, a random key is made at start: every session ends when the process stops".into());
    }
    // Never empty: the key ring needs a signing key (configured entries that were all wrong are
    // reported as errors, so this stand-in is never served).
    if keys.is_empty() {
        keys.push(SigningKey {
            id: "generated".into(),
            secret: crate::auth::tokens::random_secret(),
        });
    }
    if ttl > session.remember_me_lifetime.max(session.lifetime) {
        warnings.push(
            "tokens.ttl is longer than any session: tokens will end with their session".into(),
        );
    }
    s.take_finish();
    TokenConfig {
        ttl,
        renew_threshold,
        renew_min_interval,
        expose_new_token_header,
        keys,
        retired_keys,
        keys_generated,
    }
}

fn read_key_secret(k: &mut Section, env: &dyn Fn(&str) -> Option<String>) -> Option<Vec<u8>> {
    let inline = k.opt_string("secret");
    let env_name = k.opt_string("secret_env");
    let (text, key) = match (inline, env_name) {
        (Some(_), Some(_)) => {
            k.report("secret", "give either secret or secret_env, not both");
            return None;
        }
        (Some(text), None) => (text, "secret"),
        (None, Some(name)) => match env(&name) {
            Some(text) => (text, "secret_env"),
            None => {
                k.report(
                    "secret_env",
                    format!("the environment variable ${name} is not set"),
                );
                return None;
            }
        },
        (None, None) => {
            k.report(
                "secret",
                "missing: give secret_env (an environment variable's name) or secret",
            );
            return None;
        }
    };
    let trimmed = text.trim().trim_end_matches('=');
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed) {
        Ok(bytes) if bytes.len() >= 32 => Some(bytes),
        Ok(bytes) => {
            k.report(
                key,
                format!(
                    "the key is {} bytes; at least 32 are needed (make one with `hubgate gen-key`)",
                    bytes.len()
                ),
            );
            None
        }
        Err(_) => {
            k.report(key, "not base64url (make one with `hubgate gen-key`)");
            None
        }
    }
}

fn read_cookies(s: &mut Section, server: &ServerConfig) -> CookieConfig {
    let prefix = s.string("prefix", "hubgate");
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.report(
            "prefix",
            format!("{prefix:?} cannot start a cookie name (letters, digits, '-', '_')"),
        );
    }
    let secure = match s.string("secure", "auto").as_str() {
        "auto" => server.public_url.https,
        "always" => true,
        "never" => false,
        other => {
            s.report(
                "secure",
                format!("{other:?} is not a choice (use \"auto\", \"always\" or \"never\")"),
            );
            server.public_url.https
        }
    };
    let same_site = match s.string("same_site", "lax").as_str() {
        "strict" => SameSite::Strict,
        "lax" => SameSite::Lax,
        "none" => SameSite::None,
        other => {
            s.report(
                "same_site",
                format!("{other:?} is not a choice (use \"strict\", \"lax\" or \"none\")"),
            );
            SameSite::Lax
        }
    };
    if same_site == SameSite::None && !secure {
        s.report("same_site", "\"none\" requires Secure cookies (browsers drop SameSite=None without Secure): set cookies.secure = \"always\" or use an https public_url");
    }
    let domain = s.string("domain", "");
    if domain
        .chars()
        .any(|c| c.is_whitespace() || c == ';' || c == ',' || c.is_control())
    {
        s.report("domain", format!("{domain:?} is not a domain"));
    }
    s.take_finish();
    CookieConfig {
        prefix,
        secure,
        same_site,
        domain: (!domain.is_empty()).then_some(domain),
    }
}

fn read_apps(root: &mut Section, hub: &HubConfig, server: &ServerConfig) -> Vec<AppConfig> {
    if !root.has("apps") {
        root.report("apps", "at least one [[apps]] is required");
        return Vec::new();
    }
    let mut apps: Vec<AppConfig> = Vec::new();
    for mut a in root.array_of_tables("apps") {
        let name = a.string("name", "");
        if !is_lowercase_name(&name) {
            a.report(
                "name",
                format!("{name:?} is not an app name (lowercase letters, digits and '-')"),
            );
        } else if apps.iter().any(|other| other.name == name) {
            a.report("name", format!("app name {name:?} appears twice"));
        }
        let host_given = a.has("host");
        let host = super::hosts::read_app_host(&mut a, server);
        let prefix = match host_given {
            true => super::hosts::read_host_prefix(&mut a),
            false => a.string("prefix", ""),
        };
        if host_given {
            // A bad `host` was reported already; its prefix means nothing without it.
            super::hosts::check_host_claim(&a, host.as_deref(), &prefix, &apps);
        } else if let Err(why) = check_path_prefix(&prefix) {
            a.report("prefix", why);
        } else if path_is_under(&prefix, &hub.prefix)
            || path_is_under(&hub.prefix, &prefix)
            || path_is_under("/logout", &prefix)
        {
            a.report(
                "prefix",
                format!(
                    "{prefix:?} overlaps the hub's routes ({} and /logout)",
                    hub.prefix
                ),
            );
        } else if let Some(other) = apps.iter().find(|o| {
            // (An app whose `host` was refused has no prefix; it was reported already.)
            o.host.is_none()
                && !o.prefix.is_empty()
                && (path_is_under(&prefix, &o.prefix) || path_is_under(&o.prefix, &prefix))
        }) {
            a.report(
                "prefix",
                format!(
                    "{prefix:?} overlaps app {:?} ({})",
                    other.name, other.prefix
                ),
            );
        }
        // `upstreams = []`: a proxy in front forwards, hubgate only decides (forward auth).
        let upstreams = a.string_list("upstreams");
        for (i, u) in upstreams.iter().enumerate() {
            if let Err(why) = check_upstream(u) {
                a.report(&format!("upstreams[{i}]"), why);
            }
        }
        let strip_prefix = a.bool("strip_prefix", false);
        let allowed_users = a.string_list("allowed_users");
        let allowed_groups = a.string_list("allowed_groups");
        let public_paths = path_list(&mut a, "public_paths", Some(&prefix));
        let activity_exempt_paths = path_list(&mut a, "activity_exempt_paths", Some(&prefix));
        let websocket = a.bool("websocket", true);
        let pass_authorization = a.bool("pass_authorization", false);
        let identity_headers = read_identity_headers(&mut a.table("identity_headers"));
        a.finish();
        apps.push(AppConfig {
            name,
            host,
            prefix,
            upstreams,
            strip_prefix,
            allowed_users,
            allowed_groups,
            public_paths,
            activity_exempt_paths,
            websocket,
            identity_headers,
            pass_authorization,
        });
    }
    if apps.is_empty() {
        root.report("apps", "at least one [[apps]] is required");
    }
    apps
}

fn read_identity_headers(s: &mut Section) -> IdentityHeaders {
    let mut header = |key: &str, default: &str| {
        let name = s.string(key, default);
        if name.is_empty() {
            return None;
        }
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            s.report(key, format!("{name:?} is not a valid header name"));
            return None;
        }
        Some(name)
    };
    let headers = IdentityHeaders {
        user: header("user", "X-Forwarded-User"),
        groups: header("groups", "X-Forwarded-Groups"),
        email: header("email", "X-Forwarded-Email"),
    };
    s.take_finish();
    headers
}

/// A name used in URLs, cookie names and metric labels: `[a-z0-9-]+` (apps, providers).
pub(super) fn is_lowercase_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A path prefix for routing: starts with `/`, no trailing `/`, no dot segments or odd characters.
pub(super) fn check_path_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 {
        return Err(format!(
            "{prefix:?} must be a path like \"/apps/name\" (starting with '/', not '/' alone)"
        ));
    }
    if prefix.ends_with('/') {
        return Err(format!("{prefix:?} must not end with '/'"));
    }
    if prefix.split('/').any(|seg| seg == "." || seg == "..") || prefix.contains("//") {
        return Err(format!(
            "{prefix:?} must not contain empty, '.' or '..' segments"
        ));
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c))
    {
        return Err(format!(
            "{prefix:?} may only contain letters, digits and / - _ . ~"
        ));
    }
    Ok(())
}

/// Path prefixes in a list; for an app they must lie under the app's own prefix.
fn path_list(s: &mut Section, key: &str, under: Option<&str>) -> Vec<String> {
    let paths = s.string_list(key);
    for (i, p) in paths.iter().enumerate() {
        if !p.starts_with('/') {
            s.report(
                &format!("{key}[{i}]"),
                format!("{p:?} must be a full path starting with '/'"),
            );
        } else if let Some(prefix) = under {
            if !path_is_under(p, prefix) {
                s.report(
                    &format!("{key}[{i}]"),
                    format!("{p:?} is not under the app's prefix {prefix:?} (give full paths)"),
                );
            }
        }
    }
    paths
}

fn check_upstream(upstream: &str) -> Result<(), String> {
    let Some((host, port)) = upstream.rsplit_once(':') else {
        return Err(format!("{upstream:?} is not \"host:port\""));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{upstream:?} is not \"host:port\""));
    }
    Ok(())
}

fn socket_addr(s: &mut Section, key: &str, default: &str) -> Option<SocketAddr> {
    let text = s.string(key, default);
    parse_socket_addr(s, key, &text)
}

fn parse_socket_addr(s: &mut Section, key: &str, text: &str) -> Option<SocketAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            s.report(
                key,
                format!("{text:?} is not an address like \"127.0.0.1:8000\""),
            );
            None
        }
    }
}

/// `session.js` reads the session at most this often (`session.poll_interval` may only shorten it).
const SCRIPT_POLL_MAX: Duration = Duration::from_secs(30);

fn positive(s: &mut Section, key: &str, default: Duration) -> Duration {
    let d = s.duration(key, default);
    if d.is_zero() {
        s.report(key, "must be longer than zero");
        return default;
    }
    d
}

fn existing_file(s: &mut Section, key: &str, base_dir: &Path) -> std::path::PathBuf {
    let path = base_dir.join(s.string(key, ""));
    if !path.is_file() {
        s.report(key, format!("{} is not a readable file", path.display()));
    }
    path
}

pub(crate) fn parse_public_url(text: &str) -> Result<PublicUrl, String> {
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{text:?} must start with http:// or https://"));
    };
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "{text:?} must be an origin like \"https://gateway.example.com\" (no path)"
        ));
    }
    Ok(PublicUrl {
        https,
        origin: format!(
            "{}://{}",
            if https { "https" } else { "http" },
            host.to_ascii_lowercase()
        ),
    })
}

impl Section {
    /// Finishes a section reached through `&mut`: reports its unknown keys.
    fn take_finish(&mut self) {
        let section = std::mem::replace(self, Section::root(Table::new(), Problems::default()));
        section.finish();
    }
}
