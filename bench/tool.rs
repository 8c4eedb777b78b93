//! Benchmark helper (`cargo run --release --example bench_tool -- ...`), used by `bench/run`:
//!
//! - `seed REDIS_URL KEY_PREFIX KEY_B64 COUNT APP OUT`: creates COUNT signed-in sessions directly in
//!   the Redis store (as sign-in would, without paying argon2 per session) and writes one Cookie
//!   header per line to OUT, for wrk's Lua script.
//! - `propagation REDIS_URL KEY_PREFIX KEY_B64 APP URL_A URL_B COUNT`: COUNT times, signs a fresh
//!   session out on instance B and measures how long until instance A refuses its cookies; prints
//!   p50 and p99.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::StreamExt;
use hubgate::auth::tokens::{AppClaims, KeyRing};
use hubgate::auth::Identity;
use hubgate::config::{OnStoreError, RedisMode, SessionConfig, SigningKey, StoreKind};
use hubgate::session::{ProviderLink, RedisStore, Session, SessionId, SessionStore};
use hubgate::time::Timestamp;

/// The store's settings for `redis` — one URL, or a cluster's seed nodes separated by commas.
fn store_config(redis: &str, prefix: &str) -> SessionConfig {
    let urls: Vec<String> = redis.split(',').map(str::to_string).collect();
    let cluster = urls.len() > 1;
    SessionConfig {
        store: StoreKind::Redis,
        redis_mode: if cluster {
            RedisMode::Cluster
        } else {
            RedisMode::Standalone
        },
        redis_url: urls[0].clone(),
        redis_urls: if cluster { urls } else { Vec::new() },
        sentinel_master: String::new(),
        key_prefix: prefix.to_string(),
        lifetime: Duration::from_secs(12 * 3600),
        remember_me_lifetime: Duration::from_secs(20 * 24 * 3600),
        idle_timeout: Some(Duration::from_secs(1800)),
        cache_ttl: Duration::from_secs(300),
        cache_capacity: 100_000,
        activity_exempt_paths: Vec::new(),
        on_store_error: OnStoreError::Deny,
        warn_before: Duration::from_secs(120),
        poll_interval: Duration::from_secs(30),
    }
}

struct Minter {
    store: RedisStore,
    keys: KeyRing,
    app: String,
}

impl Minter {
    fn new(redis_url: &str, prefix: &str, key_b64: &str, app: &str) -> Self {
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key_b64.trim_end_matches('='))
            .expect("the key is base64url");
        Minter {
            store: RedisStore::new(&store_config(redis_url, prefix)).expect("redis url"),
            keys: KeyRing::new(&[SigningKey {
                id: "k1".into(),
                secret,
            }]),
            app: app.to_string(),
        }
    }

    /// A new session in the store and the Cookie header a signed-in browser would send.
    async fn session(&self, n: usize) -> (SessionId, String) {
        let now = Timestamp::now();
        let session = Session {
            id: SessionId::generate_for(&format!("bench{n}")),
            user: format!("bench{n}"),
            groups: vec!["bench".into()],
            email: format!("bench{n}@example.com"),
            created_at: now,
            expires_at: now.plus(Duration::from_secs(12 * 3600)),
            last_seen: now,
            remember_me: false,
            app_tokens: BTreeMap::new(),
            // As an OpenID sign-in makes them: a password session would have to be in the users
            // file (the gateway ends one whose user is not, `user_removed`), and nobody lists a
            // hundred thousand users there.
            provider: Some(Box::new(ProviderLink {
                provider: "bench".into(),
                subject: format!("bench{n}"),
                provider_session: None,
                id_token: None,
                refresh_token: None,
                checked_at: now,
            })),
            from: Default::default(),
        };
        self.store
            .create(&session)
            .await
            .expect("create a session in Redis");
        let identity = Identity::shared(&session.user, &session.groups, &session.email);
        let token = self.keys.sign(&AppClaims::new(
            &identity,
            &session.id,
            &self.app,
            now,
            now.plus(Duration::from_secs(3600)),
        ));
        let cookie = format!(
            "hubgate-app-{}={token}; hubgate-session-id={}",
            self.app,
            session.id.as_str()
        );
        (session.id, cookie)
    }
}

async fn seed(args: &[String]) {
    let [url, prefix, key, count, app, out] = args else {
        panic!("seed REDIS_URL KEY_PREFIX KEY_B64 COUNT APP OUT")
    };
    let minter = Arc::new(Minter::new(url, prefix, key, app));
    let count: usize = count.parse().expect("COUNT");
    let cookies: Vec<String> = futures_util::stream::iter(0..count)
        .map(|n| {
            let minter = minter.clone();
            async move { minter.session(n).await.1 }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    std::fs::write(out, cookies.join("\n") + "\n").expect("write the cookie file");
    println!("seeded {count} sessions into {out}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn propagation(args: &[String]) {
    let [url, prefix, key, app, a, b, count] = args else {
        panic!("propagation REDIS_URL KEY_PREFIX KEY_B64 APP URL_A URL_B COUNT")
    };
    let minter = Minter::new(url, prefix, key, app);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |base: &str, path: &str, cookie: &str| {
        client
            .get(format!("{base}{path}"))
            .header("accept", "application/json")
            .header("cookie", cookie.to_string())
            .send()
    };
    let count: usize = count.parse().expect("COUNT");
    let mut delays = Vec::with_capacity(count);
    for n in 0..count {
        let (_, cookie) = minter.session(n).await;
        let path = format!("/apps/{app}/x");
        // Both instances cache the verification, so only the broadcast can make A refuse.
        for base in [a, b, a, b] {
            assert_eq!(
                get(base, &path, &cookie).await.expect("request").status(),
                200
            );
        }
        let started = Instant::now();
        let out = get(b, "/logout", &cookie).await.expect("sign out");
        assert_eq!(out.status(), 302);
        loop {
            if get(a, &path, &cookie).await.expect("request").status() == 401 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "instance A never refused"
            );
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    println!(
        "propagation over {count} sign-outs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&delays, 0.5).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => seed(&args[1..]).await,
        Some("propagation") => propagation(&args[1..]).await,
        _ => eprintln!("usage: bench_tool seed|propagation ..."),
    }
}
