//! `hubgate check`, `hash-password` and `gen-key` as an operator runs them.

use std::io::Write;
use std::process::{Command, Stdio};

fn hubgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .args(args)
        .output()
        .expect("run hubgate")
}

/// Writes `config` beside a copy of the demo users file and runs `hubgate check` on it: (exit code,
/// stderr).
fn check_config(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/users.toml"),
        dir.path().join("users.toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("gateway.toml"), config).unwrap();
    let out = hubgate(&[
        "check",
        "-c",
        dir.path().join("gateway.toml").to_str().unwrap(),
    ]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_repository_config_is_valid() {
    let out = hubgate(&[
        "check",
        "-c",
        concat!(env!("CARGO_MANIFEST_DIR"), "/gateway.toml"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok: ") && stdout.contains("(2 apps, 2 users)"),
        "{stdout}"
    );
}

#[test]
fn the_repository_oidc_demo_config_is_valid() {
    let out = hubgate(&[
        "check",
        "-c",
        concat!(env!("CARGO_MANIFEST_DIR"), "/gateway-oidc.toml"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_config_with_three_mistakes_gets_three_messages_naming_the_keys() {
    let config = r#"
[session]
idle_timeout = "30 min"
[cookies]
same_site = "none"
[[apps]]
name = "Grafana!"
prefix = "/apps/grafana"
upstreams = ["127.0.0.1:3000"]
"#;
    let (code, stderr) = check_config(config);
    assert_eq!(code, Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors.contains(&"error: session.idle_timeout: \"30 min\" is not a duration (try \"30m\")"),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: cookies.same_site: \"none\" requires Secure")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: apps[0].name: \"Grafana!\" is not an app name")),
        "{stderr}"
    );
}

#[test]
fn unknown_keys_and_overlapping_prefixes_are_named() {
    let config = r#"
[sesion]
lifetime = "1h"
[[apps]]
name = "a"
prefix = "/hub/a"
upstreams = ["127.0.0.1:3000"]
strip_prefx = true
[[apps]]
name = "a"
prefix = "/apps/b"
upstreams = ["nowhere"]
"#;
    let (code, stderr) = check_config(config);
    assert_eq!(code, Some(1));
    for expected in [
        "error: sesion: unknown key",
        "error: apps[0].strip_prefx: unknown key",
        "error: apps[0].prefix: \"/hub/a\" overlaps the hub's routes",
        "error: apps[1].name: app name \"a\" appears twice",
        "error: apps[1].upstreams[0]: \"nowhere\" is not \"host:port\"",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn redis_mode_mistakes_are_named_by_their_keys() {
    let apps = "[[apps]]\nname = \"a\"\nprefix = \"/apps/a\"\nupstreams = [\"127.0.0.1:3000\"]\n";
    let keys =
        "[[tokens.keys]]\nid = \"k1\"\nsecret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n";
    for (session, expected) in [
        (
            "redis_mode = \"shard\"",
            "error: session.redis_mode: \"shard\" is not a mode (use \"standalone\", \"cluster\" or \"sentinel\")",
        ),
        ("redis_mode = \"cluster\"", "error: session.redis_urls: must name at least one node"),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"127.0.0.1:7000\"]",
            "error: session.redis_urls[0]: \"127.0.0.1:7000\" is not a redis:// or rediss:// URL",
        ),
        (
            "redis_mode = \"sentinel\"\nredis_urls = [\"redis://127.0.0.1:26379\"]",
            "error: session.sentinel_master: redis_mode = \"sentinel\" needs the name",
        ),
        (
            "redis_urls = [\"redis://127.0.0.1:7000\"]",
            "error: session.redis_urls: is for redis_mode = \"cluster\" or \"sentinel\"",
        ),
        (
            "redis_mode = \"cluster\"\nredis_urls = [\"redis://a:1\"]\nsentinel_master = \"m\"",
            "error: session.sentinel_master: is only for redis_mode = \"sentinel\"",
        ),
        (
            "key_prefix = \"app{1}:\"",
            "error: session.key_prefix: \"app{1}:\" contains { or }",
        ),
    ] {
        let config = format!("[session]\nstore = \"redis\"\n{session}\n[tokens]\n{keys}\n{apps}");
        let (code, stderr) = check_config(&config);
        assert_eq!(code, Some(1), "{session}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} for {session:?} in:\n{stderr}"
        );
    }
    let cluster = format!(
        "[session]\nstore = \"redis\"\nredis_mode = \"cluster\"\nredis_urls = [\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]\n[tokens]\n{keys}\n{apps}"
    );
    assert_eq!(
        check_config(&cluster).0,
        Some(0),
        "a cluster config is valid"
    );
}

#[test]
fn two_apps_claiming_one_host_and_prefix_are_refused_and_bad_hosts_named() {
    let config = r#"
[server]
public_url = "http://hub.example.com"
[[apps]]
name = "grafana"
host = "grafana.example.com"
upstreams = ["127.0.0.1:3000"]
[[apps]]
name = "grafana-two"
host = "Grafana.Example.com"
prefix = "/"
upstreams = ["127.0.0.1:3001"]
[[apps]]
name = "api"
host = "grafana.example.com"
prefix = "/api"
upstreams = ["127.0.0.1:3002"]
[[apps]]
name = "bad"
host = "https://x.example.com/path"
upstreams = ["127.0.0.1:3003"]
[[apps]]
name = "hub"
host = "hub.example.com"
upstreams = ["127.0.0.1:3004"]
[[apps]]
name = "fronted"
prefix = "/apps/fronted"
upstreams = []
"#;
    let (code, stderr) = check_config(config);
    assert_eq!(code, Some(1));
    for expected in [
        "error: apps[1].host: \"grafana.example.com\" with prefix \"/\" is already claimed by app \"grafana\"",
        "error: apps[3].host: \"https://x.example.com/path\" is not a host name",
        "error: apps[4].host: \"hub.example.com\" is the hub's host",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // A second prefix on a host, and an app only a proxy in front serves, are fine.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        3,
        "{stderr}"
    );
}

#[test]
fn a_missing_or_broken_config_file_is_a_clear_error_not_a_panic() {
    let out = hubgate(&["check", "-c", "/nonexistent/gateway.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("g.toml"), "[server\nlisten=").unwrap();
    let out = hubgate(&["check", "-c", dir.path().join("g.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid TOML"));
}

#[test]
fn hash_password_and_gen_key_print_usable_values() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    let key = String::from_utf8(hubgate(&["gen-key"]).stdout).unwrap();
    assert_eq!(
        key.trim().len(),
        43,
        "32 bytes, base64url without padding: {key}"
    );
}

#[test]
fn provider_mistakes_are_named_by_their_keys() {
    let config = r#"
[hub]
users_file = ""
[[hub.providers]]
id = "Corp SSO"
issuer = "http://idp.example.com"
client_secret = "s"
client_secret_env = "HUBGATE_NOT_SET_ANYWHERE"
scopes = ["profile"]
recheck_interval = "15 min"
[[hub.providers]]
id = "okta"
issuer = "https://okta.example.com"
client_id = "hubgate"
client_secret_env = "HUBGATE_NOT_SET_ANYWHERE"
allowed_email_domains = ["@example.com", "a b"]
colour = "blue"
[[apps]]
name = "a"
prefix = "/apps/a"
upstreams = ["127.0.0.1:3000"]
"#;
    let (code, stderr) = check_config(config);
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "error: hub.providers[0].id: \"Corp SSO\" is not a provider id",
        "error: hub.providers[0].issuer: \"http://idp.example.com\" uses plain http",
        "error: hub.providers[0].client_id: missing",
        "error: hub.providers[0].client_secret: give either client_secret or client_secret_env, not both",
        "error: hub.providers[0].scopes: must include \"openid\"",
        "error: hub.providers[0].recheck_interval: \"15 min\" is not a duration",
        "error: hub.providers[1].client_secret_env: the environment variable $HUBGATE_NOT_SET_ANYWHERE is not set",
        "error: hub.providers[1].allowed_email_domains: \"a b\" is not a domain",
        "error: hub.providers[1].colour: unknown key",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // No users file and no provider: nobody could sign in.
    let (code, stderr) = check_config(
        "[hub]\nusers_file = \"\"\n[[apps]]\nname = \"a\"\nprefix = \"/apps/a\"\nupstreams = [\"127.0.0.1:3000\"]\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("error: hub.users_file: \"\" turns the password form off, and no [[hub.providers]] is configured"),
        "{stderr}"
    );
}

#[test]
fn trusted_proxies_and_retired_keys_are_checked_by_name() {
    let key = "c2lnbmluZy1rZXktZm9yLXRoZS1jaGVjay10ZXN0LTAx";
    let config = format!(
        r#"
[server]
trusted_proxies = ["10.0.0.0/8", "10.0.0.0/33", "10.0.0.1/8", "proxy.example", 7]
[[tokens.keys]]
id = "old"
secret = "{key}"
retired = true
[[tokens.keys]]
id = "new"
secret = "{key}"
retired = "yes"
[[apps]]
name = "a"
prefix = "/apps/a"
upstreams = ["127.0.0.1:3000"]
"#
    );
    let (code, stderr) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    for expected in [
        "error: server.trusted_proxies[1]: \"10.0.0.0/33\": the prefix length must be a number from 0 to 32",
        "error: server.trusted_proxies[2]: \"10.0.0.1/8\" has bits set after the first 8 (did you mean 10.0.0.0/8?)",
        "error: server.trusted_proxies[3]: \"proxy.example\" is not an address range",
        "error: server.trusted_proxies[4]: expected a string",
        "error: tokens.keys[0].retired: the first key signs, so it cannot be retired",
        "error: tokens.keys[1].retired: expected",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(expected)),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("trusted_proxies[0]"),
        "10.0.0.0/8 is fine: {stderr}"
    );
}

#[test]
fn session_script_settings_are_checked_by_key() {
    let config = r#"
[session]
warn_before = "2 minutes"
poll_interval = "1m"
[[apps]]
name = "a"
prefix = "/apps/a"
upstreams = ["127.0.0.1:3000"]
"#;
    let (code, stderr) = check_config(config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: session.warn_before: \"2 minutes\" is not a duration"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: session.poll_interval: must be at most \"30s\""),
        "{stderr}"
    );
}
