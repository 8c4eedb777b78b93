//! A client's `Authorization` header authenticates nothing at the gateway: it reaches an app
//! unchanged only when that app sets `pass_authorization = true`, and is removed otherwise.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_reaches_only_the_apps_that_ask_for_it() {
    let (one, own) = (upstream("one").await, upstream("own").await);
    let gw = Setup::default()
        .app(App::new("one", one))
        .app(App::new("own", own).with("pass_authorization = true"))
        .start();
    let mut alice = Browser::signed_in_api(&gw, "alice", ALICE_PASSWORD, "one").await;
    alice.accept = HTML;
    alice.follow("/apps/own/").await;
    alice.accept = JSON;
    let basic = [("authorization", "Basic YWRtaW46YWRtaW4=")];

    let seen = alice.get_with("/apps/one/x", &basic).await.json();
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");
    assert!(
        seen["headers"].get("authorization").is_none(),
        "removed: {seen}"
    );

    let seen = alice.get_with("/apps/own/x", &basic).await.json();
    assert_eq!(seen["headers"]["authorization"], "Basic YWRtaW46YWRtaW4=");
    assert_eq!(seen["headers"]["x-forwarded-user"], "alice");

    // Without the gateway's cookies an Authorization header opens nothing, even where passed.
    let mut stranger = gw.browser().api();
    for app in ["one", "own"] {
        let page = stranger
            .get_with(
                &format!("/apps/{app}/x"),
                &[("authorization", "Bearer anything")],
            )
            .await;
        assert_eq!(
            (page.status, page.json()["reason"].as_str()),
            (401, Some("no_token")),
            "{app}: {}",
            page.body
        );
    }
}
