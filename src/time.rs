//! One clock value per request: every decision takes `now` as an argument, so the logic can be
//! tested without waiting and a request never sees time move under it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_millis() as u64)
    }

    pub fn from_secs(secs: u64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is in the future.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Time from `self` until `later`; zero when `later` has passed.
    pub fn until(self, later: Timestamp) -> Duration {
        later.since(self)
    }
}

/// "1h 5m 3s"-style text for people (pages, log lines).
pub fn human_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let parts: Vec<String> = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

/// "2026-12-03 14:32 UTC": a moment for people, the same on every instance.
pub fn utc_text(t: Timestamp) -> String {
    let secs = t.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Timestamp(5_000);
        assert_eq!(t.since(Timestamp(9_000)), Duration::ZERO);
        assert_eq!(Timestamp(9_000).since(t), Duration::from_secs(4));
        assert_eq!(t.plus(Duration::from_secs(2)), Timestamp(7_000));
        assert_eq!(t.until(Timestamp(6_500)), Duration::from_millis(1_500));
    }

    #[test]
    fn moments_in_utc() {
        assert_eq!(utc_text(Timestamp(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc_text(Timestamp::from_secs(1_796_308_320)),
            "2026-12-03 14:32 UTC"
        );
        assert_eq!(
            utc_text(Timestamp::from_secs(951_782_400)),
            "2000-02-29 00:00 UTC"
        );
    }

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(human_duration(Duration::from_secs(90_061)), "1d 1h 1m 1s");
    }
}
