//! `hubgate users add|passwd|remove|list` on a users file with comments, as an operator runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const COMMENTED: &str = r#"# Who may sign in. Managed with `hubgate users`.

# The on-call engineer.
[[users]]
name = "alice"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$zf0gDhaKy554UXxOTEGLXA$iHgRyANUxF5FCkjI9YwbbemXA/ENpCJit2PYcTq+ddE"
groups = ["ops"]   # pages at night
email = "alice@example.com"

[[users]]
name = "bob"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$xLY7NMiskGtf6c7jOBbaZA$i8bOz+En+89s+bYCP7Ixi4ISpJ0QzyLQlfMxF1MgbUo"
groups = ["research"]
email = "bob@example.com"
"#;

/// A config directory with `gateway.toml` naming `people.toml` as its users file.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gateway.toml"),
        "[hub]\nusers_file = \"people.toml\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("people.toml"), COMMENTED).unwrap();
    dir
}

fn users(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .arg("-c")
        .arg(dir.join("gateway.toml"))
        .arg("users")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refused command may exit before reading its password: a closed pipe is expected then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn add_passwd_remove_keep_comments_and_produce_a_file_the_gateway_reads() {
    let dir = config_dir();
    let file = dir.path().join("people.toml");

    let out = users(
        dir.path(),
        &[
            "add",
            "carol",
            "--group",
            "ops",
            "--group",
            "db",
            "--email",
            "carol@example.com",
        ],
        "carol-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_add = std::fs::read_to_string(&file).unwrap();
    assert!(after_add.starts_with("# Who may sign in."), "{after_add}");
    assert!(after_add.contains("# The on-call engineer."), "{after_add}");
    assert!(after_add.contains("# pages at night"), "{after_add}");
    assert!(after_add.contains("name = \"carol\""), "{after_add}");
    assert!(
        after_add.contains("groups = [\"ops\", \"db\"]"),
        "{after_add}"
    );

    let parsed = hubgate::config::check_users_file(&file).expect("the gateway reads it");
    let carol = parsed.get("carol").expect("carol is there");
    assert_eq!(carol.groups, ["ops", "db"]);
    assert_eq!(carol.email, "carol@example.com");
    assert!(hubgate::auth::password::verify(
        Some(&carol.password_hash),
        "carol-password"
    ));

    let out = users(dir.path(), &["passwd", "carol"], "new-password\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed = hubgate::config::check_users_file(&file).unwrap();
    let hash = &parsed.get("carol").unwrap().password_hash;
    assert!(hubgate::auth::password::verify(Some(hash), "new-password"));
    assert!(!hubgate::auth::password::verify(
        Some(hash),
        "carol-password"
    ));

    let out = users(dir.path(), &["remove", "bob"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_remove = std::fs::read_to_string(&file).unwrap();
    assert!(!after_remove.contains("\"bob\""), "{after_remove}");
    assert!(after_remove.contains("# pages at night"), "{after_remove}");

    let out = users(dir.path(), &["list"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].starts_with("alice") && lines[0].contains("groups=ops"),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("carol") && lines[1].contains("groups=ops,db"),
        "{listing}"
    );
    assert!(
        !listing.contains("argon2"),
        "hashes are never listed: {listing}"
    );

    // Nothing was left behind by the rewrites (temporary files are renamed away).
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn duplicates_bad_names_and_missing_users_are_refused_and_change_nothing() {
    let dir = config_dir();
    let file = dir.path().join("people.toml");
    let refusals: [(&[&str], &str); 6] = [
        (&["add", "alice"], "already exists"),
        (&["add", "eve,mallory"], "not a usable user name"),
        (&["add", ""], "not a usable user name"),
        (
            &["add", "dave", "--group", "a,b"],
            "not a usable group name",
        ),
        (&["remove", "zed"], "no user \"zed\""),
        (&["passwd", "zed"], "no user \"zed\""),
    ];
    for (args, message) in refusals {
        let out = users(dir.path(), args, "some-password\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            COMMENTED,
            "{args:?}"
        );
    }
    let out = users(dir.path(), &["add", "dave"], "\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("the password is empty"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), COMMENTED);
}

#[test]
fn an_edit_that_would_leave_an_unreadable_file_is_not_written() {
    let dir = config_dir();
    let file = dir.path().join("people.toml");
    // Someone hand-edited a broken hash into bob's entry: the rewrite would keep it, so the CLI
    // refuses rather than put a file in place the gateway cannot load.
    let broken = COMMENTED.replace("$argon2id$v=19$m=19456,t=2,p=1$xLY7", "not-a-hash");
    std::fs::write(&file, &broken).unwrap();
    let out = users(dir.path(), &["add", "carol"], "pw\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("password_hash"), "{stderr}");
    assert!(stderr.contains("people.toml"), "{stderr}");
    assert!(
        !stderr.contains(".people.toml."),
        "the temporary name is not shown: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
}

#[test]
fn every_users_subcommand_has_help() {
    for sub in ["add", "passwd", "remove", "list"] {
        let out = Command::new(env!("CARGO_BIN_EXE_hubgate"))
            .args(["users", sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub}");
        let help = text(&out.stdout);
        assert!(help.contains("Usage: hubgate users"), "{sub}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hubgate"))
        .args(["users", "add", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(
        help.contains("--group <GROUP>") && help.contains("--email"),
        "{help}"
    );
}
