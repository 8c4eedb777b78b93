//! "Firefox 128 on Linux": a device as a person recognises it, from a `User-Agent` header. Only the
//! browser's name and major version and the operating system are kept — enough to tell one's
//! laptop from one's phone, too little to fingerprint anyone.

/// Longest description kept (a forged user agent cannot make records grow).
const MAX_LEN: usize = 64;

pub fn describe(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|ua| !ua.trim().is_empty()) else {
        return "Unknown device".to_string();
    };
    let text = match (browser(ua), os(ua)) {
        (Some(browser), Some(os)) => format!("{browser} on {os}"),
        (Some(browser), None) => browser,
        (None, Some(os)) => format!("A browser on {os}"),
        (None, None) => {
            // A tool (`curl/8.5.0`): its first word, printable ASCII only.
            let word: String = ua
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect();
            if word.is_empty() {
                "Unknown device".to_string()
            } else {
                word
            }
        }
    };
    text.chars().take(MAX_LEN).collect()
}

/// The browser and its major version; the order matters, since Edge and Opera also say
/// "Chrome" and Chrome also says "Safari".
fn browser(ua: &str) -> Option<String> {
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
    ];
    for (marker, name) in BROWSERS {
        if let Some(version) = version_after(ua, marker) {
            return Some(format!("{name} {version}"));
        }
    }
    if ua.contains("Safari/") {
        return Some(match version_after(ua, "Version/") {
            Some(version) => format!("Safari {version}"),
            None => "Safari".to_string(),
        });
    }
    None
}

fn os(ua: &str) -> Option<&'static str> {
    const SYSTEMS: [(&str, &str); 8] = [
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
    ];
    SYSTEMS
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map(|(_, name)| *name)
}

/// The digits right after `marker` (`Firefox/128.0` → `128`).
fn version_after<'a>(ua: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &ua[ua.find(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn devices_are_named_by_browser_and_system() {
        for (ua, expected) in [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128 on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge 131 on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari 17 on macOS"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari 17 on iOS"),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome 131 on Android"),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Headless Chrome 131 on Linux"),
            ("curl/8.5.0", "curl/8.5.0"),
            ("", "Unknown device"),
            ("\u{7f}\u{1}", "Unknown device"),
        ] {
            assert_eq!(describe(Some(ua)), expected, "{ua}");
        }
        assert_eq!(describe(None), "Unknown device");
        assert!(describe(Some(&"x".repeat(10_000))).len() <= 64);
    }
}
