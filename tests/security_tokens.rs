//! Token forgery: `alg: none`, algorithm confusion, unknown keys, another app's audience, mangled
//! encodings, a future `iat`, someone else's session — each refused with its reason, none able to
//! disturb a real session (only a token a retired key really signed ends its session), and the gateway serves on.

mod common;
use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// The gateway under test signs with this key, so the tests can sign what an attacker who knew
/// only some of the rules would.
const SECRET: &[u8; 32] = b"hubgate-security-tests-key-32-b!";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign_with(
    alg: Algorithm,
    kid: Option<&str>,
    secret: &[u8],
    claims: &serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn claims(sub: &str, sid: &str, aud: &str) -> serde_json::Value {
    serde_json::json!({"sub": sub, "sid": sid, "aud": aud, "iat": now(), "exp": now() + 3600, "groups": ["ops"]})
}

/// The key `k0` that signed before `k1`: retired, so it no longer signs or admits.
const RETIRED_SECRET: &[u8; 32] = b"hubgate-security-tests-old-key-!";

/// Like [`gateway`], with `k0` configured as retired after the signing key.
async fn gateway_with_retired_key() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .tokens(&format!(
            "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"\n[[tokens.keys]]\nid = \"k0\"\nsecret = \"{}\"\nretired = true",
            b64(SECRET),
            b64(RETIRED_SECRET)
        ))
        .start()
}

async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .app(App::new("two", upstream("two").await))
        .tokens(&format!(
            "[[tokens.keys]]\nid = \"k1\"\nsecret = \"{}\"",
            b64(SECRET)
        ))
        .start()
}

