//! The `next` parameter: where to go after sign-in. Only a same-origin path is accepted; anything
//! else (another origin, a scheme, `//host`, a backslash that browsers read as a slash, control
//! characters that could split a header) becomes `/`. This is what stops open redirects.

pub fn sanitize(next: &str) -> String {
    if is_safe(next) {
        next.to_string()
    } else {
        "/".to_string()
    }
}

fn is_safe(next: &str) -> bool {
    let bytes = next.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.get(1) == Some(&b'/') || bytes.get(1) == Some(&b'\\') {
        return false;
    }
    if next.len() > 4096 {
        return false;
    }
    if next
        .chars()
        .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    {
        return false;
    }
    // Percent-encoded slashes or backslashes right after the first '/' are decoded by some
    // servers and browsers into `//host`.
    let lower = next.to_ascii_lowercase();
    !(lower.starts_with("/%2f")
        || lower.starts_with("/%5c")
        || lower.contains("%0d")
        || lower.contains("%0a"))
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
        ] {
            assert_eq!(sanitize(ok), ok);
        }
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
        ] {
            assert_eq!(sanitize(bad), "/", "{bad:?}");
        }
    }
}
