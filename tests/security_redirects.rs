//! Open redirects: whatever `next` a hostile link carries, the gateway only ever redirects to a
//! path on its own origin — after sign-in, from /hub/authorize, and from the sign-in form.

mod common;
use common::*;

/// `next` values from real open-redirect reports against auth proxies and login pages.
const HOSTILE: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/ /evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "/ok\r\nSet-Cookie: injected=1",
    "/ok%0d%0aSet-Cookie:%20injected=1",
    "/ok\nLocation: https://evil.example",
    "/nul\u{0}byte",
    "/\u{2028}evil",
];

/// A Location that a browser resolves to the gateway's own origin, and that is plain header text.
fn assert_same_origin_path(location: &str, next: &str) {
    assert!(
        location.starts_with('/')
            && !location.starts_with("//")
            && !location.starts_with("/\\")
            && location.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "next {next:?} gave Location {location:?}"
    );
}

async fn gateway() -> Gateway {
    Setup::default()
        .app(App::new("one", upstream("one").await))
        .start()
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_never_redirects_off_site() {
    let gw = gateway().await;
    for next in HOSTILE {
        let mut browser = gw.browser();
        let page = browser
            .sign_in_to("alice", ALICE_PASSWORD, false, next)
            .await;
        assert_eq!(page.status, 303, "{next:?}: {}", page.body);
        assert_eq!(page.location(), Some("/"), "{next:?}");
        assert!(
            page.set_cookies().iter().all(|c| !c.contains("injected")),
            "{next:?}: {:?}",
            page.set_cookies()
        );
    }
    // Same-origin paths are kept as they are (non-ASCII percent-encoded for the header).
    for (next, location) in [
        ("/apps/one/notes?page=2#top", "/apps/one/notes?page=2#top"),
        ("/apps/one/a%2Fb", "/apps/one/a%2Fb"),
        ("/apps/one/café", "/apps/one/caf%C3%A9"),
    ] {
        let mut browser = gw.browser();
        let page = browser
            .sign_in_to("alice", ALICE_PASSWORD, false, next)
            .await;
        assert_eq!(page.location(), Some(location));
    }
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_never_redirects_off_site_signed_in_or_not() {
    let gw = gateway().await;
    let mut stranger = gw.browser();
    let mut alice = gw.browser();
    alice.sign_in_and_open("alice", ALICE_PASSWORD, "one").await;
    for next in HOSTILE {
        let query = format!(
            "/hub/authorize?app=one&next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        // Signed in: the app cookie is minted and the redirect goes home, not to evil.example.
        let page = alice.get(&query).await;
        assert_eq!(page.status, 302, "{next:?}");
        assert_eq!(page.location(), Some("/"), "{next:?}");
        // Not signed in: sent to sign in, and the `next` carried along is already the safe one.
        let page = stranger.get(&query).await;
        let location = page.location().unwrap().to_string();
        assert_same_origin_path(&location, next);
        assert_eq!(
            location, "/hub/login?next=%2Fhub%2Fauthorize%3Fapp%3Done%26next%3D%252F",
            "{next:?}"
        );
        // The sign-in form (what a hostile link to /hub/login shows) carries `/` as its next.
        let form = stranger
            .get(&format!(
                "/hub/login?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(hidden_field(&form.body, "next"), "/", "{next:?}");
        // And a signed-in visit to such a link goes home at once.
        let page = alice
            .get(&format!(
                "/hub/login?next={}",
                form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(page.location(), Some("/"), "{next:?}");
    }
    assert_still_serves(&gw, "one").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_redirect_to_authorize_carries_the_path_encoded() {
    let gw = gateway().await;
    // A request whose query holds an encoded CR/LF: it is carried as an encoded parameter value
    // into the redirect to authorize, never decoded into the header.
    let mut browser = gw.browser();
    let page = browser
        .get("/apps/one/x?a=%0d%0aSet-Cookie:%20injected=1&b=//evil.example")
        .await;
    assert_eq!(page.status, 302);
    let location = page.location().unwrap();
    assert_same_origin_path(location, "app path");
    assert!(location.starts_with("/hub/authorize?app=one&next=%2Fapps%2Fone%2Fx%3Fa%3D%250d%250a"));
    assert!(page.set_cookies().iter().all(|c| !c.contains("injected")));
    // The bare app prefix adds its slash and keeps the query as sent: still one same-origin path.
    let page = browser.get("/apps/one?x=%0d%0a//evil.example").await;
    assert_eq!(page.location(), Some("/apps/one/?x=%0d%0a//evil.example"));
    assert_still_serves(&gw, "one").await;
}
