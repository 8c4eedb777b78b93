//! Passwords: argon2id hashes, verified on a blocking thread. An unknown user is checked against a
//! dummy hash with the same parameters, so the answer takes as long as for a real user and user
//! names cannot be probed by timing.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("hubgate dummy password for unknown users").unwrap_or_default())
}

/// Verifies `password` against `phc` (or the dummy hash when there is no such user). Blocking:
/// call it through [`verify_off_thread`] from async code.
pub fn verify(phc: Option<&str>, password: &str) -> bool {
    let target = phc.unwrap_or_else(|| dummy_hash());
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && phc.is_some()
}

pub async fn verify_off_thread(phc: Option<String>, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify(phc.as_deref(), &password))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_unknown_users_never_pass() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(Some(&phc), "correct horse"));
        assert!(!verify(Some(&phc), "wrong"));
        assert!(!verify(None, "hubgate dummy password for unknown users"));
        assert!(!verify(Some("not a hash"), "x"));
    }
}
