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

/// Who a request is from, as the apps are told through the identity headers. One allocation
/// holding the user, the email and the comma-joined groups (the `X-Forwarded-Groups` value; group
/// names cannot contain commas): a cached session costs little memory and the headers cost no
/// formatting per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    text: Box<str>,
    user_len: usize,
    email_len: usize,
}

impl Identity {
    pub fn new(user: &str, groups: &[String], email: &str) -> Identity {
        let mut text = String::with_capacity(
            user.len() + email.len() + groups.iter().map(|g| g.len() + 1).sum::<usize>(),
        );
        text.push_str(user);
        text.push_str(email);
        for (i, group) in groups.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(group);
        }
        Identity {
            text: text.into_boxed_str(),
            user_len: user.len(),
            email_len: email.len(),
        }
    }

    pub fn shared(user: &str, groups: &[String], email: &str) -> Arc<Identity> {
        Arc::new(Identity::new(user, groups, email))
    }

    pub fn user(&self) -> &str {
        &self.text[..self.user_len]
    }

    pub fn email(&self) -> &str {
        &self.text[self.user_len..self.user_len + self.email_len]
    }

    /// The groups, comma-separated.
    pub fn groups_joined(&self) -> &str {
        &self.text[self.user_len + self.email_len..]
    }

    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.groups_joined().split(',').filter(|g| !g.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::Identity;

    #[test]
    fn identity_parts_come_back_as_given() {
        let id = Identity::new("ana", &["staff".into(), "ops".into()], "ana@example.com");
        assert_eq!(id.user(), "ana");
        assert_eq!(id.email(), "ana@example.com");
        assert_eq!(id.groups_joined(), "staff,ops");
        assert_eq!(id.groups().collect::<Vec<_>>(), ["staff", "ops"]);
        let none = Identity::new("bo", &[], "");
        assert_eq!(
            (none.user(), none.email(), none.groups().count()),
            ("bo", "", 0)
        );
    }
}
