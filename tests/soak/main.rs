//! The reliability suite (issue 18): how the gateway holds up under floods, slow clients, killed
//! peers and hostile input, each scenario bounded in time, on loopback, with every server it needs
//! started here and stopped after. Not part of `cargo test` (`test = false` in Cargo.toml):
//! `bench/soak` runs it and writes docs/RELIABILITY.md from the sections each scenario writes.
//!
//! Each scenario checks its bounds (0 wrongful admissions, 0 crashes, errors within the stated
//! limit) and fails if one is broken.

#[path = "../common/mod.rs"]
mod common;
mod load;
mod report;

mod s1_connections;
mod s2_slow_clients;
mod s3_redis_killed;
mod s4_gateway_killed;
mod s5_upstream_flapping;
mod s6_memory_bound;
mod s7_websockets;
mod s8_hostile_input;

/// Ten thousand sockets in this process, as many in the gateway's: both need more than the usual
/// 1,024 open files (bench/soak raises the hard limit too).
fn raise_open_files_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}
