//! 2. Slow clients: 500 connections trickle their headers or bodies a byte a second (slowloris and
//!    its body variant), opening again each time the gateway cuts them off, while a normal client
//!    keeps working.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::load::{self, Stop};
use crate::report::{ms, seconds, Report};

const SLOW: usize = 500;
const TIMEOUT_SECS: u64 = 5;
/// A cut-off may come this much after its timeout (a loaded machine, the 1 s trickle).
const SLACK: Duration = Duration::from_secs(3);
const NORMAL_CONNECTIONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_and_bodies_are_cut_off_and_others_served() {
    crate::raise_open_files_limit();
    let duration = seconds(60);
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .server(&format!(
            "header_read_timeout = \"{TIMEOUT_SECS}s\"\nbody_read_timeout = \"{TIMEOUT_SECS}s\""
        ))
        .start();
    let cookie = load::signed_in_cookie(&gw).await;
    let request = load::signed_in_request(&cookie);
    let measure = |seconds: u64| {
        let stop = Stop::default();
        let run = load::steady(
            gw.port,
            NORMAL_CONNECTIONS,
            request.clone(),
            Duration::from_secs(10),
            stop.clone(),
        );
        async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.now();
            run.await.expect("normal load")
        }
    };
    let unloaded = measure(10).await;

    let stop = Stop::default();
    let holds = Arc::new(Mutex::new(Holds::default()));
    let slow: Vec<_> = (0..SLOW)
        .map(|n| {
            let kind = if n % 2 == 0 {
                Trickle::Header
            } else {
                Trickle::Body
            };
            tokio::spawn(trickle_until_stopped(
                gw.port,
                kind,
                stop.clone(),
                holds.clone(),
            ))
        })
        .collect();
    // Let the first wave reach its cut-off, then measure a full minute under it.
    tokio::time::sleep(Duration::from_secs(TIMEOUT_SECS)).await;
    let loaded = measure(duration.as_secs()).await;
    stop.now();
    for task in slow {
        let _ = task.await;
    }
    let holds = holds.lock().map(|h| h.clone()).unwrap_or_default();

    let mut report = Report::new(
        "2-slow-clients",
        "2. Slow clients: 500 trickling connections",
        &format!(
            "{} connections send a request header a byte a second and {} send a header at once \
             and then a 100 KB body a byte a second, each opening again when cut off, for {} s. \
             `header_read_timeout` and `body_read_timeout` are {TIMEOUT_SECS} s. Meanwhile \
             {NORMAL_CONNECTIONS} connections send signed-in requests back to back; their \
             latency is compared with 10 s of the same load before the trickling began.",
            SLOW / 2,
            SLOW / 2,
            duration.as_secs()
        ),
    );
    report.figure(
        "trickled headers cut off",
        format!(
            "{} (longest held {:.1} s)",
            holds.header.len(),
            max_secs(&holds.header)
        ),
    );
    report.figure(
        "trickled bodies cut off",
        format!(
            "{} (longest held {:.1} s)",
            holds.body.len(),
            max_secs(&holds.body)
        ),
    );
    report.figure("trickled bodies answered 408", holds.answered_408);
    report.figure(
        "trickles never cut off (still open at the end)",
        holds.never_cut,
    );
    report.figure(
        "normal client p99 before / during",
        format!(
            "{} / {}",
            ms(unloaded.quantile_ms(0.99)),
            ms(loaded.quantile_ms(0.99))
        ),
    );
    report.figure(
        "normal client requests per second before / during",
        format!(
            "{:.0} / {:.0}",
            unloaded.total() as f64 / 10.0,
            loaded.total() as f64 / duration.as_secs_f64()
        ),
    );
    report.figure("normal client outcomes during", loaded.outcomes_text());
    let limit = Duration::from_secs(TIMEOUT_SECS) + SLACK;
    report.bound(
        &format!("every trickled header cut off within {} s", limit.as_secs()),
        !holds.header.is_empty() && holds.header.iter().all(|d| *d <= limit),
    );
    report.bound(
        &format!(
            "every trickled body cut off within {} s of its header",
            limit.as_secs()
        ),
        !holds.body.is_empty() && holds.body.iter().all(|d| *d <= limit),
    );
    report.bound("no trickle outlives the run", holds.never_cut == 0);
    report.bound(
        "0 errors for the normal client",
        loaded.errors(200) == 0 && unloaded.errors(200) == 0,
    );
    report.bound(
        "normal client p99 within 2 × its figure before the trickling",
        loaded.quantile_ms(0.99) <= 2.0 * unloaded.quantile_ms(0.99),
    );
    report.bound("the gateway is still running", load::alive(gw.pid()));
    report.finish();
}

#[derive(Clone, Copy)]
enum Trickle {
    Header,
    Body,
}

/// How long each trickling connection was held before the gateway cut it off.
#[derive(Default, Clone)]
struct Holds {
    header: Vec<Duration>,
    body: Vec<Duration>,
    answered_408: u64,
    never_cut: u64,
}

fn max_secs(holds: &[Duration]) -> f64 {
    holds
        .iter()
        .max()
        .copied()
        .unwrap_or_default()
        .as_secs_f64()
}

async fn trickle_until_stopped(port: u16, kind: Trickle, stop: Stop, holds: Arc<Mutex<Holds>>) {
    while !stop.requested() {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let (bytes, head) = match kind {
            Trickle::Header => (
                format!("GET /apps/one/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n", "s".repeat(200)).into_bytes(),
                Vec::new(),
            ),
            Trickle::Body => (
                vec![b'b'; 100_000],
                b"POST /hub/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n".to_vec(),
            ),
        };
        if conn.write_all(&head).await.is_err() {
            continue;
        }
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut sent = 0;
        let cut = loop {
            let mut buf = [0u8; 1024];
            tokio::select! {
                read = conn.read(&mut buf) => match read {
                    Ok(n) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break true,
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if stop.requested() {
                        break false;
                    }
                    if sent < bytes.len() && conn.write_all(&bytes[sent..sent + 1]).await.is_err() {
                        break true;
                    }
                    sent += 1;
                }
            }
        };
        let held = started.elapsed();
        let Ok(mut holds) = holds.lock() else { return };
        if !cut {
            holds.never_cut += u64::from(held > Duration::from_secs(TIMEOUT_SECS) + SLACK);
            continue;
        }
        if answer.starts_with(b"HTTP/1.1 408") {
            holds.answered_408 += 1;
        }
        match kind {
            Trickle::Header => holds.header.push(held),
            Trickle::Body => holds.body.push(held),
        }
    }
}
