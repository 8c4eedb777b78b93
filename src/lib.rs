//! hubgate: a reverse-proxy authentication gateway on Pingora.
//!
//! One sign-in at the hub gives access to every app a person may use; one sign-out ends access to
//! all of them. The modules follow the request: `config` is read once, `proxy` routes each request,
//! `auth` decides whether it may pass, `session` remembers who is signed in, `hub` answers the pages
//! a person sees, `metrics` counts what happened.

pub mod api_tokens;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod hub;
pub mod metrics;
pub mod oidc;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod session;
pub mod time;
pub mod users_cli;
