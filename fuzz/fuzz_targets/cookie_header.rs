//! Cookie header parsing: `lookup` agrees with a plain reference reading of the pairs (conflicting
//! copies are never resolved in anyone's favour), and the header forwarded upstream never carries a
//! gateway cookie.
#![no_main]

use hubgate::auth::cookies::{find, lookup, pairs, without_gateway_cookies, CookieNames, Found};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let names = CookieNames::new("hubgate");
    // Newlines split the input into several Cookie headers (HTTP/2 sends one per cookie).
    let headers: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for name in ["hubgate-session-id", "hubgate-app-one", "theme", ""] {
        let mut distinct: Vec<&[u8]> = Vec::new();
        for (n, v) in headers.iter().flat_map(|h| pairs(h)) {
            if n == name.as_bytes() && !distinct.contains(&v) {
                distinct.push(v);
            }
        }
        let found = lookup(headers.iter().copied(), name);
        match distinct.as_slice() {
            [] => assert_eq!(found, Found::Missing),
            [one] => match std::str::from_utf8(one) {
                Ok(text) => assert_eq!(found, Found::One(text)),
                Err(_) => assert_eq!(found, Found::Missing),
            },
            _ => assert_eq!(found, Found::Conflicting),
        }
        assert_eq!(find(headers.iter().copied(), name), found.value());
    }
    for header in &headers {
        let Some(kept) = without_gateway_cookies(header, &names) else {
            continue;
        };
        for (n, _) in pairs(&kept) {
            assert!(
                !names.is_gateway_cookie(n),
                "{:?} forwarded",
                String::from_utf8_lossy(n)
            );
        }
        for part in kept.split(|&b| b == b';') {
            let name = part
                .split(|&b| b == b'=')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            assert!(!names.is_gateway_cookie(name));
        }
        assert_eq!(without_gateway_cookies(&kept, &names).as_ref(), Some(&kept));
    }
});
