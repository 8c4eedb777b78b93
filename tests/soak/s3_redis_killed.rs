//! 3. Redis killed (SIGKILL) and restarted under traffic, behind two gateway instances: signed-out
//!    cookies replayed all the while are never admitted, and every session Redis had persisted is
//!    valid again afterwards.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::{self, cycle, signed_in_status, Outcome, Stop};
use crate::report::Report;

const SESSIONS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_traffic() {
    // `deny` is the default; `allow_cached` keeps cached sessions working through the outage.
    let mut report = Report::new(
        "3-redis-killed",
        "3. Redis killed (-9) and restarted under traffic",
        &format!(
            "Two instances share one Redis (`appendonly yes`, `appendfsync always`). {SESSIONS} \
             sessions are signed in, half of them on each instance, and half of all are signed out \
             again. Then, from two clients each: one replays the signed-out cookies on both \
             instances without pause, one uses the live sessions on both. After 5 s Redis is \
             killed with SIGKILL; 5 s later it is started again on its files; the traffic goes on \
             for 15 s more. Run once per `session.on_store_error` mode."
        ),
    );
    for mode in ["deny", "allow_cached"] {
        run(mode, &mut report).await;
    }
    report.finish();
}

async fn run(mode: &str, report: &mut Report) {
    let mut redis = Redis::start_persistent();
    let setup = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 1)]))
        .session(&format!("on_store_error = \"{mode}\""));
    let a = setup.clone().start();
    let b = setup.start();

    let mut live = Vec::new();
    let mut revoked = Vec::new();
    for n in 0..SESSIONS {
        let at = if n % 2 == 0 { &a } else { &b };
        let mut browser = at.browser();
        browser
            .sign_in_and_open("alice", ALICE_PASSWORD, "one")
            .await;
        let cookie = browser.cookie_header("/apps/one/x").expect("cookies");
        if n % 4 < 2 {
            live.push(cookie);
        } else {
            assert_eq!(browser.get("/hub/logout").await.status, 302);
            revoked.push(cookie);
        }
    }

    let stop = Stop::default();
    let started = Instant::now();
    let ports = vec![a.port, b.port];
    let replayed = tokio::spawn(cycle(ports.clone(), revoked.clone(), stop.clone(), started));
    let used = tokio::spawn(cycle(ports.clone(), live.clone(), stop.clone(), started));
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.stop();
    let killed_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.restart();
    let restarted_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(15)).await;
    stop.now();
    let replayed = replayed.await.expect("replay");
    let used = used.await.expect("live use");

    let wrongly_admitted = replayed.tally.count(|o| *o == Outcome::Status(200));
    let failures_after_restart: Vec<Duration> = used
        .failures
        .iter()
        .copied()
        .filter(|at| *at > restarted_at)
        .collect();
    let recovered_after = failures_after_restart
        .last()
        .map_or(0.0, |last| (*last - restarted_at).as_secs_f64());
    let mut still_valid = 0;
    let mut still_refused = 0;
    for port in ports.iter().copied() {
        for cookie in &live {
            still_valid +=
                usize::from(signed_in_status(port, cookie).await == Outcome::Status(200));
        }
        for cookie in &revoked {
            still_refused +=
                usize::from(signed_in_status(port, cookie).await == Outcome::Status(401));
        }
    }

    report.figure(
        &format!("{mode}: signed-out cookies replayed"),
        replayed.tally.total(),
    );
    report.figure(
        &format!("{mode}: signed-out cookies admitted"),
        wrongly_admitted,
    );
    report.figure(
        &format!("{mode}: replay outcomes"),
        replayed.tally.outcomes_text(),
    );
    report.figure(&format!("{mode}: live requests"), used.tally.total());
    report.figure(
        &format!("{mode}: live outcomes (errors are what users saw)"),
        used.tally.outcomes_text(),
    );
    report.figure(
        &format!("{mode}: Redis killed at / restarted at"),
        format!(
            "{:.1} s / {:.1} s",
            killed_at.as_secs_f64(),
            restarted_at.as_secs_f64()
        ),
    );
    report.figure(
        &format!("{mode}: seconds from restart to the last failed live request"),
        format!("{recovered_after:.2}"),
    );
    report.figure(
        &format!("{mode}: live sessions valid afterwards (on both instances)"),
        format!("{still_valid} of {}", live.len() * 2),
    );
    report.bound(
        &format!("{mode}: 0 signed-out cookies admitted"),
        wrongly_admitted == 0,
    );
    report.bound(
        &format!("{mode}: every session persisted before the kill is valid after, on both"),
        still_valid == live.len() * 2,
    );
    report.bound(
        &format!("{mode}: every signed-out session still refused after, on both"),
        still_refused == revoked.len() * 2,
    );
    report.bound(
        &format!("{mode}: recovered within 10 s of the restart"),
        recovered_after <= 10.0,
    );
    report.bound(
        &format!("{mode}: both gateways still running"),
        load::alive(a.pid()) && load::alive(b.pid()),
    );
}
