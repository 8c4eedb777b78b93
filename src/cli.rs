//! The command line: `hubgate [-c PATH]`, `check`, `hash-password`, `gen-key`, `demo`, `users`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::{Parser, Subcommand};

use crate::config::{self, Config};

#[derive(Parser)]
#[command(
    name = "hubgate",
    version,
    about = "Sign in once at the hub, reach every app; sign out once, leave them all."
)]
struct Cli {
    /// The config file.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        default_value = "gateway.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config (and the users file it names); print every problem with its key.
    Check,
    /// Read a password from stdin and print an argon2id hash for the users file.
    HashPassword,
    /// Print a fresh random 32-byte key, base64url, for [[tokens.keys]].
    GenKey,
    /// Serve the config together with two built-in demo apps on the upstream ports it names.
    Demo,
    /// Add, remove, list users and set passwords in the users file the config names. A running
    /// gateway picks the change up on SIGHUP (or at once with `server.watch_config = true`).
    Users {
        /// Edit this users file instead of the one the config's `hub.users_file` names.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        #[command(subcommand)]
        action: crate::users_cli::UsersCommand,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(&cli.config, false),
        Some(Command::Demo) => serve(&cli.config, true),
        Some(Command::Check) => check(&cli.config),
        Some(Command::HashPassword) => hash_password(),
        Some(Command::Users { file, action }) => {
            match crate::users_cli::run(&cli.config, file.as_deref(), action) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::GenKey) => {
            let key = crate::auth::tokens::random_secret();
            println!(
                "{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
            );
            ExitCode::SUCCESS
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HUBGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("HUBGATE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn load_or_report(path: &Path) -> Option<Config> {
    match config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "{}: {} problem{} found",
                path.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            None
        }
    }
}

fn check(path: &Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::FAILURE;
    };
    for warning in &config.warnings {
        println!("warning: {warning}");
    }
    for note in notes_on(&config) {
        println!("note: {note}");
    }
    println!(
        "ok: {} ({} app{}, {} user{})",
        path.display(),
        config.apps.len(),
        if config.apps.len() == 1 { "" } else { "s" },
        config.users.len(),
        if config.users.len() == 1 { "" } else { "s" },
    );
    ExitCode::SUCCESS
}

/// Keys that are accepted but have no effect in this setup: said out loud, never silently ignored.
pub fn notes_on(config: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    if config.session.on_store_error == config::OnStoreError::AllowCached
        && config.session.store == config::StoreKind::Memory
    {
        notes.push(
            "session.on_store_error only matters with a shared store; the memory store never fails"
                .to_string(),
        );
    }
    notes
}

fn hash_password() -> ExitCode {
    let hashed = crate::users_cli::read_password().and_then(|p| crate::auth::password::hash(&p));
    match hashed {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &Path, demo: bool) -> ExitCode {
    init_logging();
    let Some(config) = load_or_report(path) else {
        return ExitCode::FAILURE;
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if demo {
        if let Err(e) = start_demo_upstreams(&config) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        print_demo_welcome(&config);
    }
    match crate::server::run(config, path.to_path_buf()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One demo app per configured app, on its first upstream address, in a thread of its own (the
/// gateway's runtime starts afterwards and owns the main thread).
fn start_demo_upstreams(config: &Config) -> Result<(), String> {
    let mut listeners = Vec::new();
    // An app a proxy in front serves (`upstreams = []`) gets no demo upstream.
    for app in config.apps.iter().filter(|a| !a.upstreams.is_empty()) {
        let addr: SocketAddr = app.upstreams[0].parse().map_err(|_| {
            format!(
                "apps[{}].upstreams[0]: the demo needs an IP:port upstream",
                app.name
            )
        })?;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("demo app {} cannot listen on {addr}: {e}", app.name))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        listeners.push((listener, app.name.clone()));
    }
    std::thread::Builder::new()
        .name("demo-apps".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("error: demo apps cannot start: {e}"),
            };
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for (listener, name) in listeners {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => tasks.push(tokio::spawn(async move {
                            crate::demo::serve(listener, &name).await
                        })),
                        Err(e) => eprintln!("error: demo app {name}: {e}"),
                    }
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn print_demo_welcome(config: &Config) {
    let url = &config.server.public_url.origin;
    println!("\nhubgate demo is running.\n");
    println!("  Open {url}/ and sign in as alice / alice-demo-password (group ops)");
    println!("                       or bob   / bob-demo-password   (group research)");
    for provider in &config.hub.providers {
        println!(
            "                       or press \"Sign in with {}\" ({})",
            provider.name, provider.issuer
        );
    }
    println!();
    for app in &config.apps {
        let upstream = app
            .upstreams
            .first()
            .map_or("(served by a proxy in front)", String::as_str);
        let address = match &app.host {
            Some(host) => format!(
                "{}://{host}{}/",
                if config.server.public_url.https {
                    "https"
                } else {
                    "http"
                },
                app.prefix
            ),
            None => format!("{url}{}/", app.prefix),
        };
        println!(
            "  app {:<10} {address}  → demo upstream on {upstream}",
            app.name
        );
    }
    println!("\n  Sign out: {url}/logout      Stop: Ctrl+C\n");
}
