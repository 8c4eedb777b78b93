//! 5. Upstream flapping: an app's process killed (SIGKILL) and started again every few seconds.
//!    Alone behind its app it means 502 pages while it is down and nothing stuck; in a pool beside
//!    a steady upstream, health checks take it out and bring it back.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::{self, Outcome, Stop};
use crate::report::{ms, seconds, Report};

const CONNECTIONS: usize = 8;
const DOWN: Duration = Duration::from_secs(3);
const UP: Duration = Duration::from_secs(3);
/// An exchange waiting longer than this is stuck: the gateway gives up on an upstream connection
/// after 5 s (its connect timeout) and answers 502.
const LIMIT: Duration = Duration::from_secs(10);

/// A real upstream process (Python's `http.server`: it answers 404 for these paths, which tells
/// its answers from the steady upstream's 200s).
struct Flapper {
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Flapper {
    fn start() -> Flapper {
        let mut flapper = Flapper {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        flapper.up();
        flapper
    }

    fn up(&mut self) {
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Flapper {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_killed_and_restarted_every_few_seconds() {
    let duration = seconds(60);
    let mut flapper = Flapper::start();
    let flapper_addr: std::net::SocketAddr = ([127, 0, 0, 1], flapper.port).into();
    let mut pool = App::new("pool", upstream("pool").await);
    pool.upstreams.push(flapper_addr);
    let gw = Setup::default()
        .app(pool.with("public_paths = [\"/apps/pool/\"]"))
        .app(App::new("alone", flapper_addr).with("public_paths = [\"/apps/alone/\"]"))
        .start();
    let files_before = load::open_files(gw.pid());

    let stop = Stop::default();
    let pooled = load::steady(
        gw.port,
        CONNECTIONS,
        load::get("/apps/pool/x", ""),
        LIMIT,
        stop.clone(),
    );
    let alone = load::steady(
        gw.port,
        CONNECTIONS,
        load::get("/apps/alone/x", ""),
        LIMIT,
        stop.clone(),
    );
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() + DOWN + UP <= duration {
        tokio::time::sleep(UP).await;
        flapper.kill();
        kills += 1;
        tokio::time::sleep(DOWN).await;
        flapper.up();
    }
    // The last restart is followed by one more health-check period, so the pool takes it back.
    tokio::time::sleep(UP).await;
    stop.now();
    let pooled = pooled.await.expect("pool load");
    let alone = alone.await.expect("alone load");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let files_after = load::open_files(gw.pid());

    let flapper_in_pool = pooled.count(|o| *o == Outcome::Status(404));
    let pool_errors = pooled.count(|o| !matches!(o, Outcome::Status(200) | Outcome::Status(404)));
    let alone_502 = alone.count(|o| *o == Outcome::Status(502));
    let alone_other = alone.count(|o| !matches!(o, Outcome::Status(404) | Outcome::Status(502)));
    let mut report = Report::new(
        "5-upstream-flapping",
        "5. Upstream flapping",
        &format!(
            "An upstream process (Python's http.server) is killed with SIGKILL and started again \
             {kills} times ({} s up, {} s down). App `alone` has only it; app `pool` has it beside a \
             steady upstream (round robin, TCP health checks every 2 s). {CONNECTIONS} connections \
             per app send requests back to back for {} s.",
            UP.as_secs(),
            DOWN.as_secs(),
            duration.as_secs()
        ),
    );
    report.figure(
        "alone: outcomes (404 is the app answering, 502 the gateway's page)",
        alone.outcomes_text(),
    );
    report.figure("alone: slowest answer", ms(alone.max_ms()));
    report.figure(
        "pool: outcomes (200 steady upstream, 404 the flapping one)",
        pooled.outcomes_text(),
    );
    report.figure("pool: slowest answer", ms(pooled.max_ms()));
    report.figure(
        "gateway open files before / after",
        format!("{files_before} / {files_after}"),
    );
    report.bound(
        "alone: 502 while down, the app's own answer while up; otherwise only requests in flight at a kill cut off (at most one per connection and kill)",
        alone_502 > 0 && alone_other <= (CONNECTIONS * kills) as u64,
    );
    report.bound(
        &format!(
            "no exchange waits past {} s (nothing stuck)",
            LIMIT.as_secs()
        ),
        alone.count(|o| *o == Outcome::TimedOut) == 0
            && pooled.count(|o| *o == Outcome::TimedOut) == 0,
    );
    report.bound(
        "pool: errors only from requests in flight at a kill (at most one per connection and kill)",
        pool_errors <= (CONNECTIONS * kills) as u64,
    );
    report.bound(
        "no client connection left open on the gateway's side",
        load::accepted_connections(gw.port) == 0,
    );
    report.bound(
        "pool: the flapping upstream is taken back after restarts",
        flapper_in_pool > 0,
    );
    report.bound(
        "open files return to within 50 of the start",
        files_after <= files_before + 50,
    );
    report.bound("the gateway is still running", load::alive(gw.pid()));
    report.finish();
}
