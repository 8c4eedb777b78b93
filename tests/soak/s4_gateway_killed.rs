//! 4. A gateway instance killed (SIGKILL) under traffic: the other keeps serving, sessions survive,
//!    and the killed one starts again with nothing done by hand — and knows of a sign-out made
//!    while it was down.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::{self, cycle, signed_in_status, Outcome, Stop};
use crate::report::Report;

const SESSIONS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_under_traffic() {
    let redis = Redis::start();
    let setup = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 1)]));
    let mut a = setup.clone().start();
    let b = setup.start();
    let mut cookies = Vec::new();
    for _ in 0..SESSIONS {
        let mut browser = a.browser();
        browser
            .sign_in_and_open("alice", ALICE_PASSWORD, "one")
            .await;
        cookies.push(browser.cookie_header("/apps/one/x").expect("cookies"));
    }
    let (signed_out_while_down, live) = cookies.split_first().expect("sessions");
    let live = live.to_vec();

    let stop = Stop::default();
    let started = Instant::now();
    let on_a = tokio::spawn(cycle(vec![a.port], cookies.clone(), stop.clone(), started));
    let on_b = tokio::spawn(cycle(vec![b.port], cookies.clone(), stop.clone(), started));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let killed_pid = a.pid();
    a.kill();
    let killed_at = started.elapsed();
    // While A is down, one of its sessions signs out on B.
    let mut sign_out = Browser::new(b.url(""));
    sign_out.extra_headers = vec![("cookie".into(), signed_out_while_down.clone())];
    let signed_out = sign_out.get("/hub/logout").await.status;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restart_began = Instant::now();
    a.restart();
    let restart_took = restart_began.elapsed();
    let restarted_at = started.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.now();
    let on_a = on_a.await.expect("traffic on A");
    let on_b = on_b.await.expect("traffic on B");

    let a_failures_after_restart = on_a.failures.iter().filter(|t| **t > restarted_at).count();
    let mut live_valid = 0;
    for port in [a.port, b.port] {
        for cookie in &live {
            live_valid += usize::from(signed_in_status(port, cookie).await == Outcome::Status(200));
        }
    }
    let refused_on_a =
        signed_in_status(a.port, signed_out_while_down).await == Outcome::Status(401);

    let mut report = Report::new(
        "4-gateway-killed",
        "4. A gateway instance killed (-9) under traffic",
        &format!(
            "Two instances share one Redis; {SESSIONS} sessions signed in on A. One client uses \
             them on A, another on B. After 5 s A is killed with SIGKILL; one session signs out \
             on B while A is down; 5 s later A is started again with the same command and config; \
             10 s more of traffic."
        ),
    );
    report.figure(
        "requests on B / errors on B",
        format!("{} / {}", on_b.tally.total(), on_b.failures.len()),
    );
    report.figure("B outcomes", on_b.tally.outcomes_text());
    report.figure(
        "A outcomes (errors while it was down)",
        on_a.tally.outcomes_text(),
    );
    report.figure(
        "A killed at / started again at",
        format!(
            "{:.1} s / {:.1} s",
            killed_at.as_secs_f64(),
            restarted_at.as_secs_f64()
        ),
    );
    report.figure(
        "A serving again after its start",
        format!("{:.2} s", restart_took.as_secs_f64()),
    );
    report.figure("A errors after its start", a_failures_after_restart);
    report.figure(
        "live sessions valid afterwards (on both)",
        format!("{live_valid} of {}", live.len() * 2),
    );
    report.bound("0 errors on B", on_b.failures.is_empty());
    report.bound(
        "the sign-out on B while A was down answered 302",
        signed_out == 302,
    );
    report.bound(
        "every live session valid on both afterwards",
        live_valid == live.len() * 2,
    );
    report.bound(
        "A refuses the session signed out while it was down",
        refused_on_a,
    );
    report.bound(
        "A serves without errors once started again",
        a_failures_after_restart == 0,
    );
    report.bound("the killed process is gone", !load::alive(killed_pid));
    report.finish();
}
