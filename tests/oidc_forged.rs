//! ID tokens and logout tokens the test forges itself, served through a discovery document and a
//! key set of the test's own making (axum, on a free loopback port): every check a token must
//! pass fails on its own, with a refusal and a log line naming it, and nothing stored changes.
//! The real provider's flows are in tests/oidc.rs.

mod common;
use common::*;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const CLIENT_SECRET: &str = "forged-test-client-secret-0123456789";
const BACKCHANNEL: &str = "http://schemas.openid.net/event/backchannel-logout";

/// An RSA key made by openssl, as the PKCS#1 DER to sign with and the JWK to publish.
struct RsaKey {
    der: Vec<u8>,
    jwk: Value,
}

fn rsa_key(kid: &str) -> RsaKey {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let modulus = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .expect("openssl");
    let hex = String::from_utf8(modulus.stdout).unwrap();
    let hex = hex.trim().trim_start_matches("Modulus=");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let der_path = dir.path().join("key.der");
    let der = std::process::Command::new("openssl")
        .args(["rsa", "-traditional", "-outform", "DER", "-in"])
        .arg(&path)
        .arg("-out")
        .arg(&der_path)
        .output()
        .expect("openssl");
    assert!(der.status.success(), "{der:?}");
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    RsaKey {
        der: std::fs::read(&der_path).unwrap(),
        jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(&bytes), "e": "AQAB"}),
    }
}

#[derive(Default)]
struct Forger {
    /// What the token endpoint answers with next.
    id_token: String,
    jwks: Value,
    jwks_fetches: usize,
}

#[derive(Clone)]
struct Fake {
    issuer: String,
    forger: Arc<Mutex<Forger>>,
}

async fn discovery(State(fake): State<Fake>) -> Json<Value> {
    let i = &fake.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/auth"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
    }))
}

async fn jwks(State(fake): State<Fake>) -> Json<Value> {
    let mut forger = fake.forger.lock().unwrap();
    forger.jwks_fetches += 1;
    Json(forger.jwks.clone())
}

async fn token(State(fake): State<Fake>) -> Json<Value> {
    let id_token = fake.forger.lock().unwrap().id_token.clone();
    Json(json!({"id_token": id_token, "token_type": "Bearer"}))
}

struct Setting {
    fake: Fake,
    key: RsaKey,
    gw: Gateway,
}

async fn setting() -> Setting {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let key = rsa_key("test");
    let fake = Fake {
        issuer: issuer.clone(),
        forger: Arc::new(Mutex::new(Forger {
            jwks: json!({"keys": [key.jwk]}),
            ..Forger::default()
        })),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .hub(&format!(
            "[[hub.providers]]\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = \"{issuer}\"\nclient_id = \"hubgate\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
        ))
        .start();
    for _ in 0..200 {
        if gw.browser().get("/hub/oidc/corp/start").await.status == 302 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Setting { fake, key, gw }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign_rs256(key: &RsaKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&key.der)).unwrap()
}

fn query_value(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} not in {url}"))
}

impl Setting {
    fn good_claims(&self, nonce: &str) -> Value {
        json!({
            "iss": self.fake.issuer, "aud": "hubgate", "sub": "s-alice", "preferred_username": "alice",
            "email": "alice@example.com", "groups": ["ops"], "sid": "op-session-1",
            "iat": now(), "exp": now() + 300, "nonce": nonce,
        })
    }

    /// Starts a sign-in, lets `forge` make the ID token from the sign-in's nonce, and calls the
    /// callback as the provider's redirect would. Returns the callback's answer and the browser.
    async fn attempt(&self, forge: impl Fn(&Setting, &str) -> String) -> (Page, Browser) {
        let mut browser = self.gw.browser();
        let start = browser.get("/hub/oidc/corp/start?next=/apps/one/").await;
        assert_eq!(start.status, 302, "{}", start.body);
        let authorization = start.location().unwrap().to_string();
        let nonce = query_value(&authorization, "nonce");
        let state = query_value(&authorization, "state");
        self.fake.forger.lock().unwrap().id_token = forge(self, &nonce);
        let callback = format!("/hub/oidc/corp/callback?code=c&state={state}");
        (browser.get(&callback).await, browser)
    }

