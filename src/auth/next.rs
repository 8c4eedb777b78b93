//! The `next` parameter: where to go after sign-in. Only a same-origin path is accepted; anything
//! else (another origin, a scheme, `//host`, a backslash that browsers read as a slash, control
//! characters that could split a header or that URL parsers silently drop) becomes `/`. This is
//! what stops open redirects through the sign-in and authorize redirects.

/// Longer than any URL a person follows; a longer `next` is an attack or a mistake.
const MAX_LEN: usize = 4096;

/// A same-origin path for a `Location` header: `next` itself when it is safe (non-ASCII characters
/// percent-encoded, so the header is plain visible ASCII), otherwise `/`.
pub fn sanitize(next: &str) -> String {
    if !is_safe(next) {
        return "/".to_string();
    }
    // Measured again after encoding (which can triple the length), so that sanitising the
    // result gives the result back (found by fuzzing).
    let encoded = percent_encode_non_ascii(next);
    if encoded.len() > MAX_LEN {
        return "/".to_string();
    }
    encoded
}

fn is_safe(next: &str) -> bool {
    let bytes = next.as_bytes();
    // Exactly one leading slash: `//host` and `/\host` are another origin to a browser, and
    // anything not starting with `/` is a scheme (`javascript:`) or a relative path.
    if bytes.first() != Some(&b'/') || bytes.get(1) == Some(&b'/') || bytes.get(1) == Some(&b'\\') {
        return false;
    }
    if next.len() > MAX_LEN {
        return false;
    }
    // Browsers strip tab, CR and LF anywhere in a URL (`/\t/evil.example` is `//evil.example`),
    // and CR/LF in a header value would split the response.
    if next
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return false;
    }
    let lower = next.to_ascii_lowercase();
    // Percent-encoded slashes or backslashes right after the first '/' are decoded by some
    // servers and frameworks into `//host`.
    if lower.starts_with("/%2f") || lower.starts_with("/%5c") {
        return false;
    }
    // Nor a control character in percent-encoded form (C0 like `%0d%0a`, or C1 like `%C2%85`),
    // which a decoding hop on the way would turn back into a raw one; and nothing that does not
    // decode to UTF-8, which a Latin-1 decoder would read as C1 controls.
    match String::from_utf8(decode_once(next)) {
        Ok(decoded) => !decoded.chars().any(char::is_control),
        Err(_) => false,
    }
}

/// `text` with each `%XX` decoded once, the way a server or framework on the way might.
fn decode_once(text: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let (b'%', Some(hi), Some(lo)) = (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn percent_encode_non_ascii(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_same_origin_paths() {
        for ok in [
            "/",
            "/apps/grafana/d/x?from=now-1h&to=now",
            "/apps/a/#frag",
            "/a/%2Fb",
            "/apps/a/caf%C3%A9?q=%20x%25",
            "/50%",
        ] {
            assert_eq!(sanitize(ok), ok);
        }
    }

    #[test]
    fn non_ascii_is_percent_encoded_for_the_location_header() {
        assert_eq!(sanitize("/apps/a/café"), "/apps/a/caf%C3%A9");
        assert_eq!(sanitize("/é/x?q=ü"), "/%C3%A9/x?q=%C3%BC");
        // Encoding keeps it one same-origin path, and a second pass changes nothing.
        assert_eq!(sanitize(&sanitize("/é")), sanitize("/é"));
        // Short enough raw, too long encoded: refused, so the result is stable.
        let long = format!("/{}", "é".repeat(1500));
        assert!(long.len() <= MAX_LEN);
        assert_eq!(sanitize(&long), "/");
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%5Cevil.example",
            "/ok\r\nSet-Cookie: x=1",
            "/ok%0d%0aSet-Cookie:x",
            "/tab\there",
            "evil.example/path",
            "/a\\b",
            "/\t/evil.example",
            "/%09/evil.example",
            "/x%00",
            "/x%7F",
            "/x%1b[31m",
            "/x%C2%85",
            "/x%c2%9f",
            "/x%FF",
            "/\u{0085}evil",
            "/\u{2028}evil",
            "/\u{3000}evil",
            &format!("/{}", "a".repeat(5000)),
        ] {
            assert_eq!(sanitize(bad), "/", "{bad:?}");
        }
    }
}
