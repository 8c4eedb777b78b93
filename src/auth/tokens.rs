//! App tokens: HS256 JWTs, one per app, keyed by the configured key ring. The first key signs;
//! every key verifies, so a new first key logs nobody out. A retired key (`retired = true`) no
//! longer admits anything, but still checks signatures, so that a token it really signed is
//! recognised and its session ended with `key_removed` — and a token that merely names its `kid`
//! is a forgery like any other.

use std::collections::HashMap;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::{SigningKey, TokenConfig};

/// Tokens this gateway signs are a few hundred bytes. Anything far longer is refused before any
/// base64 or JSON work, so a hostile cookie costs nothing to turn away.
const MAX_TOKEN_LEN: usize = 4096;

/// The claims of an app token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClaims {
    pub sub: String,
    pub sid: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Also a `kid` no configured key has: anyone can write one, so it proves nothing.
    #[error("not a token this gateway issued (malformed, bad signature, wrong algorithm or unknown key)")]
    Invalid,
    #[error("issued for another app")]
    WrongAudience,
    /// Verified, signature and audience, by a retired key: its claims can be trusted to name the
    /// session it was issued for, which ends.
    #[error("signed by a retired key")]
    KeyRemoved(Box<AppClaims>),
}

pub struct KeyRing {
    signing_id: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    /// Retired keys: they verify only to recognise their own tokens, which are then refused.
    retired: HashMap<String, DecodingKey>,
    /// Keys for the hub-login cookie, derived from each signing key in the same order.
    hub_cookie_keys: Vec<cookie::Key>,
}

/// 32 random bytes: a fresh key (`hubgate gen-key`, or when no key is configured).
pub fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

impl KeyRing {
    /// `keys` is never empty: the config makes a random key when none is configured.
    pub fn new(keys: &[SigningKey]) -> Self {
        Self::with_retired(keys, &[])
    }

    pub fn from_config(tokens: &TokenConfig) -> Self {
        Self::with_retired(&tokens.keys, &tokens.retired_keys)
    }

    /// `retired` keys never sign, never admit, and never open a hub-login cookie.
    pub fn with_retired(keys: &[SigningKey], retired: &[SigningKey]) -> Self {
        let first = &keys[0];
        let decoding = |keys: &[SigningKey]| {
            keys.iter()
                .map(|k| (k.id.clone(), DecodingKey::from_secret(&k.secret)))
                .collect()
        };
        KeyRing {
            signing_id: first.id.clone(),
            signing: EncodingKey::from_secret(&first.secret),
            verifying: decoding(keys),
            retired: decoding(retired),
            // HKDF from each signing key: rotating [[tokens.keys]] rotates these too.
            hub_cookie_keys: keys
                .iter()
                .map(|k| cookie::Key::derive_from(&k.secret))
                .collect(),
        }
    }

    pub fn sign(&self, claims: &AppClaims) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_id.clone());
        // Serialising plain strings and numbers and HMAC-signing them cannot fail.
        jsonwebtoken::encode(&header, claims, &self.signing).unwrap_or_default()
    }

    /// Checks the signature (by `kid`) and that the token was issued for `app`. Expiry is left to
    /// the caller: an expired token of a live session is renewed, not refused.
    ///
    /// The algorithm is fixed to HS256 whatever the header says (`alg: none` and algorithm
    /// confusion are refused). A `kid` no key has is `Invalid`, and so is a retired key's `kid`
    /// over a signature that key did not make: only what a key really signed may change state.
    pub fn verify(&self, token: &str, app: &str) -> Result<AppClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        if let Some(key) = self.verifying.get(&kid) {
            return decode(token, key, app);
        }
        let key = self.retired.get(&kid).ok_or(TokenError::Invalid)?;
        Err(TokenError::KeyRemoved(Box::new(decode(token, key, app)?)))
    }

    pub fn hub_cookie_keys(&self) -> &[cookie::Key] {
        &self.hub_cookie_keys
    }
}

