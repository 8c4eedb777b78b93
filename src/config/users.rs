//! The users file: who may sign in, with an argon2id hash of their password, groups and email.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::reader::{Problems, Section};

#[derive(Clone)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    pub groups: Vec<String>,
    pub email: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("groups", &self.groups)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Users {
    by_name: Arc<HashMap<String, User>>,
}

impl Users {
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn from_list(users: Vec<User>) -> Self {
        let by_name = users.into_iter().map(|u| (u.name.clone(), u)).collect();
        Users {
            by_name: Arc::new(by_name),
        }
    }
}

/// Reads the users file; problems are reported under `hub.users_file (<path>)`.
pub(crate) fn load_users(path: &Path, problems: &Problems) -> Users {
    let label = format!("hub.users_file ({})", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.report(label, format!("cannot read the users file: {e}"));
            return Users::default();
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.report(label, format!("not valid TOML: {}", e.message()));
            return Users::default();
        }
    };
    let mut root = Section::named(&label, table, problems.clone());
    let mut users: Vec<User> = Vec::new();
    for mut entry in root.array_of_tables("users") {
        let name = entry.string("name", "");
        let password_hash = entry.string("password_hash", "");
        let groups = entry.string_list("groups");
        let email = entry.string("email", "");
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == ',') {
            entry.report("name", format!("{name:?} is not a usable user name (non-empty, no commas or control characters)"));
        } else if users.iter().any(|u| u.name == name) {
            entry.report("name", format!("user {name:?} appears twice"));
        }
        for (i, group) in groups.iter().enumerate() {
            if group.is_empty() || group.chars().any(|c| c.is_control() || c == ',') {
                entry.report(&format!("groups[{i}]"), format!("{group:?} is not a usable group name (non-empty, no commas: X-Forwarded-Groups is comma-separated)"));
            }
        }
        if let Err(why) = check_password_hash(&password_hash) {
            entry.report("password_hash", why);
        }
        entry.finish();
        users.push(User {
            name,
            password_hash,
            groups,
            email,
        });
    }
    root.finish();
    if users.is_empty() {
        problems.report(label, "no [[users]] defined: nobody could sign in");
    }
    Users::from_list(users)
}

fn check_password_hash(phc: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(phc).map_err(|e| {
        format!("not a PHC password hash ({e}); make one with `hubgate hash-password`")
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "uses {}, expected argon2id; make one with `hubgate hash-password`",
            parsed.algorithm
        ));
    }
    Ok(())
}
