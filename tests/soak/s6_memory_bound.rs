//! 6. Memory bound: a million distinct sessions, each used once, through a gateway whose cache
//!    holds 100,000: its memory levels off instead of growing with them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::load::{self, Tally};
use crate::report::Report;

const BATCHES: usize = 10;
const CAPACITY: usize = 100_000;
const CONNECTIONS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_sessions_through_a_cache_of_a_hundred_thousand() {
    let per_batch: usize = std::env::var("SOAK_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
        / BATCHES;
    let tool = bench_tool();
    let redis = Redis::start();
    let gw = Setup::default()
        .app(App::new("one", upstream("one").await))
        .with_redis(&redis)
        .tokens(&token_keys(&[("k1", 7)]))
        .session(&format!("cache_capacity = {CAPACITY}"))
        .start();
    let pid = gw.pid();
    let rss_start = load::rss_mib(pid);
    let mut rss = Vec::new();
    let mut tally = Tally::default();
    let started = Instant::now();
    for batch in 0..BATCHES {
        let cookies = seed(
            &tool,
            &redis,
            per_batch,
            gw.dir.path().join(format!("cookies-{batch}")),
        );
        tally.merge(each_once(gw.port, cookies).await);
        rss.push(load::rss_mib(pid));
        println!(
            "   after {} sessions: {:.1} MiB",
            (batch + 1) * per_batch,
            rss.last().copied().unwrap_or(0.0)
        );
    }
    let took = started.elapsed();

    let total = per_batch * BATCHES;
    let series: Vec<String> = rss.iter().map(|r| format!("{r:.0}")).collect();
    let at_cap = rss[(CAPACITY / per_batch.max(1)).clamp(1, BATCHES) - 1];
    // Eviction only begins once the cache is full, and its churn settles the allocator over the
    // next few batches; from halfway on, memory must stay flat while sessions keep coming.
    let halfway = rss[BATCHES / 2 - 1];
    let last = rss[BATCHES - 1];
    let mut report = Report::new(
        "6-memory-bound",
        "6. Memory bound: 1,000,000 sessions through a cache of 100,000",
        &format!(
            "{total} distinct sessions are made in Redis ({BATCHES} batches, as sign-in would make \
             them) and each is used once through one gateway with `cache_capacity = {CAPACITY}`, \
             {CONNECTIONS} connections at a time. The gateway's RSS is read after each batch."
        ),
    );
    report.figure(
        "requests / outcomes",
        format!("{} / {}", tally.total(), tally.outcomes_text()),
    );
    report.figure(
        "requests per second (each a cache miss and a Redis read)",
        format!("{:.0}", tally.total() as f64 / took.as_secs_f64()),
    );
    report.figure("gateway RSS at start", format!("{rss_start:.1} MiB"));
    report.figure(
        &format!("gateway RSS after each {per_batch} sessions (MiB)"),
        series.join(", "),
    );
    report.figure(
        "RSS growth from a full cache to the end",
        format!("{:.1} MiB", last - at_cap),
    );
    report.bound("0 errors", tally.errors(200) == 0);
    report.figure(
        "RSS growth over the second half (500,000 more sessions)",
        format!("{:.1} MiB", last - halfway),
    );
    report.bound(
        "RSS levels off: over the second half of the sessions it grows less than 5 %",
        last <= halfway * 1.05,
    );
    report.bound(
        "RSS stays far below what keeping every session would take (under half of 300 B each)",
        last - rss_start < (total as f64 * 300.0 / 2.0) / (1024.0 * 1024.0),
    );
    report.bound("the gateway is still running", load::alive(pid));
    report.finish();
}

/// bench/tool.rs's binary (`SOAK_BENCH_TOOL`, set by bench/soak), which makes sessions in Redis as
/// sign-in would, without argon2 per session.
fn bench_tool() -> std::path::PathBuf {
    std::env::var_os("SOAK_BENCH_TOOL")
        .map(std::path::PathBuf::from)
        .expect("SOAK_BENCH_TOOL: the bench_tool example's binary (bench/soak builds it)")
}

/// `count` new sessions in Redis; one Cookie header for each.
fn seed(
    tool: &std::path::Path,
    redis: &Redis,
    count: usize,
    out: std::path::PathBuf,
) -> Vec<String> {
    let status = std::process::Command::new(tool)
        .args([
            "seed",
            &redis.url(),
            "test:",
            &fixed_key(7),
            &count.to_string(),
            "one",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("bench_tool seed");
    assert!(status.success(), "bench_tool seed failed");
    let cookies = std::fs::read_to_string(&out).expect("cookie file");
    let _ = std::fs::remove_file(&out);
    cookies.lines().map(str::to_string).collect()
}

/// Each cookie used for one signed-in request, [`CONNECTIONS`] at a time.
async fn each_once(port: u16, cookies: Vec<String>) -> Tally {
    let cookies = Arc::new(cookies);
    let next = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (cookies, next, all) = (cookies.clone(), next.clone(), all.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut conn = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cookie) = cookies.get(i) else { break };
                    let started = Instant::now();
                    let outcome = load::exchange_on(
                        &mut conn,
                        port,
                        &load::signed_in_request(cookie),
                        Duration::from_secs(10),
                    )
                    .await;
                    tally.add(outcome, started.elapsed());
                }
                if let Ok(mut all) = all.lock() {
                    all.merge(tally);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let tally = all.lock().map(|t| t.clone()).unwrap_or_default();
    tally
}
