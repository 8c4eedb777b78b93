//! Deciding who may pass: app tokens (JWTs) and the key ring, the gateway's cookies, the
//! encrypted hub-login cookie, the verification cache, and the verifier that combines them.

pub mod cache;
pub mod cookies;
pub mod hub_login;
pub mod next;
pub mod password;
pub mod tokens;
pub mod verify;

use std::sync::Arc;

/// Who a request is from, as the apps are told through the identity headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub email: String,
}

impl Identity {
    pub fn shared(user: &str, groups: &[String], email: &str) -> Arc<Identity> {
        Arc::new(Identity {
            user: user.to_string(),
            groups: groups.to_vec(),
            email: email.to_string(),
        })
    }
}
