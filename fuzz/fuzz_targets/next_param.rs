//! `next` sanitiser: whatever comes in, what goes out must be safe to put in a `Location` header
//! and must resolve, in a browser's URL parser, to the gateway's own origin — also after one more
//! round of percent-decoding, as some servers and frameworks do.
#![no_main]

use hubgate::auth::next::sanitize;
use libfuzzer_sys::fuzz_target;
use url::Url;

fn percent_decode_once(s: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn assert_same_origin(base: &Url, location: &str, what: &str) {
    if let Ok(resolved) = base.join(location) {
        assert_eq!(
            resolved.origin(),
            base.origin(),
            "{what} {location:?} resolves to {resolved}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let out = sanitize(input);
    assert!(out.starts_with('/'), "{out:?}");
    assert!(out == "/" || !out.starts_with("//"), "{out:?}");
    // Header-safe: visible ASCII only, so no CR/LF, no control character, no raw UTF-8.
    assert!(
        out.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "not header-safe: {out:?}"
    );
    assert!(!out.contains('\\'), "{out:?}");
    let base = Url::parse("https://gateway.example/hub/login?next=x").unwrap();
    assert!(base.join(&out).is_ok(), "{out:?} does not resolve");
    assert_same_origin(&base, &out, "sanitised");
    if let Ok(decoded) = String::from_utf8(percent_decode_once(&out)) {
        assert!(
            !decoded.chars().any(|c| c.is_control()),
            "decodes to a control character: {out:?}"
        );
        assert_same_origin(&base, &decoded, "decoded once");
    }
    // Idempotent: sanitising a sanitised value changes nothing.
    assert_eq!(sanitize(&out), out);
});
