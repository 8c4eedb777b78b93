//! What bench/bare_pingora.rs and bench/h1_forward.rs share: their command line
//! (`NAME LISTEN_ADDR UPSTREAM_ADDR`) and a Pingora server with hubgate's own server settings
//! (one thread, the same runtime), so the two floors differ only in how they forward.

use std::net::SocketAddr;

use pingora::server::configuration::ServerConf;
use pingora::server::Server;

/// The listen address and the upstream from the command line, or the usage and exit 2.
pub fn args(name: &str) -> (String, SocketAddr) {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2).and_then(|a| a.parse().ok()))
    else {
        eprintln!("usage: {name} LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    (listen.clone(), upstream)
}

/// A bootstrapped server with one thread, as `bench/run` runs hubgate.
pub fn server() -> Server {
    let conf = ServerConf {
        threads: 1,
        work_stealing: hubgate::server::WORK_STEALING,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
}
