//! `hubgate users add|passwd|remove|list`: the users file edited from the command line.
//!
//! The file is edited as a document (`toml_edit`), so the operator's comments and layout stay;
//! the result is checked exactly as the gateway would read it, written to a temporary file in
//! the same directory and renamed over the original — a gateway reloading at that moment reads
//! the old file or the new one, never half of either.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use crate::config::{check_group_name, check_user_name, check_users_file};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from stdin (asked twice, without echo, on a terminal).
    Add {
        /// The sign-in name (no commas or control characters).
        name: String,
        /// A group the user belongs to; repeat for several.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The address sent to apps in the email identity header.
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a new password for a user (read like `add`'s).
    Passwd {
        /// The user whose password changes.
        name: String,
    },
    /// Remove a user; on reload, their sessions end with reason `user_removed`.
    Remove {
        /// The user to remove.
        name: String,
    },
    /// List the users: name, groups and email (never the hashes).
    List,
}

/// Runs one users subcommand on the users file `config_path` names, or on `file` when given.
/// Every failure is one line on stderr; nothing is written unless the whole change is valid.
pub fn run(config_path: &Path, file: Option<&Path>, command: UsersCommand) -> Result<(), String> {
    let path = match file {
        Some(file) => file.to_path_buf(),
        None => crate::config::users_file_of(config_path)?.ok_or_else(|| {
            format!(
                "{}: hub.users_file = \"\": this gateway has no users file",
                config_path.display()
            )
        })?,
    };
    match command {
        UsersCommand::List => list(&path),
        UsersCommand::Add {
            name,
            groups,
            email,
        } => {
            check_user_name(&name)?;
            for group in &groups {
                check_group_name(group)?;
            }
            let mut doc = read_document(&path)?;
            if find(&doc, &name)?.is_some() {
                return Err(format!(
                    "user {name:?} already exists in {}",
                    path.display()
                ));
            }
            let password_hash = crate::auth::password::hash(&read_new_password()?)?;
            users_table(&mut doc)?.push(new_user(&name, &password_hash, &groups, email));
            write_checked(&path, &doc)?;
            println!("added {name} to {}", path.display());
            Ok(())
        }
        UsersCommand::Passwd { name } => {
            let (mut doc, index) = existing_user(&path, &name)?;
            let password_hash = crate::auth::password::hash(&read_new_password()?)?;
            if let Some(user) = users_table(&mut doc)?.get_mut(index) {
                user["password_hash"] = value(password_hash);
            }
            write_checked(&path, &doc)?;
            println!("changed the password of {name} in {}", path.display());
            Ok(())
        }
        UsersCommand::Remove { name } => {
            let (mut doc, index) = existing_user(&path, &name)?;
            users_table(&mut doc)?.remove(index);
            write_checked(&path, &doc)?;
            println!("removed {name} from {}", path.display());
            Ok(())
        }
    }
}

/// The users file and the index of `name`'s entry in it, or why not.
fn existing_user(path: &Path, name: &str) -> Result<(DocumentMut, usize), String> {
    let doc = read_document(path)?;
    let index =
        find(&doc, name)?.ok_or_else(|| format!("no user {name:?} in {}", path.display()))?;
    Ok((doc, index))
}

fn read_document(path: &Path) -> Result<DocumentMut, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the users file: {e}", path.display()))?;
    text.parse::<DocumentMut>()
        .map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message()))
}

/// The `[[users]]` entries; a file without any gets them (an empty file is a start).
fn users_table(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, String> {
    doc.entry("users")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| "users: expected [[users]] tables".to_string())
}

/// The index of the `[[users]]` entry named `name`.
fn find(doc: &DocumentMut, name: &str) -> Result<Option<usize>, String> {
    let Some(item) = doc.get("users") else {
        return Ok(None);
    };
    let users = item
        .as_array_of_tables()
        .ok_or_else(|| "users: expected [[users]] tables".to_string())?;
    Ok(users
        .iter()
        .position(|u| u.get("name").and_then(Item::as_str) == Some(name)))
}

fn new_user(name: &str, password_hash: &str, groups: &[String], email: Option<String>) -> Table {
    let mut user = Table::new();
    user["name"] = value(name);
    user["password_hash"] = value(password_hash);
    user["groups"] = value(groups.iter().collect::<Array>());
    if let Some(email) = email {
        user["email"] = value(email);
    }
    user
}

fn list(path: &Path) -> Result<(), String> {
    let users = check_users_file(path).map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = users.names().collect();
    names.sort_unstable();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    for name in names {
        if let Some(user) = users.get(name) {
            let or_dash = |text: String| {
                if text.is_empty() {
                    "-".to_string()
                } else {
                    text
                }
            };
            println!(
                "{name:<width$}  groups={}  email={}",
                or_dash(user.groups.join(",")),
                or_dash(user.email.clone())
            );
        }
    }
    Ok(())
}

/// Writes `doc` next to `path`, checks it as the gateway would read it, then renames it over
/// `path` (same directory, so the rename is atomic). The original's permissions are kept: the
/// file holds password hashes.
fn write_checked(path: &Path, doc: &DocumentMut) -> Result<(), String> {
    let temp = temp_path(path);
    let result = write_file(&temp, path, doc.to_string().as_bytes()).and_then(|()| {
        check_users_file(&temp).map_err(|errors| {
            // Report against the real file's name, not the temporary one's.
            errors
                .to_string()
                .replace(&temp.display().to_string(), &path.display().to_string())
        })?;
        std::fs::rename(&temp, path)
            .map_err(|e| format!("{}: cannot replace the users file: {e}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.toml".to_string());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_file(temp: &Path, original: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", temp.display());
    // create_new: never follow or reuse something already lying at the temporary name.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(fail)?;
    if let Ok(meta) = std::fs::metadata(original) {
        file.set_permissions(meta.permissions()).map_err(fail)?;
    }
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// A new password: one line from stdin, or on a terminal asked twice without echo.
fn read_new_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = prompt_hidden("new password: ")?;
        let second = prompt_hidden("again: ")?;
        if first != second {
            return Err("the two passwords differ".to_string());
        }
        non_empty(first)
    } else {
        non_empty(read_line()?)
    }
}

/// The password `hubgate hash-password` hashes: read the same way as the users commands'.
pub fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        non_empty(prompt_hidden("password: ")?)
    } else {
        non_empty(read_line()?)
    }
}

fn non_empty(password: String) -> Result<String, String> {
    if password.is_empty() {
        Err("the password is empty".to_string())
    } else {
        Ok(password)
    }
}

fn read_line() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read a password from stdin: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Asks on stderr and reads a line with the terminal's echo off (restored afterwards, also when
/// reading fails).
fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let echo = EchoOff::new();
    let line = read_line();
    drop(echo);
    eprintln!();
    line
}

/// The terminal on stdin with echo turned off for as long as this lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr only read and write the termios struct we own, for fd 0.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return EchoOff(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}
