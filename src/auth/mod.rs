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
    user_len: u32,
    email_len: u32,
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
        // The users file and the store keep names and emails far below 4 GiB; clamp regardless.
        let len = |s: &str| u32::try_from(s.len()).unwrap_or(u32::MAX);
        Identity {
            text: text.into_boxed_str(),
            user_len: len(user),
            email_len: len(email),
        }
    }

    pub fn shared(user: &str, groups: &[String], email: &str) -> Arc<Identity> {
        Arc::new(Identity::new(user, groups, email))
    }

    fn split(&self) -> (usize, usize) {
        let user_end = self.user_len as usize;
        (user_end, user_end + self.email_len as usize)
    }

    pub fn user(&self) -> &str {
        self.text.get(..self.split().0).unwrap_or_default()
    }

    pub fn email(&self) -> &str {
        let (user_end, email_end) = self.split();
        self.text.get(user_end..email_end).unwrap_or_default()
    }

    /// The groups, comma-separated.
    pub fn groups_joined(&self) -> &str {
        self.text.get(self.split().1..).unwrap_or_default()
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
