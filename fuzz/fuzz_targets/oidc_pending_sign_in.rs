//! The `<prefix>-oidc` cookie, which carries one sign-in's state, nonce and PKCE verifier through
//! the browser: whatever a browser sends back, only a value the gateway sealed opens. The seeds
//! hold one sealed value; any other that opens would be a forgery of AES-GCM.
#![no_main]

use std::sync::LazyLock;

use hubgate::auth::tokens::KeyRing;
use hubgate::config::SigningKey;
use hubgate::oidc::flow::PendingSignIn;
use hubgate::time::Timestamp;
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    KeyRing::new(&[SigningKey {
        id: "k1".into(),
        secret: b"hubgate-fuzz-key-0123456789abcdef".to_vec(),
    }])
});

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(pending) = PendingSignIn::open(&RING, "hubgate-oidc", value, Timestamp(1_000)) {
        // Only the seed was ever sealed: started at 0 for provider "corp".
        assert_eq!(pending.provider, "corp", "opened something never sealed: {value:?}");
        assert_eq!(pending.started, 0);
    }
});
