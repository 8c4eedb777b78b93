//! Brute force: failed sign-ins lock out the user name and the client address, parallel guesses
//! cannot slip past the limit, and an unknown user costs one argon2 check like a known one
//! (counted, not timed).

mod common;
use common::*;

async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .hub("login_max_failures = 3\nlogin_failure_window = \"1m\"\nlogin_lockout = \"1m\"")
        .start()
}

fn retry_after(page: &Page) -> u64 {
    page.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", page.headers))
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_lock_out_the_user_and_the_address() {
    let gw = gateway().await;
    // Three wrong passwords for bob from 127.0.0.2.
    for _ in 0..3 {
        let mut guesser = gw.browser_from("127.0.0.2");
        let page = guesser.sign_in_to("bob", "wrong", false, "/").await;
        assert_eq!(page.status, 401);
    }
    // Bob is locked, from any address, even with his real password.
    let mut elsewhere = gw.browser_from("127.0.0.3");
    let page = elsewhere.sign_in_to("bob", BOB_PASSWORD, false, "/").await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!((1..=60).contains(&retry_after(&page)), "{:?}", page.headers);
    assert!(page.body.contains("Too many failed sign-ins"));
    assert!(elsewhere.cookie("hubgate-session-id").is_none());
    // And 127.0.0.2 is locked for every user name.
    let mut same_address = gw.browser_from("127.0.0.2");
    let page = same_address
        .sign_in_to("alice", ALICE_PASSWORD, false, "/")
        .await;
    assert_eq!(page.status, 429);
    assert!(retry_after(&page) >= 1);

    // Unknown user names from one address count against that address too.
    for name in ["mallory", "root", "admin"] {
        let mut guesser = gw.browser_from("127.0.0.4");
        assert_eq!(guesser.sign_in_to(name, "x", false, "/").await.status, 401);
    }
    let mut guesser = gw.browser_from("127.0.0.4");
    assert_eq!(
        guesser
            .sign_in_to("alice", ALICE_PASSWORD, false, "/")
            .await
            .status,
        429
    );

    assert_eq!(
        gw.metric_reaches("hubgate_logins_total{result=\"locked_out\"}", 3.0)
            .await,
        3.0
    );
    // Alice, from her own address, is unaffected.
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_parallel_guesses_gets_no_more_than_the_limit() {
    let gw = gateway().await;
    // Twelve guesses, each with its own valid form, fired at once from one address.
    let mut guessers = Vec::new();
    for _ in 0..12 {
        let mut browser = gw.browser_from("127.0.0.5");
        let form = browser.get("/hub/login").await;
        let csrf = hidden_field(&form.body, "csrf");
        guessers.push((browser, csrf));
    }
    // Spawned all at once (collected before the first await), so they really are in flight together.
    let attempts: Vec<_> = guessers
        .into_iter()
        .map(|(mut browser, csrf)| {
            tokio::spawn(async move {
                browser
                    .post_form(
                        "/hub/login",
                        &[
                            ("username", "bob"),
                            ("password", "guess"),
                            ("csrf", &csrf),
                            ("next", "/"),
                        ],
                    )
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 12, "{statuses:?}");
    assert!(
        checked <= 3,
        "{checked} guesses were checked, the limit is 3: {statuses:?}"
    );
    assert!(gw.log_events("login_failed").len() <= 3);
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_costs_one_password_check_like_a_known_one() {
    let gw = gateway().await;
    let mut checks = Vec::new();
    for (i, user) in ["alice", "nobody-by-this-name", "bob"]
        .into_iter()
        .enumerate()
    {
        let mut browser = gw.browser_from(&format!("127.0.1.{}", i + 1));
        let page = browser.sign_in_to(user, "wrong", false, "/").await;
        assert_eq!(page.status, 401);
        assert!(page.body.contains("Wrong user name or password."));
        let events = gw.log_events("login_failed");
        let last = events.last().expect("a login_failed line");
        assert_eq!(last["fields"]["user"], user);
        checks.push(
            last["fields"]["password_checks"]
                .as_u64()
                .expect("password_checks"),
        );
    }
    // One argon2 verification per attempt, whether the user exists or not.
    assert_eq!(checks[1], checks[0] + 1, "{checks:?}");
    assert_eq!(checks[2], checks[1] + 1, "{checks:?}");
    assert_still_serves(&gw, "one").await;
}
