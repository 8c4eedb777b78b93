//! Secrets: keys shorter than 32 bytes are refused by `hubgate check`, and no key, admin token,
//! password, session id or token ever appears in what the gateway prints or logs.

mod common;
use base64::Engine;
use common::*;
use std::process::Command;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const USERS: &str = "[[users]]\nname = \"alice\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$zf0gDhaKy554UXxOTEGLXA$iHgRyANUxF5FCkjI9YwbbemXA/ENpCJit2PYcTq+ddE\"\n";

/// Runs `hubgate check` on a config with the given `[tokens]` and `[hub]` lines and environment.
fn check(tokens: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.toml"), USERS).unwrap();
    let config = format!(
        "[hub]\nusers_file = \"users.toml\"\n[tokens]\n{tokens}\n[[apps]]\nname = \"one\"\nprefix = \"/apps/one\"\nupstreams = [\"127.0.0.1:1\"]\n"
    );
    std::fs::write(dir.path().join("gateway.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .args([
            "check",
            "-c",
            dir.path().join("gateway.toml").to_str().unwrap(),
        ])
        .env_remove("HUBGATE_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn check_refuses_keys_shorter_than_32_bytes_without_printing_them() {
    let short = b64(b"only-thirty-one-bytes-long-key!");
    assert_eq!(short.len(), 42);
    let (code, text) = check(
        &format!("[[tokens.keys]]\nid = \"k1\"\nsecret = \"{short}\""),
        &[],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("error: tokens.keys[0].secret: the key is 31 bytes; at least 32 are needed"),
        "{text}"
    );
    assert!(!text.contains(&short), "the key was printed: {text}");

    let (code, text) = check(
        "[[tokens.keys]]\nid = \"k1\"\nsecret_env = \"HUBGATE_TEST_SHORT_KEY\"",
        &[("HUBGATE_TEST_SHORT_KEY", &short)],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("tokens.keys[0].secret_env: the key is 31 bytes"),
        "{text}"
    );
    assert!(!text.contains(&short), "{text}");

    // A passphrase instead of a key: refused, and not echoed either.
    let phrase = "correct horse battery staple and more words";
    let (code, text) = check(
        &format!("[[tokens.keys]]\nid = \"k1\"\nsecret = \"{phrase}\""),
        &[],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains(phrase), "{text}");

    // An admin token that is too short is refused without being printed.
    let (code, text) = check("", &[("HUBGATE_ADMIN_TOKEN", "tiny-token-9")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("admin_token_env"), "{text}");
    assert!(!text.contains("tiny-token-9"), "{text}");

    // 32 bytes is enough.
    let good = b64(b"exactly-thirty-two-bytes-long-k!");
    let (code, text) = check(
        &format!("[[tokens.keys]]\nid = \"k1\"\nsecret = \"{good}\""),
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(&good), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_tokens_and_passwords_never_reach_the_log() {
    let key = b64(b"a-signing-key-nobody-may-log-32b");
    let admin = "admin-token-that-must-never-be-logged";
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .tokens("[[tokens.keys]]\nid = \"k1\"\nsecret_env = \"HUBGATE_TEST_KEY\"")
        .env("HUBGATE_TEST_KEY", &key)
        .env("HUBGATE_ADMIN_TOKEN", admin)
        .start();
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    let wrong_password = "a-wrong-password-that-must-not-be-logged";
    let failed = gw
        .browser()
        .sign_in_to("alice", wrong_password, false, "/")
        .await;
    assert_eq!(failed.status, 401);
    let mut admin_client = gw.browser().api();
    for token in ["not-the-admin-token-at-all-xx", admin] {
        let bearer = format!("Bearer {token}");
        let page = admin_client
            .request(
                reqwest::Method::POST,
                "/hub/api/admin/revoke",
                &[("authorization", bearer.as_str())],
                Some("{\"user\":\"bob\"}".into()),
            )
            .await;
        assert_eq!(
            page.status,
            if token == admin { 200 } else { 401 },
            "{}",
            page.body
        );
    }
    alice.accept = JSON;
    assert_eq!(alice.get("/apps/one/x?token=in-a-query").await.status, 200);

    let log = gw.log_text();
    assert!(log.contains("signed in"), "the log is being written: {log}");
    let secrets = [
        ("signing key", key.clone()),
        ("admin token", admin.to_string()),
        ("password", ALICE_PASSWORD.to_string()),
        ("wrong password", wrong_password.to_string()),
        (
            "session id",
            alice.cookie("hubgate-session-id").unwrap().value,
        ),
        (
            "hub-login cookie",
            alice.cookie("hubgate-hub-login").unwrap().value,
        ),
        ("app token", alice.cookie("hubgate-app-one").unwrap().value),
    ];
    for (what, secret) in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the {what} is in the log:\n{log}"
        );
    }
    assert_still_serves(&gw, "one").await;
}
