//! The load of the reliability suite: keep-alive HTTP/1.1 connections that each send one request
//! after another and record what came back and how long it took. Plain bytes over TCP (as wrk
//! sends them), so a hostile request is as easy to send as a good one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection to the gateway.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The last answer said `Connection: close`: the gateway closes this connection after it.
    closing: bool,
}

/// What one exchange ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Status(u16),
    /// The connection closed or failed before a whole answer.
    Closed,
    /// No whole answer within the exchange's time limit.
    TimedOut,
    /// The connection could not be opened.
    Refused,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Status(code) => write!(f, "{code}"),
            Outcome::Closed => write!(f, "closed"),
            Outcome::TimedOut => write!(f, "timed out"),
            Outcome::Refused => write!(f, "refused"),
        }
    }
}

impl Conn {
    pub async fn open(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
            closing: false,
        })
    }

    /// Sends `request` (whole, raw) and reads one answer (`Content-Length` or chunked body).
    pub async fn exchange(&mut self, request: &[u8], limit: Duration) -> Outcome {
        match tokio::time::timeout(limit, self.exchange_inner(request)).await {
            Ok(Ok(status)) => Outcome::Status(status),
            Ok(Err(_)) => Outcome::Closed,
            Err(_) => Outcome::TimedOut,
        }
    }

    async fn exchange_inner(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let head_end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status line"))?;
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        self.closing = header("connection:").is_some_and(|v| v.contains("close"));
        if status == 101 || status == 204 || status == 304 {
            return Ok(status);
        }
        if let Some(length) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < head_end + length {
                self.fill().await?;
            }
        } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            while find(&self.buf[head_end..], b"0\r\n\r\n").is_none() {
                self.fill().await?;
            }
        }
        Ok(status)
    }

    /// Whether another request may be sent on this connection.
    pub fn reusable(&self) -> bool {
        !self.closing
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// One exchange on `conn`, opened first if there is none, as a browser does it: a keep-alive
/// connection the gateway closed after its last answer (it may, after an error page) is opened
/// again and the request resent once; a connection that failed is dropped, after a short pause so
/// a refusing port is not hammered.
pub async fn exchange_on(
    conn: &mut Option<Conn>,
    port: u16,
    request: &[u8],
    limit: Duration,
) -> Outcome {
    for _ in 0..2 {
        let reused = conn.is_some();
        if conn.is_none() {
            *conn = Conn::open(port).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Outcome::Refused;
        };
        let outcome = c.exchange(request, limit).await;
        let stale = reused && outcome == Outcome::Closed && c.buf.is_empty();
        if !matches!(outcome, Outcome::Status(_)) || !c.reusable() {
            *conn = None;
        }
        if stale {
            continue;
        }
        if !matches!(outcome, Outcome::Status(_)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return outcome;
    }
    Outcome::Closed
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `GET path` with the given extra header lines (each ending in `\r\n`).
pub fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").into_bytes()
}

/// Outcomes and latencies of many exchanges.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Microseconds, one per exchange.
    pub latencies: Vec<u32>,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome, took: Duration) {
        *self.outcomes.entry(outcome).or_default() += 1;
        self.latencies
            .push(took.as_micros().min(u32::MAX as u128) as u32);
    }

    pub fn merge(&mut self, other: Tally) {
        for (outcome, n) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
        self.latencies.extend(other.latencies);
    }

    pub fn total(&self) -> u64 {
        self.outcomes.values().sum()
    }

    pub fn count(&self, wanted: impl Fn(&Outcome) -> bool) -> u64 {
        self.outcomes
            .iter()
            .filter(|(o, _)| wanted(o))
            .map(|(_, n)| n)
            .sum()
    }

    /// Exchanges that did not end with `expected`.
    pub fn errors(&self, expected: u16) -> u64 {
        self.count(|o| *o != Outcome::Status(expected))
    }

    /// The `q` quantile (0.99 for p99) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[i] as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies.iter().copied().max().unwrap_or(0) as f64 / 1000.0
    }

    /// `200: 12345, closed: 2` — every outcome with its count.
    pub fn outcomes_text(&self) -> String {
        let parts: Vec<String> = self
            .outcomes
            .iter()
            .map(|(o, n)| format!("{o}: {n}"))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A flag every load task watches; set once to stop them all.
#[derive(Clone)]
pub struct Stop(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Stop {
    pub fn now(&self) {
        self.0.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once [`Stop::now`] has been called (at once if it already was).
    pub async fn wait(&self) {
        let mut seen = self.0.subscribe();
        let _ = seen.wait_for(|stopped| *stopped).await;
    }
}

/// `connections` keep-alive connections sending `request` one after another until `stop`; a
/// connection that closes is opened again (and the failure counted). The tally, once stopped.
pub fn steady(
    port: u16,
    connections: usize,
    request: Vec<u8>,
    limit: Duration,
    stop: Stop,
) -> tokio::task::JoinHandle<Tally> {
    let request = Arc::new(request);
    let tallies = Arc::new(Mutex::new(Tally::default()));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (request, stop, tallies) = (request.clone(), stop.clone(), tallies.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut conn = None;
                while !stop.requested() {
                    let started = Instant::now();
                    let outcome = exchange_on(&mut conn, port, &request, limit).await;
                    tally.add(outcome, started.elapsed());
                }
                if let Ok(mut all) = tallies.lock() {
                    all.merge(tally);
                }
            })
        })
        .collect();
    tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
        let all = tallies.lock().map(|t| t.clone()).unwrap_or_default();
        all
    })
}

