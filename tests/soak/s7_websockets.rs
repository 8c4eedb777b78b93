//! 7. WebSockets: 1,000 upgrades while HTTP load keeps both cores busy, each proven by an echo —
//!    and sockets left quiet for longer than a minute still carry messages afterwards.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;
use crate::load::{self, Stop};
use crate::report::{seconds, Report};

const UPGRADES: usize = 1_000;
const PARALLEL: usize = 16;
const QUIET_SOCKETS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_upgrades_under_load_all_echo() {
    let quiet_for = seconds(65).max(Duration::from_secs(65));
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", ALICE_PASSWORD, "one")
        .await;
    let cookie = browser.cookie_header("/apps/one/ws").expect("cookies");
    let url = gw.url("/apps/one/ws").replace("http://", "ws://");

    let mut quiet = Vec::new();
    for _ in 0..QUIET_SOCKETS {
        quiet.push(open_echoing_websocket(&url, Some(&cookie)).await);
    }
    let quiet_since = Instant::now();
    let stop = Stop::default();
    let http = load::steady(
        gw.port,
        32,
        load::signed_in_request(&browser.cookie_header("/apps/one/x").expect("cookies")),
        Duration::from_secs(10),
        stop.clone(),
    );
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..UPGRADES)
        .map(|n| {
            let (url, cookie) = (url.clone(), cookie.clone());
            async move { upgrade_and_echo(&url, &cookie, n).await }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let upgrades_took = started.elapsed();
    stop.now();
    let http = http.await.expect("http load");
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();

    if let Some(rest) = quiet_for.checked_sub(quiet_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let quiet_secs = quiet_since.elapsed().as_secs();
    let mut quiet_echoed = 0;
    for (n, socket) in quiet.iter_mut().enumerate() {
        let text = format!("after {quiet_secs} s, socket {n}");
        let _ = socket.send(Message::text(text.clone())).await;
        let echo = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        quiet_echoed +=
            usize::from(matches!(&echo, Ok(Some(Ok(Message::Text(t)))) if t.as_str() == text));
    }

    let mut report = Report::new(
        "7-websockets",
        "7. WebSockets: 1,000 upgrades under load",
        &format!(
            "{UPGRADES} WebSocket upgrades through the gateway, {PARALLEL} at a time, each sending \
             one message that must come back, while 32 connections send signed-in HTTP requests \
             back to back. {QUIET_SOCKETS} sockets opened before stay silent for {quiet_secs} s \
             (longer than Pingora's one-minute read timeout) and then must echo."
        ),
    );
    report.figure(
        "upgrades echoed",
        format!("{} of {UPGRADES}", UPGRADES - failures.len()),
    );
    report.figure(
        "upgrades per second",
        format!("{:.0}", UPGRADES as f64 / upgrades_took.as_secs_f64()),
    );
    report.figure(
        "first failures",
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    );
    report.figure(
        "HTTP requests meanwhile / outcomes",
        format!("{} / {}", http.total(), http.outcomes_text()),
    );
    report.figure(
        "quiet sockets echoing afterwards",
        format!("{quiet_echoed} of {QUIET_SOCKETS}"),
    );
    report.bound("every upgrade echoes", failures.is_empty());
    report.bound("0 errors for the HTTP load", http.errors(200) == 0);
    report.bound(
        "every quiet socket still echoes",
        quiet_echoed == QUIET_SOCKETS,
    );
    report.bound("the gateway is still running", load::alive(gw.pid()));
    report.finish();
}
