//! The original request as Traefik/Caddy (`X-Forwarded-*`) or nginx (`X-Original-*`) describe it
//! to `<hub>/forward-auth` and `<hub>/auth-request`: any header values give `None` or an origin-form
//! request with a host — never a panic, never a path the router could read as absolute.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use hubgate::proxy::forward_auth::{original, Asker};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 7] = [
    "x-forwarded-method",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-original-method",
    "x-original-url",
    "x-original-uri",
    "host",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (name, value) in NAMES.iter().zip(data.split(|b| *b == 0)) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    for asker in [Asker::ForwardAuth, Asker::AuthRequest] {
        if let Some(asked) = original(asker, "GET", &headers) {
            assert!(asked.path_and_query.starts_with('/'), "{asked:?}");
            assert!(!asked.host.is_empty(), "{asked:?}");
            assert_eq!(asked.method, asked.method.to_ascii_uppercase());
        }
    }
});