/// Sends `token` as the app cookie of `one` together with the session-id cookie `sid`.
async fn try_token(gw: &Gateway, token: &str, sid: &str) -> Page {
    let mut api = gw.browser().api();
    api.set_cookie("hubgate-app-one", token, "/apps/one/");
    api.set_cookie("hubgate-session-id", sid, "/");
    api.get("/apps/one/x").await
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_tokens_are_refused_as_invalid() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let token = alice.cookie("hubgate-app-one").unwrap().value;
    let sid = alice.cookie("hubgate-session-id").unwrap().value;
    let mut bob = gw.browser();
    bob.sign_in_and_open("bob", BOB_PASSWORD, "one").await;
    let bob_sid = bob.cookie("hubgate-session-id").unwrap().value;

    let parts: Vec<&str> = token.split('.').collect();
    let body = claims("alice", &sid, "one");
    let none_header = b64(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    let rs256_header = b64(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let forged = [
        (
            "alg none",
            format!("{none_header}.{}.", b64(body.to_string())),
        ),
        (
            "alg none, real signature",
            format!("{none_header}.{}.{}", parts[1], parts[2]),
        ),
        (
            "alg HS512 with the real secret",
            sign_with(Algorithm::HS512, Some("k1"), SECRET, &body),
        ),
        (
            "alg RS256 header over an HS256 signature",
            format!("{rs256_header}.{}.{}", parts[1], parts[2]),
        ),
        ("no kid", sign_with(Algorithm::HS256, None, SECRET, &body)),
        (
            "another secret",
            sign_with(Algorithm::HS256, Some("k1"), &[9; 32], &body),
        ),
        (
            "another app's audience",
            sign_with(
                Algorithm::HS256,
                Some("k1"),
                SECRET,
                &claims("alice", &sid, "two"),
            ),
        ),
        ("truncated", token[..token.len() - 5].to_string()),
        ("padded", format!("{token}==")),
        (
            "payload padded",
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
        ),
        ("an extra segment", format!("{token}.{}", parts[2])),
        ("a byte more", format!("{token}A")),
        ("huge", format!("{token}{}", "A".repeat(20_000))),
        ("not base64", "!!!.???.***".to_string()),
        (
            "future iat",
            sign_with(
                Algorithm::HS256,
                Some("k1"),
                SECRET,
                &serde_json::json!({
            "sub": "alice", "sid": sid, "aud": "one", "iat": now() + 3600, "exp": now() + 7200, "groups": []}),
            ),
        ),
        (
            "bob's session under alice's name",
            sign_with(
                Algorithm::HS256,
                Some("k1"),
                SECRET,
                &claims("alice", &bob_sid, "one"),
            ),
        ),
    ];
    for (what, forged) in &forged {
        // Under the session-id the token names (alice's, or bob's for the last one).
        let session = if what.starts_with("bob") {
            &bob_sid
        } else {
            &sid
        };
        let page = try_token(&gw, forged, session).await;
        assert_eq!(page.status, 401, "{what}: {}", page.body);
        assert_eq!(page.json()["reason"], "invalid_token", "{what}");
    }
    // Alice's real token under bob's session id: the sid does not match.
    let page = try_token(&gw, &token, &bob_sid).await;
    assert_eq!(page.json()["reason"], "session_mismatch");
    // None of it touched the real sessions.
    alice.accept = JSON;
    bob.accept = JSON;
    assert_eq!(
        alice.get("/apps/one/x").await.json()["headers"]["x-forwarded-user"],
        "alice"
    );
    assert_eq!(
        bob.get("/apps/one/x").await.json()["headers"]["x-forwarded-user"],
        "bob"
    );
    assert_eq!(
        gw.metric("hubgate_sessions_ended_total{reason=\"key_removed\"}")
            .await,
        0.0
    );
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_kid_never_ends_touches_or_renews_a_session() {
    let gw = gateway().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let sid = alice.cookie("hubgate-session-id").unwrap().value;
    alice.accept = JSON;

    // Anyone can make these: no key is needed to write a `kid`. Sent with alice's session-id
    // cookie (as by someone who learnt it), expired so that a verified one would be renewed.
    let expired = serde_json::json!({"sub": "alice", "sid": sid, "aud": "one", "iat": now() - 7200, "exp": now() - 3600, "groups": ["ops"]});
    let forged = sign_with(Algorithm::HS256, Some("k9"), &[9; 32], &expired);
    assert_unverifiable_changes_nothing(&gw, &mut alice, &forged, &sid).await;
    assert_still_serves(&gw, "one").await;
}

/// `forged`, sent with alice's session-id cookie `sid`, is refused as invalid with no cookie set,
/// and alice's session lives on: nothing ended, nothing logged.
async fn assert_unverifiable_changes_nothing(
    gw: &Gateway,
    alice: &mut Browser,
    forged: &str,
    sid: &str,
) {
    for _ in 0..2 {
        let page = try_token(gw, forged, sid).await;
        assert_eq!(
            (page.status, page.json()["reason"].as_str()),
            (401, Some("invalid_token")),
        );
        assert!(page.set_cookies().is_empty(), "{:?}", page.headers);
        assert_eq!(
            alice.get("/apps/one/x").await.status,
            200,
            "alice's session is untouched"
        );
    }
    assert_eq!(
        gw.metric("hubgate_sessions_ended_total{reason=\"key_removed\"}")
            .await,
        0.0
    );
    assert!(
        gw.log_events("session_ended").is_empty(),
        "{}",
        gw.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_key_ends_a_session_only_with_a_token_it_really_signed() {
    let gw = gateway_with_retired_key().await;
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let sid = alice.cookie("hubgate-session-id").unwrap().value;
    alice.accept = JSON;
    // The retired kid written by someone without its key: as unverifiable as any other.
    let forged = sign_with(
        Algorithm::HS256,
        Some("k0"),
        &[9; 32],
        &claims("alice", &sid, "one"),
    );
    assert_unverifiable_changes_nothing(&gw, &mut alice, &forged, &sid).await;

    // A token issued before k0 was retired (the test holds k0's secret, as the gateway does).
    let old = sign_with(
        Algorithm::HS256,
        Some("k0"),
        RETIRED_SECRET,
        &claims("alice", &sid, "one"),
    );
    // Without alice's session-id cookie it ends nothing.
    let page = try_token(&gw, &old, &"B".repeat(43)).await;
    assert_eq!(page.json()["reason"], "key_removed");
    assert_eq!(alice.get("/apps/one/x").await.status, 200);

    let page = try_token(&gw, &old, &sid).await;
    assert_eq!(
        (page.status, page.json()["reason"].as_str()),
        (401, Some("key_removed"))
    );
    let after = alice.get("/apps/one/x").await;
    assert_eq!(
        (after.status, after.json()["reason"].as_str()),
        (401, Some("key_removed"))
    );
    assert_eq!(
        gw.metric_reaches("hubgate_sessions_ended_total{reason=\"key_removed\"}", 1.0)
            .await,
        1.0
    );
    assert_still_serves(&gw, "one").await;
}