    async fn post_logout_token(&self, token: &str) -> Page {
        self.gw
            .browser()
            .api()
            .post_form(
                "/hub/oidc/corp/backchannel-logout",
                &[("logout_token", token)],
            )
            .await
    }

    fn logout_claims(&self, jti: &str) -> Value {
        json!({"iss": self.fake.issuer, "aud": "hubgate", "iat": now(), "jti": jti,
               "sid": "op-session-1", "events": {BACKCHANNEL: {}}})
    }
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_id_token_check_refuses_on_its_own_and_leaves_no_session() {
    let s = setting().await;
    let other_key = rsa_key("test");
    type Forge = fn(&Setting, &str) -> String;
    let cases: Vec<(&str, Forge, &str)> = vec![
        (
            "wrong aud",
            |s, n| {
                let mut c = s.good_claims(n);
                c["aud"] = json!("someone-else");
                sign_rs256(&s.key, "test", &c)
            },
            "aud",
        ),
        (
            "wrong iss",
            |s, n| {
                let mut c = s.good_claims(n);
                c["iss"] = json!("http://evil.example");
                sign_rs256(&s.key, "test", &c)
            },
            "iss",
        ),
        (
            "expired",
            |s, n| {
                let mut c = s.good_claims(n);
                c["exp"] = json!(now() - 3600);
                sign_rs256(&s.key, "test", &c)
            },
            "exp",
        ),
        (
            "no iat",
            |s, n| {
                let mut c = s.good_claims(n);
                c.as_object_mut().unwrap().remove("iat");
                sign_rs256(&s.key, "test", &c)
            },
            "iat",
        ),
        (
            "wrong nonce",
            |s, _| sign_rs256(&s.key, "test", &s.good_claims("not-this-sign-ins")),
            "nonce",
        ),
        ("alg none", |s, n| unsigned(&s.good_claims(n)), "malformed"),
        (
            "HS256 with the client secret",
            |s, n| hs256(&s.good_claims(n), CLIENT_SECRET.as_bytes()),
            "alg",
        ),
        (
            "several audiences, no azp",
            |s, n| {
                let mut c = s.good_claims(n);
                c["aud"] = json!(["hubgate", "other"]);
                sign_rs256(&s.key, "test", &c)
            },
            "azp",
        ),
        ("garbage", |_, _| "not.a.token".into(), "malformed"),
    ];
    for (name, forge, check) in cases {
        let (page, browser) = s.attempt(forge).await;
        assert_eq!(page.status, 401, "{name}: {}", page.body);
        assert!(
            browser.cookie("hubgate-session-id").is_none(),
            "{name}: a session began"
        );
        assert!(
            browser.cookie("hubgate-hub-login").is_none(),
            "{name}: a session began"
        );
        let log = s.gw.log_text();
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("oidc_login_refused"))
            .unwrap_or_default();
        assert!(
            line.contains(check),
            "{name}: the log line names {check}: {line}"
        );
    }
    // Signed by a key that is not the provider's, under the provider's key id.
    let forged_der = other_key.der;
    let (page, _) = s
        .attempt(move |s, n| {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("test".into());
            jsonwebtoken::encode(
                &header,
                &s.good_claims(n),
                &EncodingKey::from_rsa_der(&forged_der),
            )
            .unwrap()
        })
        .await;
    assert_eq!(page.status, 401);
    assert!(s.gw.log_text().contains("bad signature"));
    assert_eq!(
        s.gw.metric("hubgate_oidc_logins_total{provider=\"corp\",result=\"error\"}")
            .await,
        10.0
    );
    // And the well-formed token signs in: the refusals above were the checks, not the fake.
    let (page, _) = s
        .attempt(|s, n| sign_rs256(&s.key, "test", &s.good_claims(n)))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_key_ids_fetch_the_keys_again_at_most_once_a_minute() {
    let s = setting().await;
    assert_eq!(
        s.fake.forger.lock().unwrap().jwks_fetches,
        1,
        "discovery fetched the keys"
    );
    for kid in ["made-up-1", "made-up-2", "made-up-3"] {
        let (page, _) = s
            .attempt(move |s, n| sign_rs256(&s.key, kid, &s.good_claims(n)))
            .await;
        assert_eq!(page.status, 401);
    }
    assert_eq!(
        s.fake.forger.lock().unwrap().jwks_fetches,
        2,
        "three unknown key ids within a minute cause one refetch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_tokens_are_verified_and_used_once_and_bad_ones_change_nothing() {
    let s = setting().await;
    let (page, mut browser) = s
        .attempt(|s, n| sign_rs256(&s.key, "test", &s.good_claims(n)))
        .await;
    assert_eq!(page.status, 303);
    browser.follow(page.location().unwrap()).await;
    browser.accept = JSON;
    assert_eq!(browser.get("/apps/one/x").await.status, 200);

    type Bad = fn(&Setting) -> String;
    let bad: Vec<(&str, Bad)> = vec![
        ("with a nonce", |s| {
            let mut c = s.logout_claims("b1");
            c["nonce"] = json!("n");
            sign_rs256(&s.key, "test", &c)
        }),
        ("no event", |s| {
            let mut c = s.logout_claims("b2");
            c["events"] = json!({});
            sign_rs256(&s.key, "test", &c)
        }),
        ("wrong aud", |s| {
            let mut c = s.logout_claims("b3");
            c["aud"] = json!("other");
            sign_rs256(&s.key, "test", &c)
        }),
        ("no jti", |s| {
            let mut c = s.logout_claims("b4");
            c.as_object_mut().unwrap().remove("jti");
            sign_rs256(&s.key, "test", &c)
        }),
        ("no sub or sid", |s| {
            let mut c = s.logout_claims("b5");
            c.as_object_mut().unwrap().remove("sid");
            sign_rs256(&s.key, "test", &c)
        }),
        ("HS256", |s| {
            hs256(&s.logout_claims("b6"), CLIENT_SECRET.as_bytes())
        }),
        ("unsigned", |s| unsigned(&s.logout_claims("b7"))),
        ("an ID token", |s| {
            sign_rs256(&s.key, "test", &s.good_claims("n"))
        }),
        ("garbage", |_| "%%%".into()),
    ];
    for (name, token) in bad {
        let page = s.post_logout_token(&token(&s)).await;
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert_eq!(page.json()["error"], "invalid_request", "{name}");
    }
    let missing =
        s.gw.browser()
            .api()
            .post_form("/hub/oidc/corp/backchannel-logout", &[])
            .await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        browser.get("/apps/one/x").await.status,
        200,
        "no bad token ended the session"
    );

    let good = sign_rs256(&s.key, "test", &s.logout_claims("good-1"));
    let page = s.post_logout_token(&good).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["ended"], 1);
    assert_eq!(
        browser.get("/apps/one/x").await.json()["reason"],
        "session_revoked"
    );
    let replay = s.post_logout_token(&good).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("jti"), "{}", replay.body);
    // A valid token for a provider session nobody has here.
    let mut unknown = s.logout_claims("good-2");
    unknown["sid"] = json!("nobody");
    assert_eq!(
        s.post_logout_token(&sign_rs256(&s.key, "test", &unknown))
            .await
            .json()["ended"],
        0
    );
    for (result, count) in [("ended", 1.0), ("unknown", 1.0), ("invalid", 11.0)] {
        assert_eq!(
            s.gw.metric(&format!(
                "hubgate_backchannel_logouts_total{{provider=\"corp\",result=\"{result}\"}}"
            ))
            .await,
            count,
            "{result}"
        );
    }
}
