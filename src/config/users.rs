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

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
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
        if let Err(why) = check_user_name(&name) {
            entry.report("name", why);
        } else if users.iter().any(|u| u.name == name) {
            entry.report("name", format!("user {name:?} appears twice"));
        }
        for (i, group) in groups.iter().enumerate() {
            if let Err(why) = check_group_name(group) {
                entry.report(&format!("groups[{i}]"), why);
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

/// A user name ends up in `X-Forwarded-User` and in lists joined by commas.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == ',') {
        return Err(format!(
            "{name:?} is not a usable user name (non-empty, no commas or control characters)"
        ));
    }
    Ok(())
}

pub fn check_group_name(group: &str) -> Result<(), String> {
    if group.is_empty() || group.chars().any(|c| c.is_control() || c == ',') {
        return Err(format!("{group:?} is not a usable group name (non-empty, no commas: X-Forwarded-Groups is comma-separated)"));
    }
    Ok(())
}

/// Checks a users file on its own, as the gateway would read it (the users CLI checks its
/// rewrite with this before putting it in place).
pub fn check_users_file(path: &Path) -> Result<Users, super::ConfigErrors> {
    let problems = Problems::default();
    let users = load_users(path, &problems);
    let errors = problems.take();
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(super::ConfigErrors(errors))
    }
}

/// The users file a config names (`hub.users_file`, relative to the config's directory), read
/// without validating the rest of the config; `None` when `users_file = ""`.
pub fn users_file_of(config_path: &Path) -> Result<Option<std::path::PathBuf>, String> {
    let text = std::fs::read_to_string(config_path).map_err(|e| {
        format!(
            "{}: cannot read the config file: {e}",
            config_path.display()
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        format!(
            "{}: not valid TOML: {}",
            config_path.display(),
            e.message().trim()
        )
    })?;
    let name = match table.get("hub").and_then(|hub| hub.get("users_file")) {
        None => DEFAULT_USERS_FILE,
        Some(toml::Value::String(name)) => name.as_str(),
        Some(_) => return Err("hub.users_file: expected a string".to_string()),
    };
    let base_dir = config_path.parent().unwrap_or_else(|| Path::new("."));
    Ok(Some(name)
        .filter(|n| !n.is_empty())
        .map(|n| base_dir.join(n)))
}

/// `hub.users_file` when the config does not say.
pub(crate) const DEFAULT_USERS_FILE: &str = "users.toml";

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
