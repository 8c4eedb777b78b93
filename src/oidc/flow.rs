//! One sign-in at a provider, from the button to the callback: `state` (ties the callback to
//! this browser's start), `nonce` (ties the ID token to it) and the PKCE verifier (so a stolen
//! code is useless to anyone else), with where to go afterwards. Kept in a short-lived cookie at
//! the hub path, encrypted and authenticated like the hub-login cookie, so no store is needed and
//! any instance can take the callback.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::hub_login;
use crate::auth::tokens::KeyRing;
use crate::time::Timestamp;

/// Long enough to type a password and pass a second factor at the provider.
pub const SIGN_IN_TIME: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    /// Milliseconds since the epoch.
    pub started: u64,
}

fn random_text() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl PendingSignIn {
    pub fn begin(provider: &str, next: &str, now: Timestamp) -> Self {
        PendingSignIn {
            provider: provider.to_string(),
            state: random_text(),
            nonce: random_text(),
            // 43 characters of base64url: within RFC 7636's 43–128 unreserved characters.
            verifier: random_text(),
            next: next.to_string(),
            started: now.0,
        }
    }

    /// The PKCE `code_challenge` for S256.
    pub fn challenge(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(self.verifier.as_bytes()))
    }

    pub fn seal(&self, keys: &KeyRing, cookie_name: &str) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hub_login::seal_text(keys, cookie_name, &json)
    }

    /// The sign-in a cookie value holds, if a configured key opens it and it has not run out.
    pub fn open(keys: &KeyRing, cookie_name: &str, value: &str, now: Timestamp) -> Option<Self> {
        let json = hub_login::open_text(keys, cookie_name, value)?;
        let pending: PendingSignIn = serde_json::from_str(&json).ok()?;
        (now.since(Timestamp(pending.started)) < SIGN_IN_TIME).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKey;

    #[test]
    fn a_sealed_sign_in_opens_until_it_runs_out() {
        let keys = KeyRing::new(&[SigningKey {
            id: "k1".into(),
            secret: vec![7; 32],
        }]);
        let pending = PendingSignIn::begin("corp", "/apps/a/", Timestamp(1_000));
        assert_ne!(pending.state, pending.nonce);
        assert_eq!(pending.challenge().len(), 43);
        let sealed = pending.seal(&keys, "hubgate-oidc");
        assert!(!sealed.contains(&pending.verifier));
        assert_eq!(
            PendingSignIn::open(&keys, "hubgate-oidc", &sealed, Timestamp(2_000)),
            Some(pending.clone())
        );
        assert_eq!(
            PendingSignIn::open(&keys, "hubgate-oidc", &sealed, Timestamp(1_000 + 600_000)),
            None
        );
        assert_eq!(
            PendingSignIn::open(&keys, "other-name", &sealed, Timestamp(2_000)),
            None
        );
    }
}
