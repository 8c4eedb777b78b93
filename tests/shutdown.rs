//! Stopping: SIGTERM lets in-flight requests finish, then the process exits 0.

mod common;
use common::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_request_finish_and_exits_zero() {
    let mut gw = Setup::default()
        .app(App::new("one", upstream("one").await).with("public_paths = [\"/apps/one/\"]"))
        .start();
    let slow = tokio::spawn({
        let url = gw.url("/apps/one/slow?delay_ms=900");
        async move { reqwest::get(url).await.map(|r| r.status().as_u16()) }
    });
    // SIGTERM 0.3 s into a 0.9 s request: it ends well within shutdown_grace ("1s" in tests).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let code = tokio::task::spawn_blocking(move || {
        let code = gw.stop();
        (code, gw)
    })
    .await
    .unwrap();
    println!(
        "stopped {:?} after SIGTERM with one request in flight",
        started.elapsed()
    );
    assert_eq!(code.0, Some(0));
    assert_eq!(
        slow.await
            .unwrap()
            .expect("the in-flight request was answered"),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_gateway_stops_without_waiting_for_the_grace_period() {
    let mut gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .start();
    let started = Instant::now();
    assert_eq!(gw.stop(), Some(0));
    // shutdown_grace is "1s" in the test config: an idle stop must not need it (bounded loosely).
    println!("idle stop took {:?}", started.elapsed());
}
