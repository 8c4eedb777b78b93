//! The hub-login cookie: the session id, encrypted and authenticated with AES-GCM (the `cookie`
//! crate's private jar) under a key derived from the signing key. It proves sign-in to the hub
//! only: it is scoped to the hub's path, so apps never receive it.

use cookie::{Cookie, CookieJar};

use crate::auth::tokens::KeyRing;
use crate::session::SessionId;

pub fn seal(keys: &KeyRing, cookie_name: &str, id: &SessionId) -> String {
    seal_text(keys, cookie_name, id.as_str())
}

/// The session id inside a hub-login cookie value, if any configured key opens it.
pub fn open(keys: &KeyRing, cookie_name: &str, value: &str) -> Option<SessionId> {
    open_text(keys, cookie_name, value).and_then(|text| SessionId::parse(&text))
}

/// Encrypts and authenticates `text` as the value of the cookie `cookie_name` (bound to that
/// name): for any hub cookie whose content the browser must neither read nor change.
pub fn seal_text(keys: &KeyRing, cookie_name: &str, text: &str) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(&keys.hub_cookie_keys()[0])
        .add(Cookie::new(cookie_name.to_string(), text.to_string()));
    jar.get(cookie_name)
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

/// What [`seal_text`] sealed, if any configured key opens it.
pub fn open_text(keys: &KeyRing, cookie_name: &str, value: &str) -> Option<String> {
    keys.hub_cookie_keys().iter().find_map(|key| {
        let jar = CookieJar::new();
        let sealed = Cookie::new(cookie_name.to_string(), value.to_string());
        let opened = jar.private(key).decrypt(sealed)?;
        Some(opened.value().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKey;

    fn ring(keys: &[(&str, u8)]) -> KeyRing {
        let keys: Vec<SigningKey> = keys
            .iter()
            .map(|(id, b)| SigningKey {
                id: id.to_string(),
                secret: vec![*b; 32],
            })
            .collect();
        KeyRing::new(&keys)
    }

    #[test]
    fn sealed_ids_open_with_current_and_older_keys_only() {
        let id = SessionId::generate();
        let sealed = seal(&ring(&[("k1", 1)]), "hubgate-hub-login", &id);
        assert!(!sealed.contains(id.as_str()), "the id must not be readable");
        assert_eq!(
            open(&ring(&[("k1", 1)]), "hubgate-hub-login", &sealed),
            Some(id.clone())
        );
        assert_eq!(
            open(&ring(&[("k2", 2), ("k1", 1)]), "hubgate-hub-login", &sealed),
            Some(id)
        );
        assert_eq!(
            open(&ring(&[("k2", 2)]), "hubgate-hub-login", &sealed),
            None
        );
        // Bound to its name: the same value under another cookie name does not open.
        assert_eq!(open(&ring(&[("k1", 1)]), "other", &sealed), None);
        for junk in ["", "abc", "%%%", &"A".repeat(4096)] {
            assert_eq!(open(&ring(&[("k1", 1)]), "hubgate-hub-login", junk), None);
        }
    }
}