/// The gateway process's resident memory, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    proc_status_kib(pid, "VmRSS:") as f64 / 1024.0
}

/// How many file descriptors the process holds open.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// How many connections to `port` on loopback are established on the server's side (the
/// gateway's accepted connections still open), from `/proc/net/tcp`.
pub fn accepted_connections(port: u16) -> usize {
    let local = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && format!("{} ", fields[1]).ends_with(&local) && fields[3] == "01"
        })
        .count()
}

/// Whether the process is still running (not exited, not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// A cycling client's exchanges may take this long before they count as timed out.
const LIMIT: Duration = Duration::from_secs(10);

/// What one client saw, cycling through cookies on both instances.
pub struct Seen {
    pub tally: Tally,
    /// When (since the start) each request that did not end in 200 or 401 was made.
    pub failures: Vec<Duration>,
}

/// One client going round `cookies` and `ports` (one keep-alive connection to each) until
/// `stop`, as a user of each of those sessions behind a load balancer would.
pub async fn cycle(ports: Vec<u16>, cookies: Vec<String>, stop: Stop, started: Instant) -> Seen {
    let mut seen = Seen {
        tally: Tally::default(),
        failures: Vec::new(),
    };
    let mut conns: Vec<Option<Conn>> = ports.iter().map(|_| None).collect();
    let mut n = 0usize;
    while !stop.requested() {
        let which = n % ports.len();
        let cookie = &cookies[(n / ports.len()) % cookies.len()];
        n += 1;
        let began = Instant::now();
        let outcome = exchange_on(
            &mut conns[which],
            ports[which],
            &signed_in_request(cookie),
            LIMIT,
        )
        .await;
        seen.tally.add(outcome, began.elapsed());
        if !matches!(outcome, Outcome::Status(200) | Outcome::Status(401)) {
            seen.failures.push(began - started);
        }
    }
    seen
}

/// Alice signed in and app `one` opened, as a browser does: the Cookie header of her requests to it.
pub async fn signed_in_cookie(gw: &crate::common::Gateway) -> String {
    let mut browser = gw.browser();
    browser
        .sign_in_and_open("alice", crate::common::ALICE_PASSWORD, "one")
        .await;
    browser.cookie_header("/apps/one/x").expect("cookies")
}

/// A signed-in request to app `one`, as an API client asks (401 JSON when refused).
pub fn signed_in_request(cookie: &str) -> Vec<u8> {
    get(
        "/apps/one/x",
        &format!("Accept: application/json\r\nCookie: {cookie}\r\n"),
    )
}

/// The outcome of one signed-in request on a new connection.
pub async fn signed_in_status(port: u16, cookie: &str) -> Outcome {
    match Conn::open(port).await {
        Ok(mut conn) => conn.exchange(&signed_in_request(cookie), LIMIT).await,
        Err(_) => Outcome::Refused,
    }
}
