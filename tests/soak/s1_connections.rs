//! 1. Connections: 10,000 idle keep-alive connections held open while 1,000 more send signed-in
//!    requests as fast as they can for 60 s.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::common::*;
use crate::load::{self, Conn, Outcome, Stop, Tally};
use crate::report::{ms, seconds, Report};

const IDLE: usize = 10_000;
const ACTIVE: usize = 1_000;
/// Pingora closes a keep-alive connection after 60 s without a request; a browser tab keeps its
/// connection with a request now and then, and so do these.
const IDLE_REQUEST_EVERY: Duration = Duration::from_secs(30);
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_and_a_thousand_busy_connections() {
    crate::raise_open_files_limit();
    let duration = seconds(60);
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let cookie = load::signed_in_cookie(&gw).await;
    let request = load::signed_in_request(&cookie);
    let pid = gw.pid();
    let (rss_before, files_before) = (load::rss_mib(pid), load::open_files(pid));

    let stop = Stop::default();
    let opened = Instant::now();
    let idle: Vec<_> = futures_util::stream::iter(0..IDLE)
        .map(|_| hold_idle(gw.port, request.clone(), stop.clone()))
        .buffer_unordered(256)
        .collect()
        .await;
    let idle_opened_in = opened.elapsed();
    let idle_failed_to_open = idle.iter().filter(|h| h.is_none()).count();
    let files_idle = load::open_files(pid);
    let rss_idle = load::rss_mib(pid);

    let active = load::steady(gw.port, ACTIVE, request.clone(), LIMIT, stop.clone());
    let mut rss_peak = load::rss_mib(pid);
    let mut files_peak = load::open_files(pid);
    let started = Instant::now();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(load::rss_mib(pid));
        files_peak = files_peak.max(load::open_files(pid));
    }
    stop.now();
    let active = active.await.expect("active load");
    let mut idle_tally = Tally::default();
    for handle in idle.into_iter().flatten() {
        idle_tally.merge(handle.await.expect("idle connection"));
    }
    let rss_loaded = load::rss_mib(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The clients have closed everything; the gateway notices each close at its next read.
    let mut still_accepted = load::accepted_connections(gw.port);
    let closing = Instant::now();
    while still_accepted > 0 && closing.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        still_accepted = load::accepted_connections(gw.port);
    }
    let (rss_after, files_after) = (load::rss_mib(pid), load::open_files(pid));

    let mut report = Report::new(
        "1-connections",
        "1. Connections: 10,000 idle keep-alive plus 1,000 busy",
        &format!(
            "{IDLE} keep-alive connections each send one signed-in request, then rest (one more \
             request every {} s, as a browser tab's connection would); {ACTIVE} more connections \
             send signed-in requests back to back for {} s. Memory store, 2 threads.",
            IDLE_REQUEST_EVERY.as_secs(),
            duration.as_secs()
        ),
    );
    report.figure(
        "idle connections opened",
        format!(
            "{} in {:.1} s",
            IDLE - idle_failed_to_open,
            idle_opened_in.as_secs_f64()
        ),
    );
    report.figure("busy requests", active.total());
    report.figure(
        "busy requests per second",
        format!("{:.0}", active.total() as f64 / duration.as_secs_f64()),
    );
    report.figure("busy outcomes", active.outcomes_text());
    report.figure(
        "busy p50 / p99 / max",
        format!(
            "{} / {} / {}",
            ms(active.quantile_ms(0.5)),
            ms(active.quantile_ms(0.99)),
            ms(active.max_ms())
        ),
    );
    report.figure("idle connections' requests", idle_tally.outcomes_text());
    report.figure(
        "gateway RSS before / 10,000 idle held / peak / after load / later",
        format!("{rss_before:.1} / {rss_idle:.1} / {rss_peak:.1} / {rss_loaded:.1} / {rss_after:.1} MiB"),
    );
    report.figure(
        "gateway memory per idle connection",
        format!("{:.1} KiB", (rss_idle - rss_before) * 1024.0 / IDLE as f64),
    );
    report.figure(
        "client connections the gateway still held open after they closed",
        still_accepted,
    );
    report.figure(
        "gateway open files before / idle held / peak / after (the rest: its pool of upstream connections)",
        format!("{files_before} / {files_idle} / {files_peak} / {files_after}"),
    );
    report.bound("every idle connection opens", idle_failed_to_open == 0);
    report.bound("0 errors on busy connections", active.errors(200) == 0);
    report.bound(
        "0 errors on idle connections (each still answers at the end)",
        idle_tally.errors(200) == 0,
    );
    report.bound("the gateway is still running", load::alive(pid));
    report.bound(
        "every client connection closed on the gateway's side too (nothing leaked)",
        still_accepted == 0,
    );
    report.finish();
}

/// One idle connection: one request now, then one every [`IDLE_REQUEST_EVERY`] and a last one when
/// `stop` is set; `None` if it could not be opened.
async fn hold_idle(
    port: u16,
    request: Vec<u8>,
    stop: Stop,
) -> Option<tokio::task::JoinHandle<Tally>> {
    let mut conn = Conn::open(port).await.ok()?;
    let mut tally = Tally::default();
    let started = Instant::now();
    let first = conn.exchange(&request, LIMIT).await;
    tally.add(first, started.elapsed());
    if first != Outcome::Status(200) {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = tokio::time::sleep(IDLE_REQUEST_EVERY) => false,
                _ = stop.wait() => true,
            };
            let started = Instant::now();
            tally.add(conn.exchange(&request, LIMIT).await, started.elapsed());
            if stopping {
                return tally;
            }
        }
    }))
}
