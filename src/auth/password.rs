//! Passwords: argon2id hashes, verified on a blocking thread. An unknown user is checked against a
//! dummy hash with the same parameters, so the answer takes as long as for a real user and user
//! names cannot be probed by timing.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// Argon2 verifications run by this process, for known and unknown users alike.
static CHECKS_RUN: AtomicU64 = AtomicU64::new(0);

/// How many argon2 verifications this process has run: the sign-in failure log line carries it,
/// so an operator (and a test) can count that an unknown user costs exactly one, like a known one.
pub fn checks_run() -> u64 {
    CHECKS_RUN.load(Ordering::Relaxed)
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
    CHECKS_RUN.fetch_add(1, Ordering::Relaxed);
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

    #[test]
    fn an_unknown_user_runs_argon2_with_the_same_parameters() {
        let known = hash("x").unwrap();
        let params = |phc: &str| phc.split('$').nth(3).map(str::to_string);
        assert_eq!(params(dummy_hash()), params(&known));
        let before = checks_run();
        assert!(!verify(None, "guess"));
        assert!(checks_run() > before, "the dummy hash was not checked");
    }
}