/// Signature by `key`, audience `app`, and the claims' shape; expiry is the caller's.
fn decode(token: &str, key: &DecodingKey, app: &str) -> Result<AppClaims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_audience(&[app]);
    validation.set_required_spec_claims(&["sub", "aud", "exp"]);
    match jsonwebtoken::decode::<AppClaims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidAudience) => Err(TokenError::WrongAudience),
        Err(_) => Err(TokenError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn key(id: &str, byte: u8) -> SigningKey {
        SigningKey {
            id: id.into(),
            secret: vec![byte; 32],
        }
    }

    fn claims(aud: &str) -> AppClaims {
        AppClaims {
            sub: "alice".into(),
            sid: "s".repeat(43),
            aud: aud.into(),
            iat: 1_000,
            exp: 2_000,
            groups: vec!["ops".into()],
        }
    }

    #[test]
    fn a_token_verifies_for_its_own_app_only() {
        let ring = KeyRing::new(&[key("k1", 1)]);
        let token = ring.sign(&claims("grafana"));
        assert_eq!(ring.verify(&token, "grafana"), Ok(claims("grafana")));
        assert_eq!(
            ring.verify(&token, "notebook"),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn rotation_keeps_old_tokens_until_their_key_is_retired() {
        let old = KeyRing::new(&[key("k1", 1)]).sign(&claims("a"));
        let rotated = KeyRing::new(&[key("k2", 2), key("k1", 1)]);
        assert!(rotated.verify(&old, "a").is_ok());
        let fresh = rotated.sign(&claims("a"));
        assert!(fresh.len() > 20);
        let retired = KeyRing::with_retired(&[key("k2", 2)], &[key("k1", 1)]);
        assert_eq!(
            retired.verify(&old, "a"),
            Err(TokenError::KeyRemoved(Box::new(claims("a"))))
        );
        assert_eq!(retired.verify(&old, "b"), Err(TokenError::WrongAudience));
        assert!(retired.verify(&fresh, "a").is_ok());
        // The retired kid over a signature it did not make is a forgery; once the key is gone
        // from the config altogether, its tokens are unverifiable, so invalid too.
        let forged = KeyRing::new(&[key("k1", 9)]).sign(&claims("a"));
        assert_eq!(retired.verify(&forged, "a"), Err(TokenError::Invalid));
        let removed = KeyRing::new(&[key("k2", 2)]);
        assert_eq!(removed.verify(&old, "a"), Err(TokenError::Invalid));
        // Nor does a retired key open hub-login cookies: only the active keys are used there.
        assert_eq!(retired.hub_cookie_keys().len(), 1);
    }

    #[test]
    fn forged_and_mangled_tokens_are_invalid() {
        let ring = KeyRing::new(&[key("k1", 1)]);
        let token = ring.sign(&claims("a"));
        let other_secret = KeyRing::new(&[key("k1", 9)]).sign(&claims("a"));
        assert_eq!(ring.verify(&other_secret, "a"), Err(TokenError::Invalid));
        assert_eq!(
            ring.verify(&token[..token.len() - 3], "a"),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            ring.verify(&format!("{token}xx"), "a"),
            Err(TokenError::Invalid)
        );
        assert_eq!(ring.verify("", "a"), Err(TokenError::Invalid));
        assert_eq!(ring.verify("a.b.c", "a"), Err(TokenError::Invalid));
        // alg "none" with the same claims and no signature.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let body = b64.encode(serde_json::to_vec(&claims("a")).unwrap());
        assert_eq!(
            ring.verify(&format!("{header}.{body}."), "a"),
            Err(TokenError::Invalid)
        );
        let hs512 = b64.encode(r#"{"alg":"HS512","typ":"JWT","kid":"k1"}"#);
        assert_eq!(
            ring.verify(&format!("{hs512}.{body}.AAAA"), "a"),
            Err(TokenError::Invalid)
        );
    }

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn algorithm_confusion_unknown_keys_and_odd_encodings_are_refused() {
        let ring = KeyRing::new(&[key("k1", 1)]);
        let token = ring.sign(&claims("a"));
        let parts: Vec<&str> = token.split('.').collect();
        let body = b64(serde_json::to_vec(&claims("a")).unwrap());
        for alg in ["none", "None", "HS384", "RS256", "ES256", "EdDSA", "PS256"] {
            let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"k1"}}"#));
            for sig in ["", parts[2], "AAAA"] {
                assert_eq!(
                    ring.verify(&format!("{header}.{body}.{sig}"), "a"),
                    Err(TokenError::Invalid),
                    "{alg}"
                );
            }
        }
        // No kid at all: not ours.
        let no_kid = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
        assert_eq!(
            ring.verify(&format!("{no_kid}.{body}.{}", parts[2]), "a"),
            Err(TokenError::Invalid)
        );
        // An unknown kid proves nothing: anyone can write one.
        let unknown = b64(r#"{"alg":"HS256","typ":"JWT","kid":"nope"}"#);
        assert_eq!(
            ring.verify(&format!("{unknown}.{body}.{}", parts[2]), "a"),
            Err(TokenError::Invalid)
        );
        // Padded base64, whitespace, extra segments, a huge token: all refused, none panics.
        for bad in [
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
            format!(" {token}"),
            format!("{token}.x"),
            format!("{}.{}", parts[0], parts[1]),
            format!("{}..{}", parts[0], parts[2]),
            format!("{token}{}", "A".repeat(MAX_TOKEN_LEN)),
            "..".into(),
            "\u{0}".into(),
        ] {
            assert_eq!(ring.verify(&bad, "a"), Err(TokenError::Invalid), "{bad}");
        }
        // The signature is over the exact bytes: an equivalent re-encoding of the claims is refused.
        let reordered = b64(
            r#"{"aud":"a","sub":"alice","sid":"sssssssssssssssssssssssssssssssssssssssssss","iat":1000,"exp":2000,"groups":["ops"]}"#,
        );
        assert_eq!(
            ring.verify(&format!("{}.{reordered}.{}", parts[0], parts[2]), "a"),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn claims_of_the_wrong_shape_are_refused_even_when_signed() {
        let ring = KeyRing::new(&[key("k1", 1)]);
        let secret = EncodingKey::from_secret(&[1; 32]);
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        for body in [
            serde_json::json!({"sub":"alice","sid":"s","aud":["a","b"],"iat":1,"exp":2}),
            serde_json::json!({"sub":"alice","sid":"s","aud":"a","iat":-1,"exp":2}),
            serde_json::json!({"sub":"alice","sid":"s","aud":"a","iat":1}),
            serde_json::json!({"sub":"alice","aud":"a","iat":1,"exp":2}),
            serde_json::json!({"sub":7,"sid":"s","aud":"a","iat":1,"exp":2}),
        ] {
            let token = jsonwebtoken::encode(&header, &body, &secret).unwrap();
            assert_eq!(ring.verify(&token, "a"), Err(TokenError::Invalid), "{body}");
        }
    }
}
