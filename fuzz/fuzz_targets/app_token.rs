//! App token decoding: no input panics, and no input is accepted except what the key signed. The
//! seeds hold tokens signed with the keys below for exactly one set of claims (once for app `one`,
//! once for `two`), so any token the ring accepts must carry those claims — anything else would
//! be a forgery.
#![no_main]

use std::sync::LazyLock;

use hubgate::auth::tokens::{AppClaims, KeyRing};
use hubgate::config::SigningKey;
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    KeyRing::new(&[
        SigningKey {
            id: "k1".into(),
            secret: b"hubgate-fuzz-key-0123456789abcdef".to_vec(),
        },
        SigningKey {
            id: "k0".into(),
            secret: b"hubgate-fuzz-old-key-0123456789ab".to_vec(),
        },
    ])
});

fn signed_claims() -> AppClaims {
    AppClaims {
        sub: "alice".into(),
        sid: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        aud: String::new(),
        iat: 1_700_000_000,
        exp: 1_700_003_600,
        groups: vec!["ops".into()],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for app in ["one", "two"] {
        if let Ok(claims) = RING.verify(token, app) {
            // The seeds sign these claims once for each app; nothing else was ever signed.
            let signed = AppClaims {
                aud: app.into(),
                ..signed_claims()
            };
            assert_eq!(claims, signed, "accepted claims nobody signed: {token:?}");
        }
    }
});
