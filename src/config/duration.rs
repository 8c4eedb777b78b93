//! Durations in the config file: `"90s"`, `"30m"`, `"12h"`, `"20d"`, `"250ms"`, or sums like `"1h30m"`.

use std::time::Duration;

/// Parses a config duration; the error text is what the user reads after the key's name.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_exact(text).ok_or_else(|| match suggestion(text) {
        Some(hint) => format!("{text:?} is not a duration (try {hint:?})"),
        None => format!(
            "{text:?} is not a duration (write it like \"90s\", \"30m\", \"12h\" or \"20d\")"
        ),
    })
}

fn parse_exact(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = unit_millis(&rest[..unit_len])?;
        total = total.checked_add(Duration::from_millis(number.checked_mul(unit)?))?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn unit_millis(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    })
}

/// Rewrites common spellings ("30 min", "2 hours") into the accepted form, if that then parses.
fn suggestion(text: &str) -> Option<String> {
    let compact: String = text.split_whitespace().collect::<Vec<_>>().join("");
    let lower = compact.to_ascii_lowercase();
    let digits = lower.find(|c: char| !c.is_ascii_digit())?;
    let (number, word) = lower.split_at(digits);
    let unit = match word {
        "msec" | "millis" | "milliseconds" => "ms",
        "sec" | "secs" | "second" | "seconds" | "s" => "s",
        "min" | "mins" | "minute" | "minutes" | "m" => "m",
        "hr" | "hrs" | "hour" | "hours" | "h" => "h",
        "day" | "days" | "d" => "d",
        _ => return None,
    };
    let candidate = format!("{number}{unit}");
    parse_exact(&candidate).map(|_| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("20d"), Ok(Duration::from_secs(1_728_000)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn explains_what_is_wrong_and_suggests_a_fix() {
        assert_eq!(
            parse_duration("30 min").unwrap_err(),
            "\"30 min\" is not a duration (try \"30m\")"
        );
        assert_eq!(
            parse_duration("2 Hours").unwrap_err(),
            "\"2 Hours\" is not a duration (try \"2h\")"
        );
        for bad in ["", "m", "30", "-5s", "5x", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
