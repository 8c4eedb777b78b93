//! `POST <hub>/api/logout-event` body parser: whatever a front end (or anyone) sends, it answers
//! without panicking, and what it accepts is safe to log and keep — a known type, texts of at
//! most 500 characters without control characters (one log line stays one line), a location
//! without query or fragment, an idle time that is a finite number of zero or more.
#![no_main]

use hubgate::hub::logout_events::{parse, MAX_BODY};
use hubgate::session::recent_ends::ReportType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The endpoint refuses larger bodies before parsing (413).
    if data.len() > MAX_BODY {
        return;
    }
    let Ok(event) = parse(data) else {
        return;
    };
    assert!(ReportType::ALL.contains(&event.kind));
    assert_eq!(ReportType::parse(event.kind.as_str()), Some(event.kind));
    for text in [&event.message, &event.location] {
        assert!(text.chars().count() <= 500, "{text:?}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
    assert!(!event.location.contains(['?', '#']), "{:?}", event.location);
    if let Some(idle) = event.idle_minutes {
        assert!(idle.is_finite() && idle >= 0.0, "{idle}");
    }
});
