//! The configuration: `gateway.toml` (and the users file it names) read into a validated model.
//!
//! Parsing and validation stay here; the rest of the program sees only [`Config`], whose durations
//! are parsed, paths resolved, secrets loaded and names checked.

mod cidr;
mod duration;
mod hosts;
mod model;
mod parse;
mod providers;
mod reader;
mod users;

use std::fmt;
use std::path::Path;

pub use cidr::{canonical_ip, Cidr};
pub use duration::parse_duration;
pub use hosts::HostName;
pub use model::*;
pub use users::{check_group_name, check_user_name, check_users_file, users_file_of, User, Users};

/// One problem in the config, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in a config; empty means none.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the config at `path` and the users file it names.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            key: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        }])
    })?;
    let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
    parse::parse_config(&path.display().to_string(), &text, base_dir, &|name| {
        std::env::var(name).ok()
    })
}

/// Like [`load`], but from text (tests, and `hubgate demo`'s built-in defaults).
pub fn from_str(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    parse::parse_config("gateway.toml", text, base_dir, env)
}
